"""SQLiteStore's inline appends: with synchronous NORMAL an append commits on the calling
thread when it can, falls back to the writer thread when the write lock is taken (without
blocking the event loop), and the WAL is still checkpointed."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

import statesync.store.sqlite as sqlite_module
from statesync.errors import FencedError
from statesync.store import SQLiteStore
from tests.store.test_contract import chain, new_table, replay


async def test_appends_commit_inline_and_read_back(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "s.db")
    try:
        assert store.inline
        state = await new_table(store)
        records = chain(state, 1, 20)
        for r in records:
            await store.append("t1", 0, [r])
        assert store.inline_commits == 20
        loaded = await store.load("t1")
        assert [r.version for r in loaded.records] == list(range(1, 21))
        assert replay(state, list(loaded.records)) == replay(state, records)
        with pytest.raises(FencedError):  # refused inline, and nothing written
            await store.append("t1", 0, chain(state, 5, 1))
        assert (await store.load("t1")).head == 20
    finally:
        await store.close()
    reopened = await SQLiteStore.open(tmp_path / "s.db")  # durable: another connection sees it
    try:
        assert (await reopened.load("t1")).head == 20
    finally:
        await reopened.close()


async def test_full_durability_never_commits_inline(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="FULL"):
        SQLiteStore(tmp_path / "x.db", synchronous="FULL", inline=True)
    store = await SQLiteStore.open(tmp_path / "f.db", synchronous="FULL")
    try:
        assert not store.inline
        state = await new_table(store)
        for r in chain(state, 1, 5):
            await store.append("t1", 0, [r])
        assert store.inline_commits == 0 and store.commits >= 5
    finally:
        await store.close()


async def test_a_held_write_lock_sends_the_append_through_the_thread(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "s.db")
    other = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    try:
        state = await new_table(store)
        [r1, r2] = chain(state, 1, 2)
        await store.append("t1", 0, [r1])
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        task = asyncio.create_task(store.append("t1", 0, [r2]))
        ticks = 0
        for _ in range(20):  # the event loop keeps running while the append waits
            await asyncio.sleep(0.005)
            ticks += 1
        assert ticks == 20 and not task.done()
        assert store.inline_commits == 1
        other.execute("ROLLBACK")
        await asyncio.wait_for(task, 10)
        assert store.inline_commits == 1 and (await store.load("t1")).head == 2
    finally:
        other.close()
        await store.close()


@pytest.mark.parametrize(("every", "bounded"), [(4, True), (10**9, False)])
async def test_the_wal_is_checkpointed_for_inline_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every: int, bounded: bool
) -> None:
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_EVERY", every)
    store = await SQLiteStore.open(tmp_path / "s.db")
    try:
        state = await new_table(store)
        for r in chain(state, 1, 300):
            await store.append("t1", 0, [r])
            await asyncio.sleep(0.001)  # a server's loop idles now and then: checkpoints run
        await store.tables()  # a job behind any queued checkpoint: they have run
        wal = (tmp_path / "s.db-wal").stat().st_size
    finally:
        await store.close()
    # 300 commits of a few pages each: about a megabyte of WAL if nothing copies it back
    assert (wal < 256 * 1024) is bounded, wal


async def test_a_long_reader_holds_appends_only_briefly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_EVERY", 1)  # a checkpoint after each commit
    store = await SQLiteStore.open(tmp_path / "s.db")
    reader = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    try:
        state = await new_table(store)
        records = chain(state, 1, 12)
        await store.append("t1", 0, records[:1])
        reader.execute("BEGIN")  # an operator's long read: a snapshot the WAL must keep
        reader.execute("SELECT count(*) FROM statesync_log").fetchall()
        for r in records[1:]:
            # each commit queues a checkpoint that waits for the reader; the next append
            # goes behind it, and must not wait for the writer's 10 s busy timeout
            await asyncio.wait_for(store.append("t1", 0, [r]), 5)
        reader.execute("COMMIT")
        assert (await store.load("t1")).head == 12
    finally:
        reader.close()
        await store.close()
