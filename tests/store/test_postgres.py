"""PostgreSQL-specific store behaviour: several processes' worth of stores on one schema,
concurrent opening, group commit, COMMIT failures and lost connections. Real server only."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import asyncpg
import pytest

from statesync.errors import FencedError, StoreError
from statesync.records import LogRecord
from statesync.store.postgres import SCHEMA_VERSION, PostgresStore
from tests.store.conftest import POSTGRES_URL, SKIP_PG, StoreFactory
from tests.store.test_contract import chain, checkpoint, new_table, replay

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_PG)


@pytest.fixture
async def pg(tmp_path: Path) -> AsyncIterator[StoreFactory]:
    f = StoreFactory("postgres", tmp_path)
    try:
        yield f
    finally:
        await f.cleanup()


async def open_pg(pg: StoreFactory, **options: object) -> PostgresStore:
    store = await pg.open(**options)
    assert isinstance(store, PostgresStore)
    return store


async def sql(query: str, *args: object) -> object:
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        if not args and ";" in query:  # several statements
            return await conn.execute(query)
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def test_two_stores_race_for_each_version(pg: StoreFactory) -> None:
    a, b = await open_pg(pg), await open_pg(pg)
    state = await new_table(a)
    records = chain(state, 1, 20)
    heads = {a: 0, b: 0}
    for r in records:
        theirs = LogRecord(r.version, 0, None, r.delta, r.hash, 0.0)
        results = await asyncio.gather(
            a.append("t1", 0, [r]), b.append("t1", 0, [theirs]), return_exceptions=True
        )
        assert sum(r is None for r in results) == 1, results
        loser = results[1] if results[0] is None else results[0]
        assert isinstance(loser, FencedError)
        assert loser.head == r.version and loser.epoch == 0
        heads[a if results[0] is None else b] += 1
    assert sum(heads.values()) == 20
    for store in (a, b):
        stored = await store.load("t1")
        assert stored.head == 20 and [x.version for x in stored.records] == list(range(1, 21))


async def test_stores_lock_rows_in_one_order_and_do_not_deadlock(pg: StoreFactory) -> None:
    a, b = await open_pg(pg), await open_pg(pg)
    ids = [f"d{i:02d}" for i in range(16)]
    states = {i: await new_table(a, i) for i in ids}
    mine = [a.append(i, 0, chain(states[i], 1, 2)) for i in ids]
    theirs = [b.append(i, 0, chain(states[i], 1, 1)) for i in reversed(ids)]
    results = await asyncio.gather(*mine, *theirs, return_exceptions=True)
    assert not [r for r in results if r is not None and not isinstance(r, FencedError)]
    won_a, won_b = results[:16], results[16:][::-1]
    for i, ra, rb in zip(ids, won_a, won_b, strict=True):
        assert (ra is None) != (rb is None), i
        assert (await a.load(i)).head == (2 if ra is None else 1)


async def test_a_stale_epoch_is_fenced_across_stores(pg: StoreFactory) -> None:
    a, b = await open_pg(pg), await open_pg(pg)
    state = await new_table(a)
    records = chain(state, 1, 3)
    await a.append("t1", 0, records)
    await b.reset("t1", 0, checkpoint(2, replay(state, records[:2]), epoch=1))
    with pytest.raises(FencedError) as info:
        await a.append("t1", 0, chain(replay(state, records), 4, 1))
    assert (info.value.epoch, info.value.head) == (1, 2)


async def test_the_unique_key_is_the_backstop(pg: StoreFactory) -> None:
    store = await open_pg(pg)
    state = await new_table(store)
    # A rogue row at version 1 that did not move the head (a writer that skipped the fence).
    await sql(
        f'INSERT INTO "{pg.schema}".statesync_log VALUES '
        "('t1', 1, 0, NULL, NULL, NULL, NULL, '\\x00', '\\x00', 'h', 0)"
    )
    with pytest.raises(FencedError, match="another writer"):
        await store.append("t1", 0, chain(state, 1, 1))
    assert [t.head for t in await store.tables()] == [0]


async def test_concurrent_opening_of_one_schema(pg: StoreFactory) -> None:
    stores = await asyncio.gather(*(open_pg(pg) for _ in range(8)))
    assert await sql(f'SELECT count(*) FROM "{pg.schema}".statesync_schema') == 1
    await new_table(stores[0])
    assert [t.table_id for t in await stores[-1].tables()] == ["t1"]


async def test_a_newer_schema_is_refused(pg: StoreFactory) -> None:
    await open_pg(pg)
    await sql(f'UPDATE "{pg.schema}".statesync_schema SET version = $1', SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match="newer"):
        await open_pg(pg)


@pytest.mark.parametrize("group_commit", [True, False])
async def test_group_commit_batches_concurrent_appends(
    pg: StoreFactory, group_commit: bool
) -> None:
    store = await open_pg(pg, group_commit=group_commit)
    states = {i: await new_table(store, f"g{i}") for i in range(64)}
    before = store.commits
    for round_ in range(3):
        await asyncio.gather(
            *(store.append(f"g{i}", 0, chain(states[i], round_ + 1, 1)) for i in range(64))
        )
    commits = store.commits - before
    if group_commit:
        assert commits < 64 * 3 // 4
    else:
        assert commits == 64 * 3
    assert {t.head for t in await store.tables()} == {3}


async def test_max_batch_bounds_a_transaction(pg: StoreFactory) -> None:
    store = await open_pg(pg, max_batch=8)
    states = {i: await new_table(store, f"m{i}") for i in range(32)}
    before = store.commits
    await asyncio.gather(*(store.append(f"m{i}", 0, chain(states[i], 1, 1)) for i in range(32)))
    assert store.commits - before >= 4


async def test_a_failed_commit_fails_every_job_of_the_batch(pg: StoreFactory) -> None:
    store = await open_pg(pg)
    states = {i: await new_table(store, f"c{i}") for i in range(4)}
    poison = await new_table(store, "poison")
    # A deferred constraint trigger: the error is raised by COMMIT itself.
    await sql(
        f"""
        CREATE FUNCTION "{pg.schema}".refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.table_id = 'poison' THEN RAISE EXCEPTION 'refused at commit'; END IF;
            RETURN NEW;
        END $$;
        CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON "{pg.schema}".statesync_log
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "{pg.schema}".refuse();
        """
    )
    before = store.commits
    jobs = [store.append(f"c{i}", 0, chain(states[i], 1, 1)) for i in range(4)]
    jobs.append(store.append("poison", 0, chain(poison, 1, 1)))
    results = await asyncio.gather(*jobs, return_exceptions=True)
    assert all(isinstance(r, StoreError) for r in results), results
    assert "refused at commit" in str(results[0])
    assert store.commits == before
    assert {t.head for t in await store.tables()} == {0}
    await store.append("c0", 0, chain(states[0], 1, 1))  # the writer carries on
    assert (await store.load("c0")).head == 1


async def test_the_writer_survives_a_lost_connection(pg: StoreFactory) -> None:
    store = await open_pg(pg)
    state = await new_table(store)
    records = chain(state, 1, 3)
    await store.append("t1", 0, records[:1])
    pid = store._writer_conn.get_server_pid()
    assert await sql("SELECT pg_terminate_backend($1)", pid)
    try:
        await store.append("t1", 0, records[1:2])
    except FencedError:
        raise
    except StoreError:  # the write that found the connection gone
        await store.append("t1", 0, records[1:2])
    await store.append("t1", 0, records[2:])
    assert (await store.load("t1")).records == records


async def test_closing_drains_pending_writes_and_is_idempotent(pg: StoreFactory) -> None:
    store = await open_pg(pg)
    state = await new_table(store)
    pending = [asyncio.ensure_future(store.append("t1", 0, [r])) for r in chain(state, 1, 10)]
    await asyncio.sleep(0)  # every append is queued
    await asyncio.gather(store.close(), store.close())
    await store.close()
    assert [p.result() for p in pending] == [None] * 10
    with pytest.raises(StoreError, match="closed"):
        await store.load("t1")
    again = await open_pg(pg)
    assert (await again.load("t1")).head == 10


async def test_bad_options_and_unreachable_server() -> None:
    with pytest.raises(ValueError, match="schema"):
        await PostgresStore.open(POSTGRES_URL, schema='x"; DROP TABLE y; --')
    with pytest.raises(ValueError, match="pool_size"):
        await PostgresStore.open(POSTGRES_URL, pool_size=0)
    url = "postgresql://ann:hunter2@127.0.0.1:1/nowhere"
    with pytest.raises(StoreError, match="cannot open") as info:
        await PostgresStore.open(url)
    assert "hunter2" not in str(info.value) and "***" in str(info.value)


async def test_synchronous_commit_off_still_stores(pg: StoreFactory) -> None:
    store = await open_pg(pg, synchronous_commit=False)
    state = await new_table(store)
    await store.append("t1", 0, chain(state, 1, 2))
    assert await store._writer_conn.fetchval("SHOW synchronous_commit") == "off"
    assert (await store.load("t1")).head == 2
