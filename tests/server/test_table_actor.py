"""TableActor: serialization, group commit, fan-out grouping, back-pressure, epochs, ticks,
store failures and fencing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from statesync import reasons
from statesync.actions import Accepted, Outcome, PlayerAction, Rejected
from statesync.games import Arena, Holdem, TicTacToe
from statesync.games import holdem as holdem_rules
from statesync.records import Checkpoint, LogRecord
from statesync.server.table import Subscription, TableActor
from statesync.snapshot import StateDelta, StateSnapshot
from statesync.storage import Store
from statesync.store import FaultyStore, MemoryStore, SQLiteStore
from statesync.synchronizer import StateSynchronizer

Update = StateDelta | StateSnapshot


class RecordingStore:
    """Wraps a store; records every append (the versions it made durable) in ``events``,
    and fails if two appends ever overlap."""

    def __init__(self, inner: Store, events: list[tuple[str, Any]]) -> None:
        self.inner = inner
        self.events = events
        self.in_flight = 0
        self.batch_sizes: list[int] = []

    async def append(
        self,
        table_id: str,
        epoch: int,
        records: Sequence[LogRecord],
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.in_flight += 1
        assert self.in_flight == 1, "two appends to one table overlapped"
        try:
            await asyncio.sleep(0)  # give other tasks every chance to overlap
            await self.inner.append(table_id, epoch, records, checkpoint)
        finally:
            self.in_flight -= 1
        self.batch_sizes.append(len(records))
        self.events.append(("append", [r.version for r in records]))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Outbox:
    """A connection's outbox as the actor sees it: ``send`` returns False while ``full``."""

    def __init__(self) -> None:
        self.items: list[Update] = []
        self.full = False

    def send(self, update: Update) -> bool:
        if self.full:
            return False
        self.items.append(update)
        return True


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s: Store = (
        MemoryStore() if request.param == "memory" else await SQLiteStore.open(tmp_path / "t.db")
    )
    yield s
    await s.close()


def place(player: str, seq: int, cell: int, base: int = 0) -> PlayerAction:
    return PlayerAction(player, f"{player}-c", seq, base, "place", {"cell": cell})


def move(player: str, seq: int, vx: int = 1) -> PlayerAction:
    return PlayerAction(player, f"{player}-c", seq, 0, "move", {"vx": vx, "vy": 0})


async def started(actor: TableActor) -> TableActor:
    actor.start()
    return actor


async def tictactoe(store: Store, **kw: Any) -> TableActor:
    return await started(
        await TableActor.open(TicTacToe(), store, "t", create_players=["alice", "bob"], **kw)
    )


# ---------------------------------------------------------------------- serialization


async def test_concurrent_acts_are_serialized_gapless_and_answered_after_the_append(
    store: Store,
) -> None:
    events: list[tuple[str, Any]] = []
    rec = RecordingStore(store, events)
    players = [f"p{i}" for i in range(10)]
    actor = await started(
        await TableActor.open(Arena(), rec, "a", create_players=players, config={"npcs": 2})
    )

    async def player(p: str) -> list[Outcome]:
        got = []
        for seq in range(1, 11):
            outcome = await actor.act(move(p, seq, vx=seq % 3))
            events.append(("outcome", outcome.version))
            got.append(outcome)
        return got

    results = await asyncio.gather(*(player(p) for p in players))
    await actor.stop()

    outcomes = [o for r in results for o in r]
    assert len(outcomes) == 100 and all(isinstance(o, Accepted) for o in outcomes)
    assert sorted(o.version for o in outcomes) == list(range(1, 101))  # gapless, each once
    for r in results:  # one client's actions take effect in its order
        assert [o.version for o in r] == sorted(o.version for o in r)
    durable: set[int] = set()
    for kind, what in events:
        if kind == "append":
            durable.update(what)
        else:
            assert what in durable, f"outcome for version {what} delivered before its append"
    assert actor.stats["actions"] == 100 and actor.stats["rejected"] == 0
    assert actor.stats["batches"] == len(rec.batch_sizes) < 100  # group commit happened
    assert actor.sync.version == 100
    reloaded = await StateSynchronizer.load(store, "a", Arena())
    assert reloaded.hash == actor.sync.hash


