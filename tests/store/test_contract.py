"""The shared store suite: every Store implementation must pass it unchanged."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statesync.actions import PlayerAction
from statesync.delta import Delta, patch
from statesync.errors import FencedError, TableExistsError, TableNotFoundError
from statesync.hashing import state_hash
from statesync.ops import Add, Remove, Set, Splice
from statesync.records import Checkpoint, LogRecord, TableMeta
from statesync.storage import RetentionPolicy
from tests.strategies import values

if TYPE_CHECKING:
    from statesync.storage import Store
    from tests.store.conftest import StoreFactory


def initial(n: int = 0) -> dict[str, object]:
    return {"game": {"n": n, "log": []}, "seats": {}, "players": {}, "secret": None}


def checkpoint(version: int, state: dict[str, object], epoch: int = 0) -> Checkpoint:
    return Checkpoint(version, epoch, state_hash(state), state, float(version))


async def new_table(store: Store, table_id: str = "t1") -> dict[str, object]:
    state = initial()
    meta = TableMeta(table_id, "tests:Game", 7, {"k": 1}, ("ann", "bob"), 1.5)
    await store.create_table(meta, checkpoint(0, state))
    return state


def chain(state: dict[str, object], start: int, count: int, epoch: int = 0) -> list[LogRecord]:
    """Records for versions start..start+count-1, each appending to the log and counting."""
    out = []
    for v in range(start, start + count):
        delta = Delta((Set(("game", "n"), v), Splice(("game", "log"), v - 1, 0, (f"m{v}",))))
        if v - 1 > len(state["game"]["log"]):  # type: ignore[index]
            delta = Delta((Set(("game", "n"), v),))
        state = patch(state, delta)  # type: ignore[assignment]
        action = PlayerAction("ann", "ann-c", v, v - 1, "say", {"text": f"m{v}", "x": [1.5, None]})
        out.append(LogRecord(v, epoch, action, delta, state_hash(state), 100.0 + v))
    return out


def replay(state: dict[str, object], records: list[LogRecord]) -> dict[str, object]:
    for r in records:
        state = patch(state, r.delta)  # type: ignore[assignment]
        assert state_hash(state) == r.hash
    return state


async def test_new_table_loads_at_version_zero(store: Store) -> None:
    state = await new_table(store)
    stored = await store.load("t1")
    assert stored.meta == TableMeta("t1", "tests:Game", 7, {"k": 1}, ("ann", "bob"), 1.5)
    assert stored.checkpoint.state == state and stored.checkpoint.hash == state_hash(state)
    assert (stored.records, stored.epoch, stored.fork_version, stored.head) == ([], 0, 0, 0)


async def test_create_twice_is_refused(store: Store) -> None:
    await new_table(store)
    with pytest.raises(TableExistsError):
        await new_table(store)


async def test_missing_table(store: Store) -> None:
    with pytest.raises(TableNotFoundError):
        await store.load("nope")
    with pytest.raises(TableNotFoundError):
        await store.append("nope", 0, chain(initial(), 1, 1))
    with pytest.raises(TableNotFoundError):
        await store.read_log("nope", 1, 5)


async def test_records_round_trip_exactly(store: Store) -> None:
    state = await new_table(store)
    records = chain(state, 1, 5)
    await store.append("t1", 0, records[:2])
    await store.append("t1", 0, records[2:])
    stored = await store.load("t1")
    assert stored.records == records
    assert stored.head == 5
    assert replay(state, stored.records) == replay(state, records)
    assert await store.read_log("t1", 2, 3) == records[1:3]


async def test_system_records_without_action(store: Store) -> None:
    state = await new_table(store)
    r = LogRecord(1, 0, None, Delta((Set(("seats", "cid"), {"connected": True}),)), "h", 0.0)
    await store.append("t1", 0, [r])
    assert (await store.load("t1")).records == [r]
    assert state  # unchanged fixture state


@pytest.mark.parametrize("first", [0, 1, 3, 7])
async def test_append_must_continue_the_head(store: Store, first: int) -> None:
    state = await new_table(store)
    await store.append("t1", 0, chain(state, 1, 1))
    with pytest.raises(FencedError):
        await store.append("t1", 0, chain(state, first, 2))
    assert (await store.load("t1")).head == 1


async def test_two_writers_cannot_both_write_a_version(store: Store) -> None:
    state = await new_table(store)
    mine = chain(state, 1, 3)
    theirs = [LogRecord(r.version, 0, None, r.delta, r.hash, 0.0) for r in mine]
    results = await asyncio.gather(
        store.append("t1", 0, mine), store.append("t1", 0, theirs), return_exceptions=True
    )
    assert sum(isinstance(r, FencedError) for r in results) == 1
    assert sum(r is None for r in results) == 1
    stored = await store.load("t1")
    winner = mine if results[0] is None else theirs
    assert stored.records == winner


async def test_stale_epoch_is_fenced(store: Store) -> None:
    state = await new_table(store)
    await store.append("t1", 0, chain(state, 1, 3))
    await store.reset("t1", 0, checkpoint(1, replay(state, chain(state, 1, 1)), epoch=1))
    with pytest.raises(FencedError) as info:
        await store.append("t1", 0, chain(state, 2, 1))
    assert info.value.epoch == 1
    with pytest.raises(FencedError):
        await store.reset("t1", 0, checkpoint(0, state, epoch=2))


async def test_reset_drops_later_versions_and_moves_epoch(store: Store) -> None:
    state = await new_table(store)
    records = chain(state, 1, 6)
    await store.append("t1", 0, records[:4], checkpoint(4, replay(state, records[:4])))
    await store.append("t1", 0, records[4:])
    at2 = replay(state, records[:2])
    await store.reset("t1", 0, checkpoint(2, at2, epoch=1))
    stored = await store.load("t1")
    assert (stored.epoch, stored.fork_version, stored.head) == (1, 2, 2)
    assert stored.checkpoint.version == 2 and stored.checkpoint.state == at2
    assert await store.read_log("t1", 1, 10) == records[:2]
    assert await store.checkpoint_at("t1", 10) == checkpoint(2, at2, epoch=1)
    new = chain(at2, 3, 2, epoch=1)
    await store.append("t1", 1, new)
    assert (await store.load("t1")).records == new
    assert (await store.load("t1", retain=100)).records == [*records[:2], *new]


async def test_load_picks_checkpoint_by_retain(store: Store) -> None:
    state = await new_table(store)
    records = chain(state, 1, 30)
    for start in range(0, 30, 10):
        part = records[start : start + 10]
        at = replay(state, records[: start + 10])
        await store.append("t1", 0, part, checkpoint(start + 10, at))
    assert (await store.load("t1")).checkpoint.version == 30
    assert (await store.load("t1", retain=5)).checkpoint.version == 20
    loaded = await store.load("t1", retain=15)
    assert loaded.checkpoint.version == 10 and loaded.records == records[10:]
    assert (await store.load("t1", retain=1000)).checkpoint.version == 0
    assert (await store.checkpoint_at("t1", 19)).version == 10  # type: ignore[union-attr]


async def test_checkpoint_must_be_reached_by_the_records(store: Store) -> None:
    state = await new_table(store)
    records = chain(state, 1, 3)
    with pytest.raises(ValueError, match="outside"):
        await store.append("t1", 0, records, checkpoint(9, state))
    assert (await store.load("t1")).head == 0


async def test_unstorable_record_writes_nothing(store: Store) -> None:
    state = await new_table(store)
    bad = LogRecord(2, 0, None, Delta((Add(("game", "x"), 1),)), "h", 0.0)
    with pytest.raises(ValueError, match="non-native"):
        await store.append("t1", 0, [*chain(state, 1, 1), bad])
    assert (await store.load("t1")).head == 0


async def test_tables_lists_every_table(store: Store) -> None:
    assert await store.tables() == []
    for name in ("b", "a", "c"):
        state = await new_table(store, name)
    await store.append("b", 0, chain(state, 1, 4))
    infos = await store.tables()
    assert [(i.table_id, i.head, i.epoch, i.game) for i in infos] == [
        ("a", 0, 0, "tests:Game"),
        ("b", 4, 0, "tests:Game"),
        ("c", 0, 0, "tests:Game"),
    ]
    assert infos[1].updated == 104.0 and infos[1].created == 1.5


async def test_compaction_keeps_what_the_policy_says(store: Store) -> None:
    state = await new_table(store)
    records = chain(state, 1, 50)
    for start in range(0, 50, 10):
        at = replay(state, records[: start + 10])
        await store.append("t1", 0, records[start : start + 10], checkpoint(start + 10, at))
    dropped = await store.compact("t1", RetentionPolicy(keep_checkpoints=2, keep_versions=15))
    # kept checkpoints 40, 50; log kept from min(40, 50 - 15) = 35 on
    assert dropped == 35
    assert await store.checkpoint_at("t1", 39) is None
    assert [r.version for r in await store.read_log("t1", 0, 100)] == list(range(36, 51))
    stored = await store.load("t1", retain=1000)
    assert stored.checkpoint.version == 40
    assert replay(stored.checkpoint.state, stored.records) == replay(state, records)
    assert (await store.tables())[0].oldest_version == 40
    await store.append("t1", 0, chain(replay(state, records), 51, 1))
    assert (await store.load("t1")).head == 51


async def test_group_commit_isolates_failures(store: Store) -> None:
    states = {}
    for i in range(8):
        states[i] = await new_table(store, f"g{i}")
    jobs = [store.append(f"g{i}", 0, chain(states[i], 1, 3)) for i in range(8)]
    jobs.append(store.append("g3", 0, chain(states[3], 1, 1)))  # loses: g3 v1 is taken
    results = await asyncio.gather(*jobs, return_exceptions=True)
    assert results[:8] == [None] * 8
    assert isinstance(results[8], FencedError)
    for i in range(8):
        assert (await store.load(f"g{i}")).head == 3


async def test_everything_survives_reopening(factory: StoreFactory) -> None:
    store = await factory.open()
    state = await new_table(store)
    records = chain(state, 1, 12)
    await store.append("t1", 0, records[:6], checkpoint(6, replay(state, records[:6])))
    await store.append("t1", 0, records[6:])
    await store.close()
    again = await factory.open()
    stored = await again.load("t1", retain=100)
    assert stored.records == records and stored.checkpoint.version == 0
    assert (await again.load("t1")).checkpoint.version == 6
    await again.append("t1", 0, chain(replay(state, records), 13, 1))
    assert (await again.load("t1")).head == 13


native_deltas = st.lists(
    st.one_of(
        st.builds(lambda v: Set(("game", "v"), v), values),
        st.builds(lambda v: Splice(("game", "log"), 0, 0, (v,)), values),
        st.just(Remove(("game", "n"))),
    ),
    min_size=1,
    max_size=4,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=native_deltas, payload=values)
async def test_any_values_round_trip(
    store: Store, ops: list[Set | Splice | Remove], payload: object
) -> None:
    table_id = f"h{abs(hash((repr(ops), repr(payload)))) % 10**9}"
    try:
        await new_table(store, table_id)
    except TableExistsError:
        return
    action = PlayerAction("p", "c", 1, 0, "t", payload)  # type: ignore[arg-type]
    record = LogRecord(1, 0, action, Delta(tuple(ops)), "h", 0.25)
    await store.append(table_id, 0, [record])
    assert (await store.load(table_id)).records == [record]
