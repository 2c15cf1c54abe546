from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from statesync.actions import PlayerAction
from statesync.delta import Delta, apply_ops
from statesync.fanout import UpdateDecoder, UpdateEncoder, split_delta
from statesync.games.holdem import Holdem, legal_actions
from statesync.hashing import IncrementalHash
from statesync.ops import Set
from statesync.rng import Rng
from statesync.synchronizer import StateSynchronizer
from statesync.value import strict_equal
from statesync.views import filter_delta


def test_split_drops_secret_and_refuses_section_replacement() -> None:
    d = Delta((Set(("secret", "deck"), []), Set(("game", "x"), 1), Set(("players", "a", "c"), 2)))
    parts = split_delta(d)
    assert parts is not None
    public, private = parts
    assert [op.path for op in public.ops] == [("game", "x")]
    assert list(private) == ["a"]
    assert split_delta(Delta((Set(("players",), {}),))) is None
    assert split_delta(Delta((Set((), {}),))) is None


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 9))
def test_fanout_gives_every_player_exactly_their_view(seed: int, n: int) -> None:
    names = [f"p{i}" for i in range(n)]
    table = StateSynchronizer(Holdem(), players=names, seed=seed, config={"stack": 5000})
    encoder = UpdateEncoder()
    clients: dict[str, Any] = {}
    for p in names:
        snap = table.snapshot(p)
        clients[p] = [snap.to_state(), IncrementalHash(snap.to_state()), UpdateDecoder()]
    spectator = [table.snapshot(None).to_state(), UpdateDecoder()]
    rng = Rng(seed)
    seqs = dict.fromkeys(names, 0)
    for _ in range(60):
        actor = table.state["game"]["turn"]
        if actor is None:
            break
        kind, payload = rng.choice(legal_actions(table.state, actor))
        seqs[actor] += 1
        table.submit_nowait([PlayerAction(actor, actor, seqs[actor], table.version, kind, payload)])
        update = encoder.encode(table.history.entry(table.version).delta)
        assert update is not None
        for p, (state, hasher, dec) in clients.items():
            delta = dec.decode(update.public, update.private.get(p))
            expected = filter_delta(table.history.entry(table.version).delta, p)
            assert len(delta) == len(expected)
            clients[p][0] = apply_ops(state, delta.ops, hasher=hasher)
            assert hasher.hex == table.view_hash(p)
            assert strict_equal(clients[p][0], table.view(p))
        spectator[0] = apply_ops(spectator[0], spectator[1].decode(update.public).ops)
        assert strict_equal(spectator[0], table.view(None))


def test_an_all_public_delta_is_split_without_copying() -> None:
    d = Delta((Set(("game", "x"), 1), Set(("seats",), {})))
    assert split_delta(d) == (d, {})
    assert split_delta(d)[0] is d  # type: ignore[index]
    with_secret = Delta((Set(("game", "x"), 1), Set(("secret",), {})))
    assert split_delta(with_secret) == (Delta((Set(("game", "x"), 1),)), {})


def test_filter_delta_filters_a_whole_replacement_it_keeps() -> None:
    # An op that is kept but narrowed (a root or "players" Set) must not let the
    # unfiltered delta through just because no op was dropped.
    from statesync.delta import Delta
    from statesync.ops import Set
    from statesync.views import filter_delta

    state = {"game": 1, "seats": {}, "players": {"a": {"x": 1}, "b": {"x": 2}}, "secret": 5}
    out = filter_delta(Delta((Set((), state),)), "a")
    assert out.ops == (Set((), {"game": 1, "seats": {}, "players": {"a": {"x": 1}}}),)
    out = filter_delta(Delta((Set(("players",), state["players"]),)), "a")
    assert out.ops == (Set(("players",), {"a": {"x": 1}}),)
    public = Delta((Set(("game",), 2), Set(("players", "a", "x"), 3)))
    assert filter_delta(public, "a") is public