async def test_max_batch_bounds_each_submit() -> None:
    events: list[tuple[str, Any]] = []
    rec = RecordingStore(MemoryStore(), events)
    actor = await TableActor.open(Arena(), rec, "a", create_players=["p"], max_batch=3)
    tasks = [asyncio.create_task(actor.act(move("p", seq))) for seq in range(1, 11)]
    await asyncio.sleep(0)  # every act() is queued before the actor starts
    actor.start()
    outcomes = await asyncio.gather(*tasks)
    await actor.stop()
    assert [o.version for o in outcomes] == list(range(1, 11))
    assert rec.batch_sizes == [3, 3, 3, 1]


async def test_system_actions_are_serialized_with_player_actions() -> None:
    actor = await started(await TableActor.open(TicTacToe(), MemoryStore(), "t"))
    joined = await asyncio.gather(actor.join("alice"), actor.join("bob"), actor.join("alice"))
    assert [o.ok for o in joined] == [True, True, False]
    assert isinstance(joined[2], Rejected) and joined[2].code == reasons.ALREADY_SEATED
    assert actor.sync.players == ("alice", "bob")
    assert (await actor.set_connected("alice", False)).ok
    refused = await actor.act(place("alice", 1, 4, base=actor.sync.version))
    assert isinstance(refused, Rejected) and refused.code == reasons.DISCONNECTED
    assert (await actor.set_connected("alice", True)).ok
    assert (await actor.act(place("alice", 2, 4, base=actor.sync.version))).ok
    assert (await actor.leave("bob")).ok
    assert list(actor.sync.players) == ["alice"]
    await actor.stop()


async def test_act_refuses_the_engine_identity_and_calls_after_stop() -> None:
    actor = await tictactoe(MemoryStore())
    with pytest.raises(ValueError, match="reserved"):
        await actor.act(PlayerAction("alice", "$system", 1, 0, "$join"))
    await actor.stop()
    with pytest.raises(RuntimeError):
        await actor.act(place("alice", 1, 4))
    assert not actor.running


async def test_act_nowait_answers_by_callback_in_order_and_survives_a_bad_callback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    actor = await tictactoe(MemoryStore())
    answers: list[tuple[str, Outcome | BaseException]] = []

    def bad(outcome: Outcome | BaseException) -> None:
        answers.append(("bad", outcome))
        raise KeyError("a bug in the caller")

    actor.act_nowait(place("alice", 1, 0), lambda o: answers.append(("a1", o)))
    actor.act_nowait(place("bob", 1, 0), bad)  # the cell is taken: rejected
    actor.act_nowait(place("bob", 2, 4), lambda o: answers.append(("b2", o)))
    await actor.drain()
    assert [name for name, _ in answers] == ["a1", "bad", "b2"]
    (_, a1), (_, b1), (_, b2) = answers
    assert isinstance(a1, Accepted) and a1.version == 1
    assert isinstance(b1, Rejected)
    assert isinstance(b2, Accepted) and b2.version == 2
    assert "callback failed" in caplog.text  # logged; the actor carries on
    assert actor.running and actor.sync.version == 2
    with pytest.raises(ValueError, match="reserved"):
        actor.act_nowait(PlayerAction("alice", "$system", 9, 0, "$join"), answers.append)
    await actor.stop()
    with pytest.raises(RuntimeError):
        actor.act_nowait(place("alice", 3, 8), answers.append)


async def test_act_nowait_gets_the_stop_error_when_the_actor_stops_first() -> None:
    faulty = FaultyStore(MemoryStore())
    actor = await tictactoe(faulty)
    faulty.fail_next(1)
    faulty.down = True  # the answer waits for the store, then the actor is stopped
    answers: list[Outcome | BaseException] = []
    actor.act_nowait(place("alice", 1, 0), answers.append)
    await asyncio.sleep(0.1)
    assert answers == []
    await actor.stop()
    [error] = answers
    assert isinstance(error, RuntimeError) and "stopped" in str(error)


async def test_stop_applies_answers_and_flushes_queued_actions() -> None:
    clock = FakeClock()  # frozen: no tick ever falls due, only stop() flushes
    actor = await TableActor.open(
        Arena(), MemoryStore(), "a", create_players=["p", "q"], tick_rate=20, clock=clock
    )
    box = Outbox()
    sub = actor.subscribe(None, send=box.send)
    tasks = [asyncio.create_task(actor.act(move(p, s))) for s in range(1, 6) for p in "pq"]
    await asyncio.sleep(0)  # all queued
    actor.start()
    await actor.stop()
    assert all(t.done() and t.result().ok for t in tasks)
    assert actor.sync.version == 10
    assert len(box.items) == 1 and isinstance(box.items[0], StateSnapshot)
    assert sub.version == 10 and actor.stats["flushes"] == 1


