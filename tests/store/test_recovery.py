"""A table written through a store comes back exactly: recovery, dedupe across restarts,
rollback epochs, compaction, store faults and fencing of a stale owner."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from statesync import reasons
from statesync.actions import Accepted, PlayerAction, Rejected
from statesync.errors import HashMismatchError, TableExistsError
from statesync.games.holdem import Holdem, legal_actions
from statesync.hashing import state_hash
from statesync.records import LogRecord
from statesync.rng import Rng
from statesync.snapshot import StateDelta, StateSnapshot
from statesync.storage import RetentionPolicy
from statesync.store import FaultyStore, MemoryStore
from statesync.synchronizer import StateSynchronizer

if TYPE_CHECKING:
    from statesync.storage import Store
    from tests.store.conftest import StoreFactory

PLAYERS = ["ann", "bob", "cid", "dee"]
REF = "statesync.games.holdem:Holdem"


async def new_table(store: Store, table_id: str = "t", **options: Any) -> StateSynchronizer:
    return await StateSynchronizer.create(
        Holdem(),
        store,
        table_id,
        players=PLAYERS,
        seed=11,
        config={"stack": 1000},
        game_ref=REF,
        clock=Clock(),
        **options,
    )


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        self.t += 0.5
        return self.t


class Bots:
    """Plays legal hold'em actions, one client per player, with increasing seqs."""

    def __init__(self, seed: int = 3) -> None:
        self.rng = Rng(seed)
        self.seq = dict.fromkeys(PLAYERS, 0)
        self.sent: list[PlayerAction] = []

    def next(self, table: StateSynchronizer) -> PlayerAction | None:
        actor = table.state["game"]["turn"]
        choices = legal_actions(table.state, actor) if actor else []
        if not choices:
            return None
        kind, payload = self.rng.choice(choices)
        self.seq[actor] += 1
        a = PlayerAction(actor, f"{actor}-c", self.seq[actor], table.version, kind, payload)
        self.sent.append(a)
        return a

    async def play(self, table: StateSynchronizer, n: int) -> list[PlayerAction]:
        done = []
        for _ in range(n):
            a = self.next(table)
            if a is None:
                break
            [outcome] = await table.submit([a])
            assert outcome.ok, outcome
            done.append(a)
        return done


def untimed(update: StateDelta | StateSnapshot) -> StateDelta | StateSnapshot:
    return replace(update, timestamp=0.0) if isinstance(update, StateSnapshot) else update


def same(a: StateSynchronizer, b: StateSynchronizer) -> None:
    assert (a.version, a.epoch, a.hash) == (b.version, b.epoch, b.hash)
    assert a.state == b.state
    assert b.hash == state_hash(b.state)


async def test_create_refuses_an_existing_table(store: Store) -> None:
    await new_table(store)
    with pytest.raises(TableExistsError):
        await new_table(store)


async def test_a_table_comes_back_exactly(factory: StoreFactory) -> None:
    store = await factory.open()
    live = await new_table(store, checkpoint_every=7)
    await Bots().play(live, 40)
    await store.close()
    again = await factory.open()
    loaded = await StateSynchronizer.load(again, "t", Holdem())
    same(live, loaded)
    assert loaded.history.base_version == 0  # the whole history is retained again
    for v in (0, 13, 39):
        assert loaded.state_at(v) == live.state_at(v)
    # A client catches up after the restart exactly as it would have before it.
    for v in (5, live.version - 2):
        assert untimed(loaded.sync(v, player_id="ann")) == untimed(live.sync(v, player_id="ann"))
    assert isinstance(loaded.sync(live.version - 2, player_id="ann"), StateDelta)


async def test_loading_replays_only_from_a_checkpoint(store: Store) -> None:
    live = await new_table(store, checkpoint_every=10, history_versions=5)
    await Bots().play(live, 33)
    stored = await store.load("t", retain=5)
    assert stored.checkpoint.version == 20 and len(stored.records) == 13
    loaded = await StateSynchronizer.load(store, "t", Holdem(), history_versions=5)
    same(live, loaded)
    assert isinstance(loaded.sync(20, player_id="bob"), StateSnapshot)  # history: 28..33
    assert isinstance(loaded.sync(28, player_id="bob"), StateDelta)


async def test_a_retried_action_takes_effect_once_across_a_restart(store: Store) -> None:
    live = await new_table(store, checkpoint_every=4)
    bots = Bots()
    played = await bots.play(live, 10)
    loaded = await StateSynchronizer.load(store, "t", Holdem())
    for a in (played[1], played[6], played[-1]):  # one behind a checkpoint, two after
        [outcome] = await loaded.submit([a])
        assert isinstance(outcome, Accepted) and outcome.duplicate
    assert loaded.version == live.version
    nxt = bots.next(loaded)
    assert nxt is not None
    [outcome] = await loaded.submit([nxt])
    assert outcome.ok and not outcome.duplicate


async def test_rollback_survives_a_restart(store: Store) -> None:
    live = await new_table(store, checkpoint_every=5)
    bots = Bots()
    await bots.play(live, 12)
    await live.rollback(6)
    assert live.epoch == 1
    await Bots(seed=99).play(live, 4)
    loaded = await StateSynchronizer.load(store, "t", Holdem())
    same(live, loaded)
    # A client of the old epoch past the fork gets a snapshot, not a wrong delta.
    assert isinstance(loaded.sync(9, player_id="ann", epoch=0), StateSnapshot)


