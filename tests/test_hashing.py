from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statesync.delta import apply_ops
from statesync.errors import InvalidValueError
from statesync.game import view_of
from statesync.hashing import IncrementalHash, P, format_hash, state_hash, value_hash
from statesync.ops import Remove, Splice
from statesync.views import public_hash_part, view_hash

from .strategies import containers, native_op, values

# Golden vectors: these exact hashes are part of the protocol (docs/hashing.md). If one
# changes, every client in every language breaks: bump ENCODING_VERSION instead.
GOLDEN = [
    (None, "00702dc0c878209e05264b395baf644d"),
    ({}, "1e86c74eea5b01804bcce51a2da83f7e"),
    ([], "7b08876f18842dec10813dd7cfea4c85"),
    ({"a": 1, "b": [True, None, 2.5, "x"]}, "7d82035bbd159784cc3677887bcbc81a"),
]


@pytest.mark.parametrize(("value", "expected"), GOLDEN)
def test_golden_hashes_are_stable(value: object, expected: str) -> None:
    assert state_hash(value) == expected


def test_hash_is_32_hex_digits() -> None:
    h = state_hash({"x": [1, 2]})
    assert len(h) == 32
    int(h, 16)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1, 1.0),
        (1, True),
        (0, False),
        ({"a": 1}, {"b": 1}),
        ([1, 2], [2, 1]),
        ({}, []),
        ([[]], [{}]),
        ({"a": {"b": 1}}, {"a": {"b": 1}, "c": None}),
        ("1", 1),
        ([1], [[1]]),
    ],
)
def test_different_values_hash_differently(a: object, b: object) -> None:
    assert state_hash(a) != state_hash(b)


def test_negative_zero_hashes_like_zero() -> None:
    assert state_hash(-0.0) == state_hash(0.0)
    assert state_hash({"x": [-0.0]}) == state_hash({"x": [0.0]})


@pytest.mark.parametrize(
    "bad", [math.nan, math.inf, -math.inf, {1: 2}, (1, 2), b"x", {"a": {3}}, 2**64, -(2**63) - 1]
)
def test_unhashable_input_raises_clear_error(bad: object) -> None:
    with pytest.raises(InvalidValueError):
        state_hash(bad)


def test_lone_surrogate_is_rejected() -> None:
    with pytest.raises(InvalidValueError):
        state_hash({"k": "\ud800"})


@given(values)
def test_dict_key_order_does_not_matter(v: object) -> None:
    if isinstance(v, dict):
        assert state_hash(dict(reversed(list(v.items())))) == state_hash(v)


@given(values)
def test_hash_is_deterministic(v: object) -> None:
    assert state_hash(v) == state_hash(v)
    assert value_hash(v) == value_hash(v)  # type: ignore[arg-type]


@settings(max_examples=300)
@given(st.data(), containers)
def test_incremental_hash_equals_hash_from_scratch(data: st.DataObject, state: object) -> None:
    hasher = IncrementalHash(state)  # type: ignore[arg-type]
    if isinstance(state, dict) and state:
        hasher.subtree(state, (sorted(state)[0],))  # exercise cached subtrees
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(native_op(state))
        state = apply_ops(state, (op,), hasher=hasher)  # type: ignore[arg-type]
        assert hasher.hex == state_hash(state)


def test_front_trim_of_long_list_uses_cached_list_hash() -> None:
    chat = {"chat": [{"id": i, "text": f"m{i}"} for i in range(200)]}
    hasher = IncrementalHash(chat)
    state: object = chat
    for i in range(200, 260):
        state = apply_ops(state, (Splice(("chat",), 0, 1, ()),), hasher=hasher)  # type: ignore[arg-type]
        state = apply_ops(
            state,  # type: ignore[arg-type]
            (Splice(("chat",), 199, 0, ({"id": i, "text": f"m{i}"},)),),
            hasher=hasher,
        )
    assert hasher.hex == state_hash(state)


def test_failed_patch_leaves_hasher_unchanged() -> None:
    from statesync.errors import PatchError
    from statesync.ops import Remove, Set

    state = {"a": 1}
    hasher = IncrementalHash(state)
    before = hasher.hex
    with pytest.raises(PatchError):
        apply_ops(state, (Set(("a",), 2), Remove(("missing",))), hasher=hasher)
    assert hasher.hex == before


def test_subtree_reduces_a_cached_hash_that_went_negative() -> None:
    # Cached subtree hashes are kept unreduced and may drop below zero after a removal.
    state: dict[str, Any] = {"a": {"x": "long text", "y": 1}}
    hasher = IncrementalHash(state)
    assert hasher.subtree(state, ("a",)) == value_hash(state["a"])
    new = apply_ops(state, (Remove(("a", "x")),), hasher=hasher)
    assert hasher._cache[("a",)] < 0  # the case under test
    reduced = hasher.subtree(new, ("a",))
    assert reduced == value_hash(new["a"])  # type: ignore[index]
    assert 0 <= reduced < 2**127 - 1
    assert hasher.subtree(new, ("a",)) == reduced


@pytest.mark.parametrize("h", [0, 1, 0xABC, P - 1, P, 2**128 - 1, 2**130 + 5])
def test_format_hash_is_32_zero_padded_lowercase_hex_digits(h: int) -> None:
    assert format_hash(h) == f"{h:032x}"


@settings(max_examples=200, deadline=None)
@given(
    game=values,
    seats=st.dictionaries(st.sampled_from(["a", "b", "c"]), values, max_size=3),
    players=st.dictionaries(st.sampled_from(["a", "b", "c"]), values, max_size=3),
    secret=values,
    extra=st.sampled_from(["secret", "none", "more"]),
    ops=st.data(),
)
def test_view_hash_parts_add_up_to_the_hash_of_the_view(
    game: Any, seats: Any, players: Any, secret: Any, extra: str, ops: st.DataObject
) -> None:
    # The public part is read off the root hash minus the other sections' terms; whatever
    # the sections hold, and after changes, a view's hash is the hash of the view.
    state: Any = {"game": game, "seats": seats, "players": players}
    if extra != "none":
        state[extra] = secret
    hasher = IncrementalHash(state)
    for _ in range(3):
        for viewer in ("a", "b", "c", None):
            expected = state_hash(view_of(state, viewer))
            assert view_hash(hasher, state, viewer) == expected
            public = public_hash_part(hasher, state)
            assert 0 <= public < P
            assert view_hash(hasher, state, viewer, public) == expected
        # A change inside one section (a view needs them all, "players" a dict).
        section = ops.draw(st.sampled_from([k for k in state if type(state[k]) in (dict, list)]))
        op = ops.draw(native_op(state[section]))
        state = apply_ops(state, [replace(op, path=(section, *op.path))], hasher=hasher)