# ---------------------------------------------------------------------- fan-out


def assert_own_view(update: Update, viewer: str | None) -> None:
    """``update`` holds nothing private of anyone but ``viewer``."""
    if isinstance(update, StateSnapshot):
        assert not update.full and update.secret_state is None
        assert update.viewer == viewer
        assert set(update.player_states) == ({viewer} if viewer else set())
    else:
        for op in update.delta.ops:
            assert op.path[:1] != ("secret",)
            if op.path[:1] == ("players",):
                assert len(op.path) >= 2 and op.path[1] == viewer, op.path


async def test_one_sync_call_per_group_and_each_player_gets_only_their_own_view() -> None:
    players = ["ann", "bob", "cat"]
    actor = await started(
        await TableActor.open(Holdem(), MemoryStore(), "h", create_players=players, seed=3)
    )
    calls: list[tuple[int, str | None]] = []  # (version, viewer): one per group
    batches: list[int] = []  # sync_views calls
    real_sync_views = actor.sync.sync_views

    def counting(version: int, viewers: Any, **kw: Any) -> list[Update]:
        calls.extend((version, v) for v in viewers)
        batches.append(version)
        return real_sync_views(version, viewers, **kw)

    actor.sync.sync_views = counting  # type: ignore[method-assign]
    spectators = [Outbox() for _ in range(200)]
    for box in spectators:
        actor.subscribe(None, send=box.send)
    mine = {p: Outbox() for p in players}
    for p, box in mine.items():
        actor.subscribe(p, send=box.send)
    await actor.drain()
    assert actor.stats["flushes"] == 1  # 203 subscribe() wake-ups, one flush
    assert len(calls) == 4  # one snapshot for all spectators, one per player
    seq = dict.fromkeys(players, 0)
    for _ in range(6):
        turn = actor.sync.state["game"]["turn"]
        kind, payload = holdem_rules.legal_actions(actor.sync.state, turn)[1]
        seq[turn] += 1
        before = len(calls)
        out = await actor.act(
            PlayerAction(turn, f"{turn}-c", seq[turn], actor.sync.version, kind, payload)
        )
        assert out.ok
        await actor.drain()
        assert len(calls) - before == 4
    assert actor.stats["syncs"] == len(calls) == 4 * 7
    assert len(batches) == 7  # everyone at one version: one sync_views call per flush
    for i in range(7):  # every spectator got the very same object, in every flush
        first = spectators[0].items[i]
        assert all(box.items[i] is first for box in spectators)
        assert_own_view(first, None)
    for p, box in mine.items():
        assert len(box.items) == 7
        assert isinstance(box.items[0], StateSnapshot)
        assert box.items[0].player_states[p] == actor.sync.state_at(0)["players"][p]
        for update in box.items:
            assert_own_view(update, p)
    assert {c[1] for c in calls} == {None, *players}  # never the full state
    await actor.stop()


async def test_subscribers_at_different_versions_form_different_groups() -> None:
    actor = await tictactoe(MemoryStore())
    await actor.act(place("alice", 1, 0))
    a, b, c = Outbox(), Outbox(), Outbox()
    actor.subscribe(None, version=0, epoch=0, send=a.send)
    actor.subscribe(None, version=1, epoch=0, send=b.send)  # already up to date
    actor.subscribe(None, send=c.send)
    await actor.drain()
    assert actor.stats["syncs"] == 2
    assert isinstance(a.items[0], StateDelta) and a.items[0].base_version == 0
    assert b.items == [] and isinstance(c.items[0], StateSnapshot)
    await actor.stop()


async def test_lagging_subscriber_gets_one_squashed_update_after_resume() -> None:
    actor = await tictactoe(MemoryStore())
    replica = StateSynchronizer.from_snapshot(actor.sync.snapshot("alice"))
    box = Outbox()
    sub = actor.subscribe("alice", version=0, epoch=0, send=box.send)
    box.full = True
    moves = [place("alice", 1, 0), place("bob", 1, 4), place("alice", 2, 1), place("bob", 2, 5)]
    assert (await actor.act(moves[0])).ok
    await actor.drain()
    assert sub.lagging and sub.version == 0 and actor.stats["lagging"] == 1
    syncs = actor.stats["syncs"]
    for m in moves[1:]:
        assert (await actor.act(m)).ok
    await actor.drain()
    assert actor.stats["syncs"] == syncs  # a lagging subscriber costs nothing
    assert box.items == []
    box.full = False
    sub.resume()
    await actor.drain()
    [update] = box.items
    assert isinstance(update, StateDelta) and (update.base_version, update.version) == (0, 4)
    await replica.apply_delta(update)  # checks the hash of alice's view
    assert replica.hash == actor.sync.view_hash("alice")
    assert not sub.lagging and sub.version == 4
    await actor.stop()


