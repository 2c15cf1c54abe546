"""StateSynchronizer: versions, conflicts, views, sync, rollback and the DESIGN.md edge cases
that live at the engine layer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statesync import reasons
from statesync.actions import Accepted, PlayerAction, Rejected
from statesync.errors import HashMismatchError, HistoryTruncatedError, PatchError, VersionError
from statesync.game import Context, Game
from statesync.hashing import state_hash
from statesync.rng import Rng
from statesync.snapshot import StateDelta, StateSnapshot
from statesync.synchronizer import StateSynchronizer
from statesync.views import FULL


class Pile(Game):
    """A small test game: a shared counter, a public log, and a secret deck dealt into
    private hands. ``take`` needs enough on the counter, so two ``take`` actions made against
    the same version can both be legal alone and the second illegal after the first."""

    name = "pile"

    def setup(self, players: Any, config: Any, rng: Rng) -> dict[str, Any]:
        deck = [f"card{i:02d}" for i in range(40)]
        rng.shuffle(deck)
        hands = {p: {"hand": [deck.pop(), deck.pop()]} for p in players}
        game = {"count": 3, "log": [], "deep": {"a": {"b": {"c": [0] * 60}}}}
        return {"game": game, "players": hands, "secret": {"deck": deck}}

    def validate(self, state: dict[str, Any], action: PlayerAction, ctx: Context) -> str | None:
        if action.type == "take":
            n = action.payload.get("n") if isinstance(action.payload, dict) else None
            if not isinstance(n, int) or n < 1:
                return reasons.INVALID_PAYLOAD
            if state["game"]["count"] < n:
                return "pile/not_enough"
            return None
        if action.type in ("add", "draw", "say", "boom", "bad_value", "poke"):
            return None
        return reasons.UNKNOWN_TYPE

    def apply(self, draft: Any, action: PlayerAction, ctx: Context) -> None:
        game = draft["game"]
        if action.type == "take":
            game["count"] -= action.payload["n"]
        elif action.type == "add":
            game["count"] += 1
        elif action.type == "draw":
            draft["players"][action.player_id]["hand"].append(draft["secret"]["deck"].pop())
        elif action.type == "say":
            game["log"].append(f"{action.player_id}: {action.payload}")
            if len(game["log"]) > 5:
                del game["log"][0]
        elif action.type == "poke":
            game["deep"]["a"]["b"]["c"][action.payload] += 1
        elif action.type == "boom":
            game["count"] = 99
            raise RuntimeError("rules crashed half-way")
        elif action.type == "bad_value":
            game["count"] = float("nan")

    def join(self, draft: Any, player_id: str, ctx: Context) -> str | None:
        if len(draft["seats"]) > 4:
            return "action/table_full"
        draft["players"][player_id] = {"hand": [draft["secret"]["deck"].pop()]}
        return None


def act(
    player: str,
    seq: int,
    base: int,
    kind: str = "add",
    payload: Any = None,
    client: str | None = None,
) -> PlayerAction:
    return PlayerAction(player, client or f"{player}-c", seq, base, kind, payload)


def table(**kw: Any) -> StateSynchronizer:
    return StateSynchronizer(Pile(), players=["ann", "bob", "cid"], seed=5, **kw)


async def test_versions_are_gapless_and_every_state_has_one() -> None:
    t = table()
    assert t.version == 0
    outs = await t.submit([act("ann", 1, 0), act("bob", 1, 0), act("ann", 2, 0, "nope")])
    assert [o.ok for o in outs] == [True, True, False]
    assert sorted(o.version for o in outs if isinstance(o, Accepted)) == [1, 2]
    assert t.version == 2
    assert [e.version for e in t.history] == [1, 2]
    assert t.hash == state_hash(t.state)


async def test_same_base_both_legal() -> None:
    t = table()
    outs = await t.submit([act("ann", 1, 0, "take", {"n": 1}), act("bob", 1, 0, "take", {"n": 1})])
    assert all(o.ok for o in outs)
    assert t.state["game"]["count"] == 1


async def test_same_base_second_illegal_after_first() -> None:
    t = table()
    outs = await t.submit([act("ann", 1, 0, "take", {"n": 2}), act("bob", 1, 0, "take", {"n": 2})])
    codes = sorted(o.code if isinstance(o, Rejected) else "ok" for o in outs)
    assert codes == ["ok", "pile/not_enough"]
    assert t.state["game"]["count"] == 1


async def test_conflict_winner_does_not_depend_on_arrival_order() -> None:
    a, b = act("ann", 1, 0, "take", {"n": 2}), act("bob", 1, 0, "take", {"n": 2})
    t1, t2 = table(), table()
    await t1.submit([a, b])
    o2 = await t2.submit([b, a])
    assert sorted(o.ok for o in o2) == [False, True]
    assert t1.hash == t2.hash


async def test_late_action_is_rebased_not_rejected() -> None:
    t = table()
    await t.submit([act("ann", i, i - 1) for i in range(1, 6)])
    [late] = await t.submit([act("bob", 1, 0, "take", {"n": 4})])
    assert isinstance(late, Accepted) and late.version == 6


async def test_strict_game_rejects_stale_base() -> None:
    class Strict(Pile):
        strict_base = True

    t = StateSynchronizer(Strict(), players=["ann", "bob"], seed=5)
    await t.submit([act("ann", 1, 0)])
    [o] = await t.submit([act("bob", 1, 0)])
    assert isinstance(o, Rejected) and o.code == reasons.STALE_BASE
    [o] = await t.submit([act("bob", 2, 1)])
    assert o.ok


async def test_base_older_than_retained_history_is_rebased() -> None:
    t = table(history_versions=3)
    await t.submit([act("ann", i, i - 1) for i in range(1, 11)])
    assert t.history.base_version == 7
    [o] = await t.submit([act("bob", 1, 0)])
    assert o.ok
    assert isinstance(t.sync(0, player_id="bob"), StateSnapshot)


async def test_future_base_is_rejected() -> None:
    t = table()
    [o] = await t.submit([act("ann", 1, 5)])
    assert isinstance(o, Rejected) and o.code == reasons.FUTURE_BASE
    assert t.version == 0


async def test_duplicate_delivery_takes_effect_once() -> None:
    t = table()
    a = act("ann", 1, 0)
    [first] = await t.submit([a])
    before = t.hash
    [again] = await t.submit([a])
    assert again.duplicate and isinstance(again, Accepted) and again.version == first.version
    assert t.hash == before and t.version == 1
    outs = await t.submit([act("bob", 1, 1), act("bob", 1, 1)])  # twice in one batch
    assert [o.duplicate for o in outs] == [False, True]
    assert t.version == 2


async def test_rejection_is_remembered_too() -> None:
    t = table()
    a = act("ann", 1, 0, "take", {"n": 50})
    await t.submit([a])
    await t.submit([act("bob", i, 0) for i in range(1, 60)])  # now it would be legal
    [o2] = await t.submit([a])
    assert isinstance(o2, Rejected) and o2.duplicate and o2.code == "pile/not_enough"


async def test_one_clients_actions_out_of_order() -> None:
    t = table()
    says = [act("ann", s, 0, "say", f"m{s}") for s in (3, 1, 2)]
    outs = await t.submit(says)
    assert all(o.ok for o in outs)
    assert t.state["game"]["log"] == ["ann: m1", "ann: m2", "ann: m3"]
    # A lower seq arriving in a later batch still takes effect once.
    [o] = await t.submit([act("ann", 0, 3, "say", "m0")])
    assert o.ok and t.state["game"]["log"][-1] == "ann: m0"


async def test_seq_below_dedupe_window_is_refused() -> None:
    t = table(dedupe_window=4)
    await t.submit([act("ann", s, 0) for s in range(1, 10)])
    [o] = await t.submit([act("ann", 2, 9)])
    assert isinstance(o, Rejected) and o.code == reasons.SEQ_TOO_OLD


async def test_actor_not_seated() -> None:
    t = table()
    [o] = await t.submit([act("eve", 1, 0)])
    assert isinstance(o, Rejected) and o.code == reasons.NOT_SEATED


async def test_actor_disconnected() -> None:
    t = table()
    await t.set_connected("bob", False)
    [o] = await t.submit([act("bob", 1, 1)])
    assert isinstance(o, Rejected) and o.code == reasons.DISCONNECTED
    await t.set_connected("bob", True)
    [o] = await t.submit([act("bob", 2, 2)])
    assert o.ok


async def test_forged_identity_client_bound_to_another_player() -> None:
    t = table()
    await t.submit([act("ann", 1, 0, client="phone-1")])
    [o] = await t.submit([act("bob", 2, 1, client="phone-1")])
    assert isinstance(o, Rejected) and o.code == reasons.FORGED_IDENTITY


async def test_clients_cannot_send_system_actions() -> None:
    t = table()
    [o] = await t.submit([act("ann", 1, 0, "$leave")])
    assert isinstance(o, Rejected) and o.code == reasons.UNKNOWN_TYPE
    assert "ann" in t.state["seats"]


async def test_invalid_payload() -> None:
    t = table()
    [o] = await t.submit([act("ann", 1, 0, "take", {"n": "lots"})])
    assert isinstance(o, Rejected) and o.code == reasons.INVALID_PAYLOAD


async def test_rules_that_crash_change_nothing() -> None:
    t = table()
    before = (t.hash, t.version)
    [o] = await t.submit([act("ann", 1, 0, "boom")])
    assert isinstance(o, Rejected) and o.code == reasons.RULES_FAILED
    [o] = await t.submit([act("ann", 2, 0, "bad_value")])
    assert isinstance(o, Rejected) and o.code == reasons.RULES_FAILED
    assert (t.hash, t.version) == before
    assert t.state["game"]["count"] == 3


async def test_simultaneous_join_and_leave() -> None:
    t = table()
    join, leave = t._system("$join", "dan"), t._system("$leave", "bob")
    outs = await t.submit([join, leave])
    assert all(o.ok for o in outs)
    assert set(t.state["seats"]) == {"ann", "cid", "dan"}
    assert "bob" not in t.state["players"]
    # The same inputs in the other arrival order give the same state.
    t2 = table()
    await t2.submit([t2._system("$leave", "bob"), t2._system("$join", "dan")])
    assert t2.hash == t.hash
    # Join and leave of the same player in one batch.
    outs = await t.submit([t._system("$join", "eve"), t._system("$leave", "eve")])
    assert [o.ok for o in outs] == [True, True]
    assert "eve" not in t.state["seats"]


async def test_join_refused_by_the_game() -> None:
    t = table()
    await t.join("dan")
    await t.join("eve")
    o = await t.join("fay")
    assert isinstance(o, Rejected) and o.code == "action/table_full"
    o = await t.join("dan")
    assert isinstance(o, Rejected) and o.code == "action/already_seated"


# ---------------------------------------------------------------- views and hidden information


async def test_views_never_contain_other_players_hidden_state() -> None:
    t = table()
    await t.submit([act("ann", 1, 0, "draw"), act("bob", 1, 0, "draw")])
    secret = set(t.state["secret"]["deck"]) | set(t.state["players"]["bob"]["hand"])
    for update in (t.sync(0, player_id="ann"), t.snapshot("ann")):
        blob = json.dumps(
            update.delta.to_json_patch() if isinstance(update, StateDelta) else update.to_state()
        )
        assert not any(card in blob for card in secret)
        assert t.state["players"]["ann"]["hand"][-1] in blob
    spectator = json.dumps(t.snapshot(None).to_state())
    assert "card" not in spectator


async def test_view_hash_is_hash_of_the_view() -> None:
    t = table()
    await t.submit([act("ann", 1, 0, "draw"), act("bob", 1, 0, "say", "hi")])
    for viewer in ("ann", "bob", None):
        assert t.view_hash(viewer) == state_hash(t.view(viewer))
    assert t.view_hash(FULL) == state_hash(t.state)
    assert t.view_hash("ann") != t.view_hash("bob")


async def test_view_hashes_follow_private_changes_seating_and_rollback() -> None:
    # A viewer's part of the hash is remembered until their private section changes: asked
    # after every step, each view hash must still be the hash of the view.
    t = table()

    def check() -> None:
        for viewer in (*t.state["seats"], "dan", "ghost", None):
            assert t.view_hash(viewer) == state_hash(t.view(viewer)), viewer

    check()
    steps: list[Any] = [
        lambda: t.submit([act("ann", 1, 0, "draw")]),
        lambda: t.submit([act("bob", 1, 1, "say", "hi")]),
        lambda: t.join("dan"),
        lambda: t.submit([act("dan", 1, 3, "draw"), act("ann", 2, 3, "draw")]),
        lambda: t.leave("bob"),
        lambda: t.rollback(2),
        lambda: t.submit([act("cid", 1, 2, "draw")]),
        lambda: t.leave("ann"),
        lambda: t.join("ann"),
    ]
    for step in steps:
        outcome = await step()
        outcomes = outcome if isinstance(outcome, list) else [] if outcome is None else [outcome]
        assert all(o.ok for o in outcomes), outcomes
        check()
    assert t.version == 5 and t.epoch == 1


# ---------------------------------------------------------------- sync, replicas, validation


async def test_sync_state_returns_squashed_delta_from_client_version() -> None:
    t = table()
    for i in range(1, 8):
        await t.submit([act("ann", i, i - 1, "say", f"m{i}")])
    update = await t.sync_state(2, player_id="bob")
    assert isinstance(update, StateDelta)
    assert (update.base_version, update.version) == (2, 7)
    replica = StateSynchronizer.from_snapshot(t.snapshot("bob"))
    assert replica.version == 7


async def test_replica_follows_with_deltas_and_validates_hash() -> None:
    t = table()
    replica = StateSynchronizer.from_snapshot(t.snapshot("bob"))
    for i in range(1, 20):
        await t.submit([act("ann", i, i - 1, "say", f"m{i}"), act("bob", i, i - 1, "draw")])
        update = await t.sync_state(replica.version, player_id="bob")
        assert isinstance(update, StateDelta)
        await replica.apply_delta(update)
        assert replica.view_hash() == t.view_hash("bob")
        assert await t.validate_state(await replica.create_snapshot())


async def test_apply_delta_hash_mismatch_leaves_replica_unchanged() -> None:
    t = table()
    replica = StateSynchronizer.from_snapshot(t.snapshot("bob"))
    await t.submit([act("ann", 1, 0)])
    good = t.sync(0, player_id="bob")
    assert isinstance(good, StateDelta)
    bad = StateDelta(good.base_version, good.version, good.delta, "0" * 32, good.epoch)
    before = (replica.version, replica.hash)
    with pytest.raises(HashMismatchError) as info:
        await replica.apply_delta(bad)
    assert info.value.expected_hash == "0" * 32 and info.value.actual_hash == good.hash
    assert (replica.version, replica.hash) == before
    await replica.apply_delta(good)
    assert replica.version == 1


async def test_apply_delta_checks_base_version_and_epoch() -> None:
    t = table()
    replica = StateSynchronizer.from_snapshot(t.snapshot("bob"))
    await t.submit([act("ann", 1, 0)])
    await t.submit([act("ann", 2, 1)])
    d = t.sync(1, player_id="bob")
    assert isinstance(d, StateDelta)
    with pytest.raises(VersionError):
        await replica.apply_delta(d)
    d0 = t.sync(0, player_id="bob")
    assert isinstance(d0, StateDelta)
    with pytest.raises(VersionError):
        await replica.apply_delta(StateDelta(0, 2, d0.delta, d0.hash, epoch=9))


async def test_apply_delta_that_does_not_fit_raises_patch_error() -> None:
    from statesync.delta import Delta
    from statesync.ops import Remove

    replica = StateSynchronizer.from_snapshot(table().snapshot("bob"))
    with pytest.raises(PatchError):
        await replica.apply_delta(StateDelta(0, 1, Delta((Remove(("nope",)),)), "0" * 32))
    assert replica.version == 0


async def test_snapshot_when_client_is_ahead_or_history_is_gone() -> None:
    t = table(history_versions=2)
    for i in range(1, 6):
        await t.submit([act("ann", i, i - 1)])
    assert isinstance(t.sync(99, player_id="ann"), StateSnapshot)
    assert isinstance(t.sync(1, player_id="ann"), StateSnapshot)
    assert isinstance(t.sync(4, player_id="ann"), StateDelta)
    same = t.sync(5, player_id="ann")
    assert isinstance(same, StateDelta) and not same.delta


async def test_snapshot_when_delta_would_be_bigger() -> None:
    t = table()
    for i in range(1, 60):
        await t.submit([act("ann", i, i - 1, "say", "x" * 40 + str(i))])
    update = t.sync(0, player_id="bob")
    assert isinstance(update, StateDelta)  # the log is capped: squashed delta stays small
    # Sixty changes deep in the tree: sixty long paths cost more than the whole view.
    t2 = table()
    for i in range(60):
        await t2.submit([act("ann", i + 1, i, "poke", i)])
    assert isinstance(t2.sync(0, player_id=None), StateSnapshot)
    assert isinstance(t2.sync(58, player_id=None), StateDelta)


async def test_validate_state() -> None:
    t = table()
    snap0 = t.snapshot("ann")
    await t.submit([act("ann", 1, 0, "draw")])
    assert await t.validate_state(t.snapshot("ann"))
    assert await t.validate_state(snap0)  # an older retained version
    assert await t.validate_state(await t.create_snapshot())
    forged = StateSnapshot(
        snap0.version,
        snap0.hash,
        {"count": 1000, "log": []},
        snap0.player_states,
        seats=snap0.seats,
        viewer="ann",
    )
    assert not await t.validate_state(forged)
    other = t.snapshot("bob")
    relabelled = StateSnapshot(
        other.version,
        other.hash,
        other.game_state,
        other.player_states,
        seats=other.seats,
        viewer="ann",
    )
    assert not await t.validate_state(relabelled)


def test_snapshot_with_wrong_hash_cannot_seed_a_replica() -> None:
    snap = table().snapshot("ann")
    bad = StateSnapshot(
        snap.version, "f" * 32, snap.game_state, snap.player_states, seats=snap.seats, viewer="ann"
    )
    with pytest.raises(HashMismatchError):
        StateSynchronizer.from_snapshot(bad)


async def test_create_snapshot_fields() -> None:
    clock_values = iter([123.5])
    t = table(clock=lambda: next(clock_values))
    snap = await t.create_snapshot()
    assert snap.full and snap.version == 0 and snap.timestamp == 123.5
    assert set(snap.player_states) == {"ann", "bob", "cid"}
    assert snap.secret_state is not None and snap.verify()


async def test_resolve_conflict_returns_game_state() -> None:
    t = table()
    game = await t.resolve_conflict(
        [act("ann", 1, 0, "take", {"n": 2}), act("bob", 1, 0, "take", {"n": 2})]
    )
    assert game["count"] == 1
    assert sorted(o.ok for o in t.last_outcomes) == [False, True]


# ---------------------------------------------------------------- rollback


async def test_rollback_restores_state_and_starts_new_epoch() -> None:
    t = table()
    await t.submit([act("ann", 1, 0)])
    at1 = (t.hash, t.view_hash("bob"))
    bob = StateSynchronizer.from_snapshot(t.snapshot("bob"))  # bob holds version 1
    await t.submit([act("ann", 2, 1, "draw"), act("bob", 1, 1, "say", "x")])
    ahead = StateSynchronizer.from_snapshot(t.snapshot("bob"))  # holds version 3
    await t.rollback(1)
    assert t.version == 1 and t.epoch == 1
    assert (t.hash, t.view_hash("bob")) == at1
    assert t.hash == state_hash(t.state)
    # A client at the fork point gets a delta; one past it gets a snapshot.
    assert isinstance(t.sync(bob.version, player_id="bob", epoch=0), StateDelta)
    assert isinstance(t.sync(ahead.version, player_id="bob", epoch=0), StateSnapshot)
    # The rolled back actions can be submitted again and take effect.
    [o] = await t.submit([act("bob", 1, 1, "say", "x")])
    assert isinstance(o, Accepted) and not o.duplicate


async def test_rollback_outside_history() -> None:
    t = table(history_versions=2)
    for i in range(1, 6):
        await t.submit([act("ann", i, i - 1)])
    with pytest.raises(HistoryTruncatedError):
        await t.rollback(1)
    with pytest.raises(VersionError):
        await t.rollback(9)
    assert t.version == 5


async def test_state_at_rewinds_exactly() -> None:
    t = table()
    hashes = [t.hash]
    for i in range(1, 10):
        await t.submit([act("ann", i, i - 1, "say", f"m{i}"), act("bob", i, i - 1, "draw")])
        hashes.append(t.hash)
    assert t.version == 18
    for v in range(0, t.version + 1, 2):
        assert state_hash(t.state_at(v)) == hashes[v // 2]


# ---------------------------------------------------------------- determinism


class SkewedClock:
    def __init__(self, offset: float) -> None:
        self.t = offset

    def __call__(self) -> float:
        self.t += 0.37
        return self.t


async def test_client_clock_skew_changes_nothing() -> None:
    a = table(clock=SkewedClock(0))
    b = table(clock=SkewedClock(-86_400 * 365))
    batch = [
        act("ann", 1, 0, "take", {"n": 2}),
        act("bob", 1, 0, "take", {"n": 2}),
        act("cid", 1, 0, "draw"),
    ]
    await a.submit(batch)
    await b.submit(list(reversed(batch)))
    assert a.hash == b.hash
    assert a.snapshot().timestamp != b.snapshot().timestamp


actions_st = st.lists(
    st.tuples(
        st.sampled_from(["ann", "bob", "cid", "eve"]),
        st.sampled_from(["add", "take", "draw", "say", "nope"]),
        st.integers(0, 3),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(actions_st, st.integers(0, 3))
async def test_replay_is_deterministic(script: list[tuple[str, str, int]], batch: int) -> None:
    async def run() -> list[str]:
        t = table()
        seqs: dict[str, int] = {}
        pending: list[PlayerAction] = []
        hashes = []
        for player, kind, n in script:
            seqs[player] = seqs.get(player, 0) + 1
            payload = {"n": n} if kind == "take" else (f"t{n}" if kind == "say" else None)
            pending.append(act(player, seqs[player], max(0, t.version - n), kind, payload))
            if len(pending) > batch:
                await t.submit(pending)
                pending = []
                hashes.append(t.hash)
        await t.submit(pending)
        hashes.append(t.hash)
        assert t.hash == state_hash(t.state)
        return hashes

    assert await run() == await run()


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["ann", "bob", "cat"]), st.sampled_from(["add", "draw", "say"])),
        min_size=1,
        max_size=12,
    ),
    st.data(),
)
def test_sync_views_gives_each_viewer_its_own_view(moves: list[tuple[str, str]], data: Any) -> None:
    """One ``sync_views`` call for many viewers: every update, applied to that viewer's view
    at the version it holds, gives its view now, with its hash, and holds nothing private of
    anyone else (viewers the change leaves alone share one delta)."""
    from statesync.delta import patch
    from statesync.views import view_of

    players = ["ann", "bob", "cat"]
    table = StateSynchronizer(Pile(), players=players, seed=2)
    seqs = dict.fromkeys(players, 0)
    for player, kind in moves:
        seqs[player] += 1
        action = PlayerAction(player, f"{player}-c", seqs[player], table.version, kind, "hi")
        assert table.submit_nowait([action])[0].ok
    last = table.version - 1  # one entry: the case where views share a delta
    base = data.draw(st.sampled_from([last, last, *range(table.version + 1)]))
    viewers: list[Any] = data.draw(
        st.lists(st.sampled_from([None, FULL, "ann", "bob", "cat", "nobody"]), max_size=8)
    )
    updates = table.sync_views(base, viewers)
    assert len(updates) == len(viewers)
    before = table.state_at(base)
    for viewer, update in zip(viewers, updates, strict=True):
        now = table.view(viewer)
        assert update.hash == table.view_hash(viewer) == state_hash(now)
        assert isinstance(update, StateDelta)  # the range is in the history, and small
        held = before if viewer is FULL else view_of(before, viewer)
        assert patch(held, update.delta) == now
        if viewer is not FULL:
            for op in update.delta.ops:
                assert op.path[:1] != ("secret",)
                if op.path[:1] == ("players",) and len(op.path) > 1:
                    assert op.path[1] == viewer


async def test_a_client_far_behind_gets_a_snapshot_without_a_squash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Hundreds of versions of log lines squash to a small delta, but squashing them costs
    time in proportion to the range: past the budget the snapshot comes without trying."""
    import statesync.synchronizer as module

    t = table()
    for i in range(1, 501):
        await t.submit([act("ann", i, i - 1, "say", "x" * 40 + str(i))])
    squashed: list[int] = []
    real = module.squash

    def counting(deltas: Any) -> Any:
        squashed.append(len(deltas))
        return real(deltas)

    monkeypatch.setattr(module, "squash", counting)
    range_bytes = sum(e.size for e in t.history.since(0))
    view_bytes = len(module._sizer.encode(t.view("bob")))
    assert range_bytes > module.SQUASH_MIN and range_bytes > module.SQUASH_BUDGET * view_bytes
    assert isinstance(t.sync(0, player_id="bob"), StateSnapshot)
    assert squashed == []
    # A shorter range from the same table is squashed, and the delta is smaller.
    update = t.sync(440, player_id="bob")
    assert isinstance(update, StateDelta) and squashed == [60]
