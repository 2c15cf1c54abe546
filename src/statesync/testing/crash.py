"""Crash campaign: a table under continuous actions in a child process, killed with SIGKILL
at random moments and restarted, checked after every restart.

The child (``python -m statesync.testing.crash child DB TABLE JOURNAL SEED``) plays hold'em
bots against a table in a SQLite store. Like a real client it writes each action to a
journal *before* sending it (``S`` lines) and each answer after (``A``/``R`` lines); when it
starts again, it first re-sends every action that has no answer, exactly as a reconnecting
client re-sends its unacknowledged actions.

After every kill the parent checks, from the journal and the store alone:

* every acknowledged action is in the log exactly once, at the version it was told;
* no ``(client, seq)`` appears twice in the log;
* the table loads (every stored hash checks) and :func:`~statesync.replay.replay` re-runs the
  log through the rules with no divergence: each round from the checkpoint at or before the
  previous round's head, so that over the campaign every version is re-run at least once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from statesync.actions import Accepted, PlayerAction
from statesync.errors import TableExistsError
from statesync.games.holdem import Holdem, legal_actions
from statesync.replay import replay
from statesync.rng import Rng
from statesync.store.sqlite import SQLiteStore
from statesync.synchronizer import SYSTEM_CLIENT, StateSynchronizer

if TYPE_CHECKING:
    from collections.abc import Callable

PLAYERS = ("ann", "bob", "cid", "dee")
GAME_REF = "statesync.games.holdem:Holdem"


# ---------------------------------------------------------------- the child


def _read_journal(path: Path) -> tuple[dict[tuple[str, int], dict[str, Any]], dict[str, int]]:
    """Actions sent without an answer, and the last seq used per client."""
    pending: dict[tuple[str, int], dict[str, Any]] = {}
    last: dict[str, int] = {}
    if not path.exists():
        return pending, last
    for line in path.read_text().splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "S":
            try:
                a = json.loads(rest)
            except ValueError:  # a line torn by the kill: never sent
                continue
            pending[(a["client"], a["seq"])] = a
            last[a["client"]] = max(last.get(a["client"], 0), a["seq"])
        elif kind in ("A", "R"):
            parts = rest.split()
            if len(parts) == 3:
                pending.pop((parts[0], int(parts[1])), None)
    return pending, last


async def child(db: str, table_id: str, journal: str, seed: int) -> None:
    """Play until killed."""
    store = await SQLiteStore.open(db)
    try:
        table = await StateSynchronizer.create(
            Holdem(),
            store,
            table_id,
            players=PLAYERS,
            seed=seed,
            config={"stack": 10**7},
            game_ref=GAME_REF,
            clock=time.time,
            checkpoint_every=50,
        )
    except TableExistsError:
        table = await StateSynchronizer.load(store, table_id, Holdem(), clock=time.time)
    path = Path(journal)
    pending, last = _read_journal(path)
    rng = Rng.derive(seed, os.getpid())
    # Blocking writes on purpose: the journal line must be in the OS before the action is sent.
    with path.open("a") as out:  # noqa: ASYNC230

        async def send(a: PlayerAction) -> None:
            out.write("S " + json.dumps(_action_json(a)) + "\n")
            out.flush()
            [outcome] = await table.submit([a])
            if isinstance(outcome, Accepted):
                out.write(f"A {a.client_id} {a.seq} {outcome.version}\n")
            else:
                out.write(f"R {a.client_id} {a.seq} {outcome.code}\n")
            out.flush()

        for item in sorted(pending.values(), key=lambda a: (a["client"], a["seq"])):
            await send(_action_from_json(item))
        while True:
            actor = table.state["game"]["turn"] or ""
            # No all-in: stacks stay deep and the game never ends under the campaign.
            choices = [c for c in legal_actions(table.state, actor) if c[0] != "all_in"]
            if not actor or not choices:
                raise RuntimeError(f"no legal action at version {table.version}")
            kind, payload = rng.choice(choices)
            client = f"{actor}-c"
            last[client] = last.get(client, 0) + 1
            await send(PlayerAction(actor, client, last[client], table.version, kind, payload))


def _action_json(a: PlayerAction) -> dict[str, Any]:
    return {
        "player": a.player_id,
        "client": a.client_id,
        "seq": a.seq,
        "base": a.base_version,
        "type": a.type,
        "payload": a.payload,
    }


def _action_from_json(d: dict[str, Any]) -> PlayerAction:
    return PlayerAction(d["player"], d["client"], d["seq"], d["base"], d["type"], d["payload"])


# ---------------------------------------------------------------- the parent


@dataclass
class CrashReport:
    """What a campaign saw: kills, acknowledged actions and what the store recovered."""

    kills: int = 0
    acknowledged: int = 0
    recovered: int = 0
    """Acknowledged actions found in the log, at their version."""
    durable_unacknowledged: int = 0
    """Actions in the log whose answer the kill cut off (re-sent and deduped afterwards)."""
    lost: int = 0
    duplicated: int = 0
    versions: int = 0
    replayed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and self.lost == 0 and self.duplicated == 0

    def summary(self) -> str:
        return (
            f"kills={self.kills} acknowledged={self.acknowledged} recovered={self.recovered} "
            f"lost={self.lost} duplicated={self.duplicated} "
            f"durable_unacknowledged={self.durable_unacknowledged} versions={self.versions} "
            f"replayed={self.replayed}"
        )


def _acknowledged(path: Path) -> dict[tuple[str, int], int]:
    acked: dict[tuple[str, int], int] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[0] == "A":
                acked[(parts[1], int(parts[2]))] = int(parts[3])
    return acked


async def verify(db: Path, table_id: str, journal: Path, report: CrashReport) -> None:
    """Check the store against the journal (see the module docstring); fills ``report``."""
    acked = _acknowledged(journal)
    store = await SQLiteStore.open(db)
    try:
        stored = await store.load(table_id, retain=10**12)
        await StateSynchronizer.load(store, table_id, Holdem())  # checks every stored hash
        since = await store.load(table_id, retain=stored.head - report.versions)
    finally:
        await store.close()
    seen: dict[tuple[str, int], int] = {}
    for r in stored.records:
        a = r.action
        if a is None or a.client_id == SYSTEM_CLIENT:
            continue
        key = (a.client_id, a.seq)
        if key in seen:
            report.duplicated += 1
            report.errors.append(f"{key} is in the log twice: {seen[key]} and {r.version}")
        seen[key] = r.version
    recovered = sum(1 for k, v in acked.items() if seen.get(k) == v)
    report.acknowledged = len(acked)
    report.recovered = recovered
    report.lost = len(acked) - recovered
    report.durable_unacknowledged = len(seen.keys() - acked.keys())
    report.versions = stored.head
    if report.lost:
        missing = [k for k, v in acked.items() if seen.get(k) != v][:3]
        report.errors.append(f"acknowledged actions missing from the log: {missing}")
    result = replay(since, Holdem())
    report.replayed = since.checkpoint.version + result.checked
    if not result.ok:
        report.errors.append(f"replay diverged at {result.divergence}")


def _size(journal: Path) -> int:
    return journal.stat().st_size if journal.exists() else 0


async def campaign(
    workdir: Path,
    kills: int,
    *,
    seed: int = 1,
    table_id: str = "crash",
    progress: Callable[[CrashReport], None] | None = None,
) -> CrashReport:
    """Start, kill (SIGKILL) and restart a child ``kills`` times, verifying after each kill."""
    db, journal = workdir / "crash.db", workdir / "journal.txt"
    rng = Rng(seed)
    report = CrashReport()
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    for _ in range(kills):
        before = _size(journal)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "statesync.testing.crash",
            "child",
            str(db),
            table_id,
            str(journal),
            str(seed),
            env=env,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 30
            while _size(journal) < before + 400:  # let it make some progress first
                if proc.returncode is not None or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.01)
            else:
                await asyncio.sleep(rng.random() * 0.1)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGKILL)
            _, err = await proc.communicate()
        if proc.returncode != -signal.SIGKILL:
            raise RuntimeError(f"crash child made no progress: {err.decode()[-2000:]}")
        report.kills += 1
        await verify(db, table_id, journal, report)
        if progress is not None:
            progress(report)
        if report.errors:
            break
    return report


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 5 and args[0] == "child":
        asyncio.run(child(args[1], args[2], args[3], int(args[4])))
        return 0
    print("usage: python -m statesync.testing.crash child DB TABLE JOURNAL SEED", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
