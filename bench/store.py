"""Durable stores: acknowledged actions per second, and recovery time of a long table.

    .venv/bin/python bench/store.py [--quick] [--kills N]

1. Acknowledged actions/s for SQLite NORMAL (appends committed inline, the default, and
   through the writer thread with and without group commit), SQLite FULL and PostgreSQL
   (each with and without group commit). An action counts once ``submit`` returned its
   outcome, i.e. once the transaction holding it committed. Two loads:
   * ``1 table``: one table, one action per submit, each awaited before the next
     (commit latency bound: group commit has nothing to group);
   * ``32 tables``: 32 tables each running that loop concurrently (what a server with many
     tables does): with group commit the writer commits whatever is waiting in one go.
   The game is a light counter so that the store, not the rules, is measured; the hold'em
   line shows the same pipeline with real rules.
2. Recovery: a hold'em table with 100,000 versions is loaded with
   ``StateSynchronizer.load`` (checkpoint + replay of the records after it, every hash
   checked), with checkpoints every 1,000 versions (the default) and, for comparison,
   with none (every version replayed).
3. Crash campaign (``--kills N``, default 50): SIGKILL at random moments; acknowledged vs
   recovered actions.

PostgreSQL runs against ``STATESYNC_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``) in a scratch schema; it is reported as
skipped if the server is not reachable. Timings are wall clock on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from statesync import PlayerAction, StateSynchronizer
from statesync.games.holdem import Holdem, legal_actions
from statesync.rng import Rng
from statesync.store import SQLiteStore
from statesync.testing.crash import campaign
from statesync.testing.games import Tally

ACKS_TARGET = 5_000
LOAD_TARGET_S = 1.0
PG_URL = os.environ.get("STATESYNC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


async def open_backend(kind: str, workdir: Path, group: bool, inline: bool = False) -> Any:
    if kind == "postgres":
        from statesync.store.postgres import PostgresStore

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        store = await PostgresStore.open(PG_URL, schema=schema, group_commit=group)
        store.bench_schema = schema  # type: ignore[attr-defined]
        return store
    sync = "FULL" if kind == "sqlite-full" else "NORMAL"
    path = workdir / f"{kind}-{group}-{uuid.uuid4().hex[:6]}.db"
    return await SQLiteStore.open(path, synchronous=sync, group_commit=group, inline=inline)


async def drop_backend(store: Any) -> None:
    schema = getattr(store, "bench_schema", None)
    await store.close()
    if schema:
        import asyncpg

        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


async def counter_loop(table: StateSynchronizer, n: int) -> None:
    for i in range(1, n + 1):
        [outcome] = await table.submit([PlayerAction("p", "p-c", i, table.version, "add")])
        assert outcome.ok, outcome


async def acks_per_second(store: Any, tables: int, per_table: int) -> float:
    syncs = [
        await StateSynchronizer.create(Tally(), store, f"c{uuid.uuid4().hex[:8]}", players=["p"])
        for _ in range(tables)
    ]
    start = time.perf_counter()
    await asyncio.gather(*(counter_loop(t, per_table) for t in syncs))
    return tables * per_table / (time.perf_counter() - start)


def holdem_actions(table: StateSynchronizer, rng: Rng, seqs: dict[str, int]) -> PlayerAction:
    actor = table.state["game"]["turn"]
    choices = [c for c in legal_actions(table.state, actor) if c[0] != "all_in"]
    kind, payload = rng.choice(choices)
    seqs[actor] = seqs.get(actor, 0) + 1
    return PlayerAction(actor, actor, seqs[actor], table.version, kind, payload)


async def holdem_acks(store: Any, n: int) -> float:
    names = [f"p{i}" for i in range(6)]
    table = await StateSynchronizer.create(
        Holdem(), store, "holdem", players=names, seed=1, config={"stack": 10**9}
    )
    rng, seqs = Rng(1), {}
    start = time.perf_counter()
    for _ in range(n):
        [outcome] = await table.submit([holdem_actions(table, rng, seqs)])
        assert outcome.ok
    return n / (time.perf_counter() - start)


async def measure_acks(workdir: Path, quick: bool) -> list[tuple[str, str, float]]:
    rows = []
    per = 300 if quick else 1500
    configs = [("sqlite-normal", True, True)] + [
        (kind, group, False)
        for kind in ("sqlite-normal", "sqlite-full", "postgres")
        for group in (True, False)
    ]
    skipped: set[str] = set()
    for kind, group, inline in configs:
        if kind in skipped:
            continue
        try:
            store = await open_backend(kind, workdir, group, inline)
        except Exception as e:  # PostgreSQL not reachable
            rows.append((kind, f"skipped: {type(e).__name__}: {e}", 0.0))
            skipped.add(kind)
            continue
        try:
            how = "inline (default)" if inline else f"group commit {'on ' if group else 'off'}"
            label = f"{kind:<14} {how:<16}"
            one = await acks_per_second(store, 1, per)
            many = await acks_per_second(store, 32, per // 4)
            commits = getattr(store, "commits", 0)
            rows.append((label, "1 table", one))
            rows.append((label, "32 tables", many))
            print(
                f"  {label}  1 table {one:>8,.0f}/s   32 tables {many:>8,.0f}/s   "
                f"({commits:,} commits)",
                flush=True,
            )
            if kind == "sqlite-normal" and inline:
                h = await holdem_acks(store, per)
                rows.append((label, "hold'em 1 table", h))
                print(f"  {label}  hold'em, 1 table, 6 players {h:>8,.0f}/s", flush=True)
        finally:
            await drop_backend(store)
    return rows


async def build_long_table(path: Path, versions: int, checkpoint_every: int) -> None:
    store = await SQLiteStore.open(path)
    names = [f"p{i}" for i in range(6)]
    table = await StateSynchronizer.create(
        Holdem(),
        store,
        "long",
        players=names,
        seed=3,
        config={"stack": 10**9},
        game_ref="statesync.games.holdem:Holdem",
        checkpoint_every=checkpoint_every,
    )
    rng, seqs = Rng(3), {}
    last = time.perf_counter()
    while table.version < versions:
        # Like a table's owner: apply what arrived, then commit it in one batch.
        for _ in range(min(200, versions - table.version)):
            table.submit_nowait([holdem_actions(table, rng, seqs)])
        await table.submit([])
        if time.perf_counter() - last > 1:
            last = time.perf_counter()
            print(f"\r  building: {table.version:,}/{versions:,} versions", end="", flush=True)
    print(f"\r  built {versions:,} versions{' ' * 20}", flush=True)
    await store.close()


async def measure_load(workdir: Path, versions: int) -> list[tuple[str, float]]:
    rows = []
    for every, label in ((1000, "checkpoint every 1,000"), (10**9, "no checkpoints")):
        path = workdir / f"long-{every}.db"
        await build_long_table(path, versions, every)
        best = float("inf")
        for _ in range(3):
            store = await SQLiteStore.open(path)
            start = time.perf_counter()
            table = await StateSynchronizer.load(store, "long", Holdem())
            best = min(best, time.perf_counter() - start)
            assert table.version == versions
            await store.close()
        rows.append((label, best))
        print(f"  load {versions:,} versions, {label:<24} {best:>7.3f} s", flush=True)
    return rows


async def main_async(quick: bool, kills: int) -> int:
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print("acknowledged actions per second (committed before the outcome is returned)")
        rows = await measure_acks(workdir, quick)
        best_normal = max(v for label, load, v in rows if label.startswith("sqlite-normal"))
        ok = best_normal >= ACKS_TARGET
        status |= not ok
        print(
            f"  SQLite NORMAL (default: inline), best: {best_normal:,.0f}/s "
            f"(target >= {ACKS_TARGET:,}): {'PASS' if ok else 'FAIL'}"
        )
        print()
        versions = 20_000 if quick else 100_000
        print(f"recovery of a {versions:,}-version hold'em table (best of 3)")
        loads = await measure_load(workdir, versions)
        ok = loads[0][1] < LOAD_TARGET_S
        status |= not ok
        print(
            f"  with checkpoints: {loads[0][1]:.3f} s (target < {LOAD_TARGET_S} s): "
            f"{'PASS' if ok else 'FAIL'}"
        )
        if kills:
            print()
            print(f"crash campaign: {kills} SIGKILLs")
            crash_dir = workdir / "crash"
            crash_dir.mkdir()

            def progress(r: Any) -> None:
                print(f"\r  {r.summary()}", end="", flush=True)

            report = await campaign(crash_dir, kills, seed=7, progress=progress)
            print()
            print(f"  {'PASS' if report.ok else 'FAIL'}: lost={report.lost}")
            status |= not report.ok
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (for a smoke test)")
    parser.add_argument("--kills", type=int, default=50, help="SIGKILLs in the crash campaign")
    args = parser.parse_args(argv)
    return asyncio.run(main_async(args.quick, args.kills))


if __name__ == "__main__":
    sys.exit(main())