async def test_resync_forces_a_snapshot_shared_by_the_viewer() -> None:
    actor = await tictactoe(MemoryStore())
    b1, b2 = Outbox(), Outbox()
    s1 = actor.subscribe("bob", send=b1.send)
    s2 = actor.subscribe("bob", send=b2.send)
    await actor.drain()
    await actor.act(place("alice", 1, 0))
    await actor.drain()
    assert isinstance(b1.items[-1], StateDelta)
    syncs = actor.stats["syncs"]
    s1.resync()
    s2.resync()
    await actor.drain()
    assert actor.stats["syncs"] == syncs + 1
    assert b1.items[-1] is b2.items[-1]
    snap = b1.items[-1]
    assert isinstance(snap, StateSnapshot) and snap.version == 1 and snap.verify()
    assert snap.hash == actor.sync.view_hash("bob")
    await actor.act(place("bob", 1, 4))
    await actor.drain()
    assert isinstance(b1.items[-1], StateDelta)  # back to deltas
    await actor.stop()


async def test_closed_and_failing_subscribers_get_nothing_more() -> None:
    actor = await tictactoe(MemoryStore())
    box = Outbox()
    sub = actor.subscribe(None, send=box.send)

    def broken(update: Update) -> bool:
        raise OSError("connection reset")

    bad = actor.subscribe("bob", send=broken)
    await actor.drain()
    assert bad.closed and actor.stats["send_errors"] == 1
    sub.close()
    await actor.act(place("alice", 1, 0))
    await actor.drain()
    assert len(box.items) == 1 and actor.subscriptions == []
    await actor.stop()


@pytest.mark.parametrize("direct", [False, True])
async def test_rollback_sends_a_snapshot_to_subscribers_past_the_fork(direct: bool) -> None:
    actor = await tictactoe(MemoryStore())
    box = Outbox()
    sub = actor.subscribe("alice", send=box.send)
    for m in [place("alice", 1, 0), place("bob", 1, 4), place("alice", 2, 1)]:
        assert (await actor.act(m)).ok
    await actor.drain()
    assert (sub.version, sub.epoch) == (3, 0)
    if direct:  # allowed while the actor is idle
        await actor.sync.rollback(1)
        await actor.drain()
    else:
        await actor.rollback(1)
    update = box.items[-1]
    assert isinstance(update, StateSnapshot)
    assert (update.version, update.epoch) == (1, 1)
    assert (sub.version, sub.epoch) == (1, 1)
    assert (await actor.act(place("bob", 2, 8, base=1))).ok
    await actor.drain()
    assert isinstance(box.items[-1], StateDelta) and box.items[-1].epoch == 1
    await actor.stop()


async def test_rollback_errors_reach_the_caller() -> None:
    actor = await tictactoe(MemoryStore())
    with pytest.raises(Exception, match="version"):
        await actor.rollback(5)
    assert (await actor.act(place("alice", 1, 0))).ok  # the actor carries on
    await actor.stop()


# ---------------------------------------------------------------------- ticks


async def test_tick_rate_coalesces_updates_and_advances_the_game() -> None:
    clock = FakeClock()
    actor = await started(
        await TableActor.open(
            Arena(),
            MemoryStore(),
            "a",
            create_players=["p", "q"],
            config={"npcs": 3},
            tick_rate=10,
            clock=clock,
        )
    )
    box = Outbox()
    actor.subscribe(None, send=box.send)
    for seq in range(1, 6):
        assert (await actor.act(move("p", seq))).ok
    await actor.drain()
    assert box.items == [] and actor.stats["flushes"] == 0  # no tick yet
    clock.now += 0.1
    await actor.drain()
    assert actor.stats["ticks"] == 1 and actor.stats["flushes"] == 1
    [snap] = box.items
    assert isinstance(snap, StateSnapshot) and snap.version == 6  # five moves and a $tick
    assert actor.sync.state["game"]["tick"] == 1
    for seq in range(1, 4):
        assert (await actor.act(move("q", seq))).ok
    clock.now += 0.1
    await actor.drain()
    delta = box.items[-1]
    assert len(box.items) == 2 and isinstance(delta, StateDelta)
    assert (delta.base_version, delta.version) == (6, 10)  # coalesced: one update, 4 versions
    clock.now += 0.55  # five intervals late: one tick, four skipped
    await actor.drain()
    assert actor.stats["ticks"] == 3 and actor.stats["ticks_skipped"] == 4
    assert actor.sync.state["game"]["tick"] == 3
    await actor.stop()