async def test_a_stale_owner_is_fenced(store: Store) -> None:
    a = await new_table(store)
    await Bots().play(a, 3)
    b = await StateSynchronizer.load(store, "t", Holdem())
    bots = Bots(seed=5)
    bots.seq = {p: 100 for p in PLAYERS}
    await bots.play(b, 2)  # b is the owner now
    before = (a.version, a.hash)
    nxt = bots.next(a)
    assert nxt is not None
    [outcome] = await a.submit([nxt])
    assert isinstance(outcome, Rejected) and outcome.code == reasons.STORE_UNAVAILABLE
    assert a.fenced and (a.version, a.hash) == before
    [again] = await a.submit([nxt])
    assert isinstance(again, Rejected) and again.code == reasons.STORE_UNAVAILABLE
    same(b, await StateSynchronizer.load(store, "t", Holdem()))


async def test_corrupt_log_fails_loudly_with_both_hashes() -> None:
    store = MemoryStore()
    live = await new_table(store)
    await Bots().play(live, 6)
    row = store._tables["t"].log[3]
    row.hash = "0" * 32
    with pytest.raises(HashMismatchError) as info:
        await StateSynchronizer.load(store, "t", Holdem())
    err = info.value
    assert err.version == 4 and err.expected_hash == "0" * 32
    assert err.actual_hash == live.history.entry(4).hash
    assert "0" * 32 in str(err) and err.actual_hash in str(err)


async def test_compaction_bounds_the_store(store: Store) -> None:
    policy = RetentionPolicy(keep_checkpoints=2, keep_versions=3)
    live = await new_table(store, checkpoint_every=5, retention=policy)
    await Bots().play(live, 40)
    log = await store.read_log("t", 0, 1000)
    assert len(log) <= 10 and log[-1].version == live.version
    assert (await store.tables())[0].oldest_version >= 30
    same(live, await StateSynchronizer.load(store, "t", Holdem()))


# ---------------------------------------------------------------- store faults


async def test_store_failure_rolls_back_rejects_and_recovers(factory: StoreFactory) -> None:
    store = FaultyStore(await factory.open())
    live = await new_table(store)
    bots = Bots()
    await bots.play(live, 5)
    durable = (live.version, live.hash, live.state)
    a = bots.next(live)
    assert a is not None
    store.fail_next(1)
    [outcome] = await live.submit([a])
    assert isinstance(outcome, Rejected) and outcome.code == reasons.STORE_UNAVAILABLE
    assert (live.version, live.hash, live.state) == durable
    assert live.durable_version == live.version
    store.down = True
    [outcome] = await live.submit([a])
    assert isinstance(outcome, Rejected) and outcome.code == reasons.STORE_UNAVAILABLE
    store.down = False
    [outcome] = await live.submit([a])  # the same action, retried: applied once
    assert isinstance(outcome, Accepted) and not outcome.duplicate
    await bots.play(live, 5)
    same(live, await StateSynchronizer.load(store.inner, "t", Holdem()))


async def test_a_lost_acknowledgement_is_resolved_by_reloading(store: Store) -> None:
    faulty = FaultyStore(store)
    live = await new_table(faulty)
    bots = Bots()
    await bots.play(live, 4)
    a = bots.next(live)
    assert a is not None
    faulty.lose_next_ack()
    [outcome] = await live.submit([a])  # committed, but the table was told it failed
    assert isinstance(outcome, Rejected) and outcome.code == reasons.STORE_UNAVAILABLE
    b = bots.next(live)
    assert b is not None
    [outcome] = await live.submit([b])  # the store is ahead: this table is stale
    assert isinstance(outcome, Rejected) and live.fenced
    reloaded = await StateSynchronizer.load(store, "t", Holdem())
    [retry] = await reloaded.submit([a])
    assert isinstance(retry, Accepted) and retry.duplicate and retry.version == 5


async def test_system_actions_and_batches_are_stored(store: Store) -> None:
    live = await new_table(store)
    await live.set_connected("bob", False)
    await live.set_connected("bob", True)
    outs = await live.submit(
        [PlayerAction("x", "x-c", 1, 0, "fold"), PlayerAction("y", "y-c", 1, 0, "fold")]
    )
    assert not any(o.ok for o in outs)
    records: list[LogRecord] = await store.read_log("t", 1, 10)
    assert [(r.version, r.action.type if r.action else None) for r in records] == [
        (1, "$disconnect"),
        (2, "$connect"),
    ]
    assert records[0].timestamp < records[1].timestamp
    same(live, await StateSynchronizer.load(store, "t", Holdem()))


async def test_a_failed_batch_keeps_the_answer_of_a_resend_applied_before() -> None:
    """A re-sent action that took effect before the batch keeps its answer (accepted, as a
    duplicate at its version) when the batch's write fails; the new actions are refused."""
    faulty = FaultyStore(MemoryStore())
    table = await new_table(faulty)
    bots = Bots()
    first = bots.next(table)
    assert first is not None
    assert (await table.submit([first]))[0].ok
    fresh = bots.next(table)
    assert fresh is not None
    faulty.fail_next(1)
    again, refused = await table.submit([first, fresh])
    assert isinstance(again, Accepted) and again.duplicate and again.version == 1
    assert isinstance(refused, Rejected) and refused.code == reasons.STORE_UNAVAILABLE
    assert table.version == 1
    assert (await table.submit([fresh]))[0].ok
