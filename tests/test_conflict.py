from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from statesync.actions import Accepted, PlayerAction
from statesync.conflict import Dedupe, order_batch


def act(client: str, seq: int, base: int = 0) -> PlayerAction:
    return PlayerAction(client[0], client, seq, base, "x")


batches = st.lists(
    st.tuples(st.sampled_from(["ca", "cb", "cc"]), st.integers(0, 50), st.integers(0, 5)),
    max_size=12,
    unique_by=lambda t: (t[0], t[1]),
).map(lambda ts: [act(c, s, b) for c, s, b in ts])


@given(batches, st.randoms(use_true_random=False))
def test_order_does_not_depend_on_arrival_order(batch: list[PlayerAction], rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(batch)
    rnd.shuffle(shuffled)
    assert order_batch(shuffled, 9) == order_batch(batch, 9)


@given(batches)
def test_each_clients_actions_stay_in_seq_order(batch: list[PlayerAction]) -> None:
    ordered = order_batch(batch, 3)
    assert sorted(ordered, key=id) == sorted(batch, key=id)
    for client in {a.client_id for a in batch}:
        seqs = [a.seq for a in ordered if a.client_id == client]
        assert seqs == sorted(seqs)


def test_older_base_goes_first() -> None:
    ordered = order_batch([act("cb", 1, base=5), act("ca", 1, base=4)], 6)
    assert [a.client_id for a in ordered] == ["ca", "cb"]


def test_ties_are_not_always_won_by_the_same_client() -> None:
    winners = {order_batch([act("ca", 1), act("cb", 1)], v)[0].client_id for v in range(40)}
    assert winners == {"ca", "cb"}


def test_dedupe_remembers_and_forgets_past_window() -> None:
    d = Dedupe(window=2)
    a1, a2, a3 = act("ca", 1), act("ca", 2), act("ca", 3)
    for a in (a1, a2, a3):
        d.record(a.client_id, a.seq, Accepted(a, a.seq))
    assert d.lookup("ca", 1) is None
    assert d.too_old("ca", 1)
    assert d.lookup("ca", 3) == Accepted(a3, 3)
    assert not d.too_old("ca", 4)
    assert not d.too_old("cb", 1)
    d.forget("ca", 3)
    assert d.lookup("ca", 3) is None
