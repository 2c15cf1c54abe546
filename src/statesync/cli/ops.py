"""Operator commands: look into stored tables without touching them (``replay`` re-runs the
rules in memory and writes nothing).

    statesync tables                      every table: game, epoch, head, last write
    statesync history TABLE               versions, who did what, when
    statesync show TABLE [--version N] [--player P]
    statesync diff TABLE A B [--player P] field-level changes between two versions
    statesync replay TABLE [--game M:C]   re-run the log through the rules, check every hash
    statesync compact TABLE               drop what the retention policy does not keep

Each takes ``--db PATH_OR_URL`` (default: the SQLite file ``statesync.db``).
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from statesync.errors import StateSyncError
from statesync.game import Game, view_of
from statesync.replay import replay
from statesync.store.inspect import head_of, state_at

if TYPE_CHECKING:
    from statesync.storage import RetentionPolicy, Store


def load_game(ref: str) -> Game:
    """An instance of the game class named ``"module:Class"``."""
    module_name, _, class_name = ref.partition(":")
    if not module_name or not class_name:
        raise StateSyncError(f"game reference {ref!r} is not of the form module:Class")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as e:
        raise StateSyncError(f"cannot import game {ref!r}: {e}") from e
    game = cls()
    if not isinstance(game, Game):
        raise StateSyncError(f"{ref!r} is not a statesync.Game")
    return game


def _when(ts: float) -> str:
    if ts <= 0:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=False)


async def tables(store: Store, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    infos = await store.tables()
    if not infos:
        print("no tables", file=out)
        return 0
    print(f"{'TABLE':<24} {'GAME':<34} {'EPOCH':>5} {'HEAD':>8} {'FROM':>8}  UPDATED", file=out)
    for t in infos:
        print(
            f"{t.table_id:<24} {t.game or '-':<34} {t.epoch:>5} {t.head:>8} "
            f"{t.oldest_version:>8}  {_when(t.updated)}",
            file=out,
        )
    return 0


async def history(
    store: Store,
    table_id: str,
    *,
    start: int | None = None,
    stop: int | None = None,
    limit: int = 50,
    out: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    head = await head_of(store, table_id)
    last = head if stop is None else min(stop, head)
    first = max(1, last - limit + 1) if start is None else start
    records = await store.read_log(table_id, first, last)
    print(
        f"{'VERSION':>8}  {'TIME (UTC)':<23}  {'PLAYER':<12} {'CLIENT':<14} {'SEQ':>5}  ACTION",
        file=out,
    )
    for r in records:
        a = r.action
        if a is None:
            who, action = ("-", "-", "-"), f"(delta, {len(r.delta)} ops)"
        else:
            who = (a.player_id or "-", a.client_id, str(a.seq))
            action = a.type if a.payload is None else f"{a.type} {_json(a.payload)}"
        print(
            f"{r.version:>8}  {_when(r.timestamp):<23}  {who[0]:<12} {who[1]:<14} {who[2]:>5}  "
            f"{action}",
            file=out,
        )
    if not records:
        print(f"(no versions {first}..{last} in the log)", file=out)
    return 0


async def show(
    store: Store,
    table_id: str,
    *,
    version: int | None = None,
    player: str | None = None,
    out: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    state = await state_at(store, table_id, version)
    if player is not None:
        if player not in state.get("seats", {}):
            raise StateSyncError(f"{player!r} has no seat at {table_id!r} at that version")
        state = view_of(state, player)
    print(json.dumps(state, indent=2, ensure_ascii=False), file=out)
    return 0


def field_changes(old: Any, new: Any, path: str = "") -> list[str]:
    """One line per changed leaf field, with JSON Pointer paths: ``~ /a/b: 1 -> 2`` for a
    change, ``+ /a/c: v`` for an addition, ``- /a/d: v`` for a removal. Dicts are compared by
    key and lists by index; anything else (or a change of type) is one change.

    >>> field_changes({"a": 1, "b": [1, 2]}, {"a": 2, "b": [1], "c": True})
    ['~ /a: 1 -> 2', '- /b/1: 2', '+ /c: true']
    """
    if type(old) is dict and type(new) is dict:
        out: list[str] = []
        for k in old:
            p = f"{path}/{_escape(k)}"
            if k in new:
                out += field_changes(old[k], new[k], p)
            else:
                out.append(f"- {p}: {_json(old[k])}")
        out += [f"+ {path}/{_escape(k)}: {_json(new[k])}" for k in new if k not in old]
        return out
    if type(old) is list and type(new) is list:
        out = []
        for i in range(min(len(old), len(new))):
            out += field_changes(old[i], new[i], f"{path}/{i}")
        out += [f"- {path}/{i}: {_json(old[i])}" for i in range(len(new), len(old))]
        out += [f"+ {path}/{i}: {_json(new[i])}" for i in range(len(old), len(new))]
        return out
    if type(old) is type(new) and old == new:
        return []
    return [f"~ {path or '/'}: {_json(old)} -> {_json(new)}"]


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


async def diff_versions(
    store: Store,
    table_id: str,
    a: int,
    b: int,
    *,
    player: str | None = None,
    out: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    old = await state_at(store, table_id, a)
    new = await state_at(store, table_id, b)
    if player is not None:
        old, new = view_of(old, player), view_of(new, player)
    lines = field_changes(old, new)
    for line in lines:
        print(line, file=out)
    print(f"({len(lines)} changes from version {a} to {b})", file=out)
    return 0


async def replay_table(
    store: Store, table_id: str, *, game_ref: str | None = None, out: TextIO | None = None
) -> int:
    out = out or sys.stdout
    stored = await store.load(table_id, retain=10**15)
    ref = game_ref or stored.meta.game
    if not ref:
        raise StateSyncError(f"table {table_id!r} does not name its game: pass --game module:Class")
    game = load_game(ref)
    started = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 0.2 or done == total:
            last[0] = now
            print(f"\rreplaying {done:>8,}/{total:,} versions", end="", file=out, flush=True)

    report = replay(stored, game, progress=progress)
    print(file=out)
    elapsed = time.perf_counter() - started
    if report.ok:
        print(
            f"ok: versions {report.start + 1}..{report.head} of {table_id!r} re-run through "
            f"{ref}; every hash matches ({report.checked:,} versions in {elapsed:.2f} s)",
            file=out,
        )
        return 0
    print(f"DIVERGED at {report.divergence} after {report.checked:,} good versions", file=out)
    return 1


async def compact(
    store: Store, table_id: str, policy: RetentionPolicy, out: TextIO | None = None
) -> int:
    out = out or sys.stdout
    dropped = await store.compact(table_id, policy)
    print(f"compacted {table_id!r}: dropped {dropped:,} log records", file=out)
    return 0
