from __future__ import annotations

import importlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statesync.delta import Delta, apply_ops, patch
from statesync.diffing import diff
from statesync.ops import NativeOp, Remove, Set, Splice
from statesync.value import Value, copy_value, strict_equal

from .strategies import keys, values

# The module, not the function that ``statesync/__init__.py`` re-exports under the same name.
diff_module = importlib.import_module("statesync.diffing")

# Values that ``==`` confuses but strict equality does not.
_LOOKALIKES = [0, 1, 1.0, 0.0, -0.0, True, False, None, "1", [], {}]


@st.composite
def edited(draw: st.DrawFn, value: Any) -> Any:
    """``value`` after random edits, so that most diffs are not whole replacements: members
    changed, dropped and added, list items retyped, inserted, deleted and slid."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(values)
    t = type(value)
    if t is dict:
        out = {}
        for k, v in value.items():
            action = draw(st.integers(0, 5))
            if action == 0:
                continue
            out[k] = draw(edited(v)) if action == 1 else v
        for k in draw(st.lists(keys, max_size=2)):
            out[k] = draw(values)
        return out
    if t is list:
        return draw(_edited_list(value))
    if choice <= 2:
        return draw(st.sampled_from(_LOOKALIKES))
    return value


@st.composite
def _edited_list(draw: st.DrawFn, value: list[Any]) -> list[Any]:
    out = [draw(edited(v)) if draw(st.integers(0, 3)) == 0 else v for v in value]
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.integers(0, 3))
        if kind == 0 and out:
            del out[draw(st.integers(0, len(out) - 1))]
        elif kind == 1:
            out.insert(draw(st.integers(0, len(out))), draw(values))
        elif kind == 2:  # sliding window: drop from the front, append at the end
            k = draw(st.integers(0, len(out)))
            out = out[k:] + draw(st.lists(values, max_size=3))
        else:  # the other direction: add at the front, drop from the end
            k = draw(st.integers(0, len(out)))
            out = draw(st.lists(values, max_size=3)) + out[: len(out) - k]
    return out


@st.composite
def related(draw: st.DrawFn) -> tuple[Any, Any]:
    """A state and an edited version of it."""
    a = draw(values)
    return a, draw(edited(a))


@st.composite
def chain(draw: st.DrawFn, length: int) -> list[Any]:
    """``length`` states, each an edited version of the one before."""
    states = [draw(values)]
    while len(states) < length:
        states.append(draw(edited(states[-1])))
    return states


# --- properties --------------------------------------------------------------------------


@settings(max_examples=200)
@given(related())
def test_patch_of_diff_gives_new(pair: tuple[Value, Value]) -> None:
    a, b = pair
    a_before, b_before = copy_value(a), copy_value(b)
    d = diff(a, b)
    assert d.is_native()
    assert strict_equal(patch(a, d), b)
    # pure: neither diff nor patch modified anything
    assert strict_equal(a, a_before)
    assert strict_equal(b, b_before)
    # native paths: patch reads no RFC 6901 string token where a list index is meant
    recorded: list[NativeOp] = []
    apply_ops(a, d.ops, record=recorded)
    assert tuple(recorded) == d.ops


@settings(max_examples=100)
@given(values, values)
def test_patch_of_diff_gives_new_for_unrelated_states(a: Value, b: Value) -> None:
    assert strict_equal(patch(a, diff(a, b)), b)


@settings(max_examples=100)
@given(values)
def test_diff_of_equal_states_is_empty(a: Value) -> None:
    assert diff(a, a) == Delta()
    assert not diff(a, copy_value(a))


# --- strictness --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (1, 1.0),
        (True, 1),
        (1.0, True),
        (0, False),
        ({"a": 1}, {"a": 1.0}),
        ([1, 2, 3], [1, 2.0, 3]),
        ([[1, 2], [3, 4]], [[1, 2], [3.0, 4]]),
        ({"a": [True]}, {"a": [1]}),
    ],
)
def test_lookalike_values_are_changes(old: Value, new: Value) -> None:
    d = diff(old, new)
    assert d
    assert strict_equal(patch(old, d), new)


def test_negative_zero_is_zero() -> None:
    assert not diff({"x": -0.0}, {"x": 0.0})


def test_list_of_ints_vs_list_of_floats() -> None:
    old = list(range(50))
    new = [float(x) for x in old]
    assert strict_equal(patch(old, diff(old, new)), new)


# --- shapes of the output ----------------------------------------------------------------


def test_dict_key_removal_is_one_remove() -> None:
    assert diff({"a": 1, "b": {"c": 2}}, {"a": 1}).ops == (Remove(("b",)),)


def test_type_change_replaces_the_container() -> None:
    old = {"x": [1, 2, 3]}
    new = {"x": {"0": 1}}
    assert diff(old, new).ops == (Set(("x",), {"0": 1}),)


def test_chat_log_window_is_two_splices() -> None:
    log = [{"from": f"p{i % 4}", "text": f"message {i}", "n": i} for i in range(200)]
    added = [{"from": "p9", "text": f"new {i}", "n": 200 + i} for i in range(3)]
    old = {"chat": log, "turn": 7}
    new = {"chat": log[2:] + added, "turn": 7}
    d = diff(old, new)
    assert len(d) == 2
    inserted = [v for op in d.ops if type(op) is Splice for v in op.insert]
    assert inserted == added
    assert d.ops[0] == Splice(("chat",), 0, 2, ())
    assert strict_equal(patch(old, d), new)


def test_prepend_and_drop_from_end_is_two_splices() -> None:
    old = list(range(100))
    new = [-2, -1, *range(97)]
    d = diff(old, new)
    assert len(d) == 2
    assert strict_equal(patch(old, d), new)


def test_insert_in_the_middle_is_one_splice() -> None:
    old = [{"id": i} for i in range(30)]
    new = [*old[:10], {"id": "new"}, *old[10:]]
    assert diff(old, new).ops == (Splice((), 10, 0, ({"id": "new"},)),)


def test_shifted_equal_length_list_is_aligned_not_rewritten() -> None:
    old = [f"item {i}" for i in range(40)]
    new = ["first", *old[:20], *old[21:]]  # one inserted at the front, one removed inside
    d = diff(old, new)
    assert len(d) <= 2
    assert strict_equal(patch(old, d), new)


def test_grid_change_is_three_small_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    encoded: list[Value] = []
    real_encode = diff_module._encode

    def counting_encode(x: Value) -> bytes:
        encoded.append(x)
        return real_encode(x)

    monkeypatch.setattr(diff_module, "_encode", counting_encode)
    old = {"board": [[(r * 64 + c) % 7 for c in range(64)] for r in range(64)]}
    new = {"board": [row[:] for row in old["board"]]}
    for r, c in [(3, 4), (30, 2), (30, 60)]:
        new["board"][r][c] = 100
    d = diff(old, new)
    assert d.ops == (
        Set(("board", 3, 4), 100),
        Set(("board", 30, 2), 100),
        Set(("board", 30, 60), 100),
    )
    assert len(encoded) < 8  # the unchanged rows were compared, never encoded


def test_whole_list_replacement_uses_set() -> None:
    d = diff({"l": [1, 2]}, {"l": ["a", "b", "c"]})
    assert strict_equal(patch({"l": [1, 2]}, d), {"l": ["a", "b", "c"]})
    assert len(d) == 1


def test_root_scalar_change() -> None:
    assert diff(1, 2).ops == (Set((), 2),)
