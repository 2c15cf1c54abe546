"""The ``statesync`` command: the demo on SQLite, then every operator command on its table."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from typing import TYPE_CHECKING

import pytest

from statesync.cli import main
from tests.store.conftest import POSTGRES_URL, SKIP_PG

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("cli") / "statesync.db")
    assert main(["demo", "--hands", "4", "--players", "3", "--db", path]) == 0
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_demo_runs_on_a_fresh_database_and_makes_new_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "x.db")
    code, out, _ = run(capsys, "demo", "--hands", "2", "--players", "2", "--db", path)
    assert code == 0 and "desyncs=0" in out and "table demo-1" in out
    code, out, _ = run(capsys, "demo", "--hands", "2", "--players", "2", "--db", path)
    assert code == 0 and "table demo-2" in out
    code, out, _ = run(capsys, "tables", "--db", path)
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["demo-1", "demo-2"]


def test_tables_and_history(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tables", "--db", db)
    [row] = out.splitlines()[1:]
    table, game, epoch, head = row.split()[:4]
    assert (table, game, epoch) == ("demo-1", "statesync.games.holdem:Holdem", "0")
    code, out, _ = run(capsys, "history", "demo-1", "--from", "1", "--to", "3", "--db", db)
    lines = out.splitlines()
    assert code == 0 and [line.split()[0] for line in lines[1:]] == ["1", "2", "3"]
    assert all(" bot" in line for line in lines[1:])  # who acted is shown
    code, out, _ = run(capsys, "history", "demo-1", "--limit", "2", "--db", db)
    assert [line.split()[0] for line in out.splitlines()[1:]] == [str(int(head) - 1), head]


def test_show_hides_other_players_cards(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "demo-1", "--version", "3", "--db", db)
    full = json.loads(out)
    assert code == 0 and set(full) == {"game", "seats", "players", "secret"}
    code, out, _ = run(capsys, "show", "demo-1", "--version", "3", "--player", "bot1", "--db", db)
    view = json.loads(out)
    assert set(view["players"]) == {"bot1"} and "secret" not in view
    assert view["players"]["bot1"] == full["players"]["bot1"]


def test_diff_lists_changed_fields(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "diff", "demo-1", "1", "2", "--db", db)
    lines = out.splitlines()
    assert code == 0 and lines[-1].startswith(f"({len(lines) - 1} changes")
    assert all(line[:2] in ("~ ", "+ ", "- ") for line in lines[:-1])
    assert any("/game/" in line for line in lines)
    code, out, _ = run(capsys, "diff", "demo-1", "2", "2", "--db", db)
    assert out.strip() == "(0 changes from version 2 to 2)"


def test_replay_verifies_and_reports_the_first_divergence(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "replay", "demo-1", "--db", db)
    assert code == 0 and "every hash matches" in out
    bad = tmp_path / "bad.db"
    with sqlite3.connect(db) as src, sqlite3.connect(bad) as dst:
        src.backup(dst)
    with sqlite3.connect(bad) as conn:
        conn.execute("UPDATE statesync_log SET hash = ? WHERE version = 7", ("f" * 32,))
    code, out, _ = run(capsys, "replay", "demo-1", "--db", str(bad))
    assert code == 1 and "DIVERGED at version 7" in out and "f" * 32 in out


def test_errors_are_one_line_with_a_code(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "show", "nope", "--db", db)
    assert code == 1 and "[store/table_not_found]" in err
    code, _, err = run(capsys, "show", "demo-1", "--version", "999999", "--db", db)
    assert code == 1 and "versions 0.." in err
    code, _, err = run(capsys, "replay", "demo-1", "--game", "nope:Nope", "--db", db)
    assert code == 1 and "cannot import game" in err


def test_compact_then_older_versions_are_gone(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "c.db"
    with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    code, out, _ = run(capsys, "compact", "demo-1", "--keep-versions", "0", "--db", str(copy))
    # The demo table is shorter than a checkpoint interval: version 0 is its only
    # checkpoint, so the whole log is still needed and nothing may be dropped.
    assert code == 0 and "dropped 0 log records" in out
    code, out, _ = run(capsys, "replay", "demo-1", "--db", str(copy))
    assert code == 0 and "every hash matches" in out


@pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_PG)
def test_operator_commands_on_postgres(capsys: pytest.CaptureFixture[str]) -> None:
    schema = f"cli_{uuid.uuid4().hex[:10]}"
    url = f"{POSTGRES_URL}?schema={schema}"
    try:
        code, out, _ = run(capsys, "demo", "--hands", "2", "--players", "3", "--db", url)
        assert code == 0 and "table demo-1" in out
        code, out, _ = run(capsys, "tables", "--db", url)
        assert out.splitlines()[1].split()[0] == "demo-1"
        code, out, _ = run(capsys, "history", "demo-1", "--from", "1", "--to", "2", "--db", url)
        assert [line.split()[0] for line in out.splitlines()[1:]] == ["1", "2"]
        code, out, _ = run(
            capsys, "show", "demo-1", "--version", "1", "--player", "bot0", "--db", url
        )
        assert set(json.loads(out)["players"]) == {"bot0"}
        code, out, _ = run(capsys, "diff", "demo-1", "1", "2", "--db", url)
        assert code == 0 and "changes from version 1 to 2" in out
        code, out, _ = run(capsys, "replay", "demo-1", "--db", url)
        assert code == 0 and "every hash matches" in out
    finally:
        asyncio.run(_drop_schema(schema))


async def _drop_schema(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