async def test_a_turn_based_game_is_not_ticked_at_a_tick_rate() -> None:
    clock = FakeClock()
    actor = await tictactoe(MemoryStore(), tick_rate=5, clock=clock)
    box = Outbox()
    actor.subscribe(None, send=box.send)
    await actor.act(place("alice", 1, 0))
    await actor.act(place("bob", 1, 4))
    clock.now += 0.2
    await actor.drain()
    assert actor.sync.version == 2 and len(box.items) == 1  # no $tick versions
    await actor.stop()


# ---------------------------------------------------------------------- failures


async def test_a_store_failure_refuses_the_batch_and_the_actor_carries_on() -> None:
    faulty = FaultyStore(MemoryStore())
    actor = await tictactoe(faulty)
    box = Outbox()
    actor.subscribe(None, send=box.send)
    await actor.drain()
    faulty.fail_next(1)
    refused = await actor.act(place("alice", 1, 0))
    assert isinstance(refused, Rejected) and refused.code == reasons.STORE_UNAVAILABLE
    assert actor.sync.version == 0 and len(box.items) == 1  # nothing undurable was sent
    retried = await actor.act(place("alice", 1, 0))
    assert isinstance(retried, Accepted) and retried.version == 1
    await actor.drain()
    assert box.items[-1].version == 1
    assert actor.stats["rejected"] == 1 and actor.running
    await actor.stop()


async def test_a_lost_acknowledgement_is_answered_from_the_store() -> None:
    """The store committed but reported a failure: the actor reloads and finds the action in
    the log, so the answer is the truth (accepted, at its version), never "not applied"."""
    faulty = FaultyStore(MemoryStore())
    actor = await tictactoe(faulty)
    box = Outbox()
    actor.subscribe("bob", send=box.send)
    await actor.drain()
    faulty.lose_next_ack()
    lost = await actor.act(place("alice", 1, 0))  # committed, but reported as failed
    assert isinstance(lost, Accepted) and lost.version == 1
    assert actor.stats["reloads"] == 1 and actor.stats["recovered"] == 1
    await actor.drain()
    assert actor.sync.version == 1 and box.items[-1].version == 1  # the table moved on
    again = await actor.act(place("alice", 1, 0))  # a re-send is a duplicate
    assert isinstance(again, Accepted) and again.duplicate and again.version == 1
    assert (await actor.act(place("bob", 1, 4, base=1))).ok
    await actor.stop()


async def test_a_failed_write_is_answered_not_applied_after_checking_the_store() -> None:
    faulty = FaultyStore(MemoryStore())
    actor = await tictactoe(faulty)
    faulty.fail_next(1)  # fails before reaching the store
    refused = await actor.act(place("alice", 1, 0))
    assert isinstance(refused, Rejected) and refused.code == reasons.STORE_UNAVAILABLE
    assert actor.stats["reloads"] == 1 and actor.stats["recovered"] == 0
    assert (await faulty.load("t")).head == 0


async def test_an_exception_escaping_submit_does_not_kill_the_actor() -> None:
    actor = await tictactoe(MemoryStore())
    old = actor.sync

    async def explode(actions: Any) -> list[Outcome]:
        raise RuntimeError("boom")

    actor.sync.submit = explode  # type: ignore[method-assign]
    refused = await actor.act(place("alice", 1, 0))
    assert isinstance(refused, Rejected) and refused.code == reasons.STORE_UNAVAILABLE
    await actor.drain()
    assert actor.stats["errors"] == 1 and actor.stats["reloads"] == 1
    assert actor.sync is not old  # its memory was not trusted: a fresh load from the store
    assert (await actor.act(place("alice", 1, 0))).ok
    await actor.stop()


