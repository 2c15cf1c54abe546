"""Fan-out encoding: splitting a view's delta into public and private parts, the shared
stream's chunks and restart policy, and the SharedUpdate message."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statesync.actions import PlayerAction
from statesync.delta import EMPTY, Delta, apply_ops
from statesync.errors import WireError
from statesync.fanout import RESET_AFTER, SharedCursor, SharedStream, split_view
from statesync.games.holdem import Holdem, legal_actions
from statesync.hashing import IncrementalHash
from statesync.ops import Remove, Set, Splice
from statesync.protocol.messages import SharedUpdate, decode_server, encode, encode_shared_update
from statesync.rng import Rng
from statesync.synchronizer import StateSynchronizer
from statesync.value import strict_equal
from statesync.views import filter_delta
from statesync.wire import WireDecoder, WireEncoder


def test_split_view_separates_public_and_private_and_refuses_whole_sections() -> None:
    d = Delta(
        (
            Set(("game", "x"), 1),
            Set(("players", "a", "c"), 2),
            Remove(("seats", "b")),
            Splice(("players", "a", "h"), 0, 0, ("Ah",)),
        )
    )
    parts = split_view(d)
    assert parts is not None
    public, private = parts
    assert [op.path for op in public.ops] == [("game", "x"), ("seats", "b")]
    assert [op.path for op in private.ops] == [("players", "a", "c"), ("players", "a", "h")]
    assert split_view(Delta((Set(("players",), {}),))) is None
    assert split_view(Delta((Set((), {}),))) is None
    assert split_view(Delta((Set(("secret", "deck"), []),))) is None  # never in a view


def test_an_all_public_delta_is_split_without_copying() -> None:
    d = Delta((Set(("game", "x"), 1), Set(("seats",), {})))
    parts = split_view(d)
    assert parts is not None
    assert parts[0] is d and parts[1] is EMPTY


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 9))
def test_shared_chunks_plus_private_parts_give_every_viewer_exactly_their_view(
    seed: int, n: int
) -> None:
    """The server's fan-out for a table whose viewers are all in step: the public part of
    each update encoded once, decoded by every viewer's shared decoder; private parts on each
    viewer's own stream."""
    names = [f"p{i}" for i in range(n)]
    table = StateSynchronizer(Holdem(), players=names, seed=seed, config={"stack": 5000})
    viewers: list[str | None] = [*names, None]
    stream = SharedStream()
    stream.reset(table.version, table.epoch)
    own = {v: (WireDecoder(), WireDecoder()) for v in viewers}  # (shared, private)
    private_encoders: dict[str | None, Any] = {}
    states: dict[str | None, Any] = {}
    for v in viewers:
        snap = table.snapshot(v).to_state()
        states[v] = [snap, IncrementalHash(snap)]
    rng = Rng(seed)
    seqs = dict.fromkeys(names, 0)
    for _ in range(60):
        actor = table.state["game"]["turn"]
        if actor is None:
            break
        kind, payload = rng.choice(legal_actions(table.state, actor))
        seqs[actor] += 1
        base = table.version
        table.submit_nowait([PlayerAction(actor, actor, seqs[actor], base, kind, payload)])
        full = table.history.entry(table.version).delta
        splits = {v: split_view(filter_delta(full, v)) for v in viewers}
        assert all(s is not None for s in splits.values())
        public = next(iter(splits.values()))[0]  # type: ignore[index]
        for s in splits.values():  # the public part is the same for every viewer
            assert s is not None and s[0].ops == public.ops
        chunk = stream.encode(public, table.version) if public.ops else None
        if chunk is None:
            stream.skip(table.version, table.epoch)
        for v in viewers:
            shared_dec, private_dec = own[v]
            ops: tuple[Any, ...] = shared_dec.decode(chunk.data).ops if chunk else ()
            private = splits[v][1]  # type: ignore[index]
            if private.ops:
                enc = private_encoders.setdefault(v, WireEncoder())
                ops += private_dec.decode(enc.encode(private)).ops
            state, hasher = states[v]
            states[v][0] = apply_ops(state, ops, hasher=hasher)
            assert hasher.hex == table.view_hash(v)
            assert strict_equal(states[v][0], table.view(v))
            # nothing of another player's private section reaches v
            assert all(op.path[:2] in (("players", v),) for op in private.ops)


def test_the_stream_numbers_its_chunks_and_moves_with_the_table() -> None:
    stream = SharedStream()
    cursor = SharedCursor()
    assert not stream.in_step(cursor) or stream.generation == 0
    stream.reset(4, 1)
    assert (stream.next, stream.version, stream.epoch) == (0, 4, 1)
    first = stream.encode(Delta((Set(("game", "n"), 1),)), 5)
    assert (first.generation, first.index, first.base_version, first.version, first.epoch) == (
        stream.generation,
        0,
        4,
        5,
        1,
    )
    stream.skip(6, 1)  # an update with no public part: no chunk, the stream follows
    second = stream.encode(Delta((Set(("game", "n"), 2),)), 7)
    assert (second.index, second.base_version, second.version) == (1, 6, 7)
    cursor.generation, cursor.next = stream.generation, 2
    assert stream.in_step(cursor)
    cursor.clear()
    assert not stream.in_step(cursor)
    old = stream.generation
    stream.reset(7, 1)
    assert stream.generation != old and stream.next == 0  # a new generation, never reused


def test_a_chunk_too_large_leaves_the_stream_unchanged() -> None:
    stream = SharedStream(max_message_size=64)
    stream.reset(0, 0)
    with pytest.raises(WireError):
        stream.encode(Delta((Set(("game", "blob"), "x" * 10_000),)), 1)
    assert (stream.next, stream.version) == (0, 0)
    chunk = stream.encode(Delta((Set(("game", "n"), 1),)), 1)
    assert chunk.index == 0
    assert WireDecoder().decode(chunk.data).ops == (Set(("game", "n"), 1),)


@pytest.mark.parametrize(
    ("in_step", "behind", "chunks", "reset"),
    [
        (5, 0, 0, False),  # nobody behind: never
        (0, 3, 0, True),  # nobody in step: at once
        (2, 2, 1, True),  # as many behind as in step: at once
        (5, 1, RESET_AFTER - 1, False),  # a minority waits ...
        (5, 1, RESET_AFTER, True),  # ... until the stream has run RESET_AFTER chunks
    ],
)
def test_restart_policy(in_step: int, behind: int, chunks: int, reset: bool) -> None:
    stream = SharedStream()
    stream.reset(0, 0)
    for i in range(chunks):
        stream.encode(Delta((Set(("game", "n"), i),)), i + 1)
    assert stream.wants_reset(in_step, behind) is reset


@given(
    st.integers(-1, 2**40),
    st.integers(0, 2**40),
    st.integers(0, 2**20),
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=1, max_size=64),
    st.none() | st.binary(min_size=1, max_size=64),
    st.booleans(),
)
def test_a_shared_update_round_trips_and_drops_trailing_defaults(
    base: int,
    version: int,
    epoch: int,
    digest: bytes,
    shared: bytes,
    delta: bytes | None,
    reset: bool,
) -> None:
    data = encode_shared_update(base, version, epoch, digest, shared, delta, reset)
    message = SharedUpdate(base, version, epoch, digest, shared, delta, reset)
    assert decode_server(data) == message
    assert decode_server(encode(message)) == message  # the full form decodes the same
    assert len(data) <= len(encode(message))
    if not reset and delta is None:
        assert len(data) == len(encode(message)) - 2  # nil and false left out