async def test_a_resent_action_in_a_failed_batch_keeps_its_accepted_answer() -> None:
    """Found by the simulator: a re-send of an action applied long ago shares a batch with a
    new action, and the batch's write fails. The re-send must still be answered accepted at
    its original version (not "not applied"); the new action is refused."""
    faulty = FaultyStore(MemoryStore())
    actor = await tictactoe(faulty)
    assert (await actor.act(place("alice", 1, 0))).ok
    assert (await actor.act(place("bob", 1, 4, base=1))).ok
    faulty.fail_next(1)
    again, fresh = await asyncio.gather(
        actor.act(place("alice", 1, 0)), actor.act(place("alice", 2, 8, base=2))
    )
    assert actor.stats["batches"] == 3  # both in one batch
    assert isinstance(again, Accepted) and again.duplicate and again.version == 1
    assert isinstance(fresh, Rejected) and fresh.code == reasons.STORE_UNAVAILABLE
    assert (await faulty.load("t")).head == 2
    await actor.stop()


async def test_while_the_store_is_down_the_answer_waits_for_the_truth() -> None:
    """After a failed write the actor cannot know whether it committed until the store
    answers again: the action stays unanswered (nothing is guessed) until a reload works."""
    faulty = FaultyStore(MemoryStore())
    actor = await tictactoe(faulty)

    async def explode(actions: Any) -> list[Outcome]:
        raise RuntimeError("boom")

    actor.sync.submit = explode  # type: ignore[method-assign]
    faulty.down = True
    pending = asyncio.ensure_future(actor.act(place("alice", 1, 0)))
    for _ in range(5):
        await asyncio.sleep(0.05)
    assert not pending.done()
    assert actor.stats["reload_failures"] >= 2 and actor.stats["store_waits"] >= 2
    faulty.down = False
    outcome = await pending
    assert isinstance(outcome, Rejected) and outcome.code == reasons.STORE_UNAVAILABLE
    assert actor.stats["reloads"] == 1
    assert (await actor.act(place("alice", 1, 0))).ok  # the reloaded table works
    await actor.stop()


async def test_stopping_while_the_store_is_down_leaves_the_action_unanswered() -> None:
    faulty = FaultyStore(MemoryStore())
    actor = await tictactoe(faulty)
    faulty.fail_next(1)
    faulty.down = True
    pending = asyncio.ensure_future(actor.act(place("alice", 1, 0)))
    await asyncio.sleep(0.1)
    await actor.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        await pending


async def test_a_fenced_actor_reloads_and_serves_the_winners_versions(store: Store) -> None:
    a = await tictactoe(store)
    b = await tictactoe(store)  # a second process that loaded the same table
    box = Outbox()
    sub = a.subscribe("bob", send=box.send)
    await a.drain()
    assert (await b.act(place("alice", 1, 0))).ok  # b writes version 1
    lost = await a.act(place("alice", 2, 4))  # a still believes it is at version 0
    assert isinstance(lost, Rejected) and lost.code == reasons.STORE_UNAVAILABLE
    await a.drain()  # the store was read (reloaded) before the refusal was answered
    assert a.stats["reloads"] == 1 and a.sync.version == 1 and not a.sync.fenced
    assert sub.version == 1 and isinstance(box.items[-1], StateDelta)
    assert box.items[-1].hash == a.sync.view_hash("bob")
    assert (await a.act(place("bob", 1, 4, base=1))).ok  # a owns the table again
    fenced = await b.act(place("bob", 2, 8, base=1))
    await b.drain()
    assert isinstance(fenced, Rejected) and b.stats["reloads"] == 1
    assert b.sync.hash == a.sync.hash
    await a.stop()
    await b.stop()


async def test_open_loads_an_existing_table(store: Store) -> None:
    actor = await tictactoe(store)
    await actor.act(place("alice", 1, 0))
    await actor.stop()
    again = await tictactoe(store)
    assert again.sync.version == 1 and again.sync.hash == actor.sync.hash
    dup = await again.act(place("alice", 1, 0))  # the dedupe memory came back too
    assert isinstance(dup, Accepted) and dup.duplicate
    await again.stop()


async def test_subscription_exposes_viewer_version_and_epoch() -> None:
    actor = await tictactoe(MemoryStore())
    sub: Subscription = actor.subscribe("alice", version=-1, send=Outbox().send)
    assert (sub.viewer, sub.version, sub.epoch, sub.lagging) == ("alice", -1, None, False)
    await actor.drain()
    assert (sub.version, sub.epoch) == (0, 0)
    assert actor.subscriptions == [sub]
    sub.close()
    sub.close()
    assert actor.subscriptions == [] and sub.closed
    await actor.stop()
