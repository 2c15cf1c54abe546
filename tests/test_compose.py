from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statesync.canonical import encode
from statesync.composition import compose, squash
from statesync.delta import Delta, patch
from statesync.diffing import diff
from statesync.errors import PatchError
from statesync.inversion import invert
from statesync.ops import END, Add, Copy, Move, Op, Remove, Replace, Set, Splice, Test
from statesync.value import Value, copy_value, strict_equal

from .strategies import native_op, values
from .test_diff import chain, related

# States whose dict keys look like list indices ("0", "1"): patch would read such a key as an
# index if the container were a list, which squash must never confuse.
_index_keys = st.sampled_from(["0", "1", "2", "a"])
_states = st.one_of(
    st.lists(values, min_size=1, max_size=6),
    st.dictionaries(_index_keys, values, min_size=1, max_size=4),
    st.dictionaries(_index_keys, st.lists(values, max_size=5), min_size=1, max_size=3),
)


@st.composite
def _op(draw: st.DrawFn, state: Any) -> Op:
    """A random native op for ``state``, including ``Remove`` of list elements (which shifts
    the elements after it, like a splice)."""
    lists = [(p, n) for p, n in _lists(state) if n]
    if lists and draw(st.integers(0, 3)) == 0:
        path, node = draw(st.sampled_from(lists))
        return Remove((*path, draw(st.integers(0, len(node) - 1))))
    op: Op = draw(native_op(state))
    return op


def _lists(state: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if type(state) is dict:
        return [x for k, v in state.items() for x in _lists(v, (*path, k))]
    if type(state) is list:
        return [(path, state), *(x for i, v in enumerate(state) for x in _lists(v, (*path, i)))]
    return []


@st.composite
def op_run(draw: st.DrawFn, max_ops: int = 10) -> tuple[Value, list[Op], list[Value]]:
    """A container state, random native operations that apply in turn, and every state."""
    state = draw(_states)
    states, ops = [state], []
    for _ in range(draw(st.integers(1, max_ops))):
        if type(state) not in (dict, list):
            break
        op = draw(_op(state))
        state = patch(state, Delta((op,)))
        ops.append(op)
        states.append(state)
    return states[0], ops, states


def _split(draw: st.DrawFn, ops: list[Op]) -> list[Delta]:
    cuts = sorted(draw(st.lists(st.integers(0, len(ops)), max_size=3)))
    bounds = [0, *cuts, len(ops)]
    return [Delta(tuple(ops[i:j])) for i, j in pairwise(bounds)]


def size(delta: Delta) -> int:
    """Encoded size of a native delta, each op as ``[kind, path, *args]`` (the measure that
    compose promises never to exceed)."""
    total = 0
    for op in delta.ops:
        if type(op) is Set:
            total += len(encode([0, list(op.path), op.value]))
        elif type(op) is Remove:
            total += len(encode([1, list(op.path)]))
        else:
            assert type(op) is Splice
            total += len(encode([2, list(op.path), op.index, op.delete, list(op.insert)]))
    return total


# --- compose and squash: properties ------------------------------------------------------


@settings(max_examples=150)
@given(chain(3))
def test_compose_law_for_diffs(states: list[Value]) -> None:
    s, t, u = states
    d1, d2 = diff(s, t), diff(t, u)
    c = compose(d1, d2)
    assert strict_equal(patch(s, c), u)
    assert strict_equal(patch(patch(s, d1), d2), patch(s, c))
    assert size(c) <= size(Delta(d1.ops + d2.ops))


@settings(max_examples=100)
@given(chain(5))
def test_squash_of_a_chain(states: list[Value]) -> None:
    deltas = [diff(a, b) for a, b in pairwise(states)]
    squashed = squash(deltas)
    assert strict_equal(patch(states[0], squashed), states[-1])
    assert size(squashed) <= size(Delta(tuple(op for d in deltas for op in d.ops)))


@settings(max_examples=200)
@given(st.data())
def test_squash_of_random_operations(data: st.DataObject) -> None:
    start, ops, states = data.draw(op_run())
    before = copy_value(start)
    deltas = _split(data.draw, ops)
    squashed = squash(deltas)
    assert strict_equal(patch(start, squashed), states[-1])
    assert size(squashed) <= size(Delta(tuple(ops)))
    assert strict_equal(start, before)  # nothing was modified along the way


@settings(max_examples=50)
@given(related())
def test_compose_with_empty_is_equivalent(pair: tuple[Value, Value]) -> None:
    a, b = pair
    d = diff(a, b)
    for c in (compose(d, Delta()), compose(Delta(), d)):
        assert strict_equal(patch(a, c), b)
        assert size(c) <= size(d)


# --- compose and squash: cases -----------------------------------------------------------


def test_later_set_of_same_path_drops_the_earlier() -> None:
    c = compose(Delta((Set(("x",), [1, 2, 3]),)), Delta((Set(("x",), 2),)))
    assert c.ops == (Set(("x",), 2),)


def test_set_of_ancestor_drops_ops_below_it() -> None:
    a = Delta((Set(("p", "hp"), 3), Splice(("p", "inv"), 0, 1, ())))
    b = Delta((Set(("p",), {"hp": 9}),))
    assert compose(a, b).ops == (Set(("p",), {"hp": 9}),)


def test_intervening_splice_keeps_both_sets() -> None:
    d = Delta((Set(("l", 3), "x"), Splice(("l",), 0, 1, ()), Set(("l", 3), "y")))
    s = {"l": [0, 1, 2, 3, 4, 5]}
    c = squash([d])
    assert strict_equal(patch(s, c), {"l": [1, 2, "x", "y", 5]})
    values_set = sorted(op.value for op in c.ops if type(op) is Set)  # type: ignore[type-var]
    assert values_set == ["x", "y"]


def test_ops_below_a_set_fold_into_its_value() -> None:
    value = {"hp": 1, "items": ["a"]}
    a = Delta((Set(("p",), value),))
    b = Delta(
        (
            Set(("p", "hp"), 2),
            Splice(("p", "items"), 1, 0, ("b",)),
            Set(("p", "new"), 0),
            Remove(("p", "items", 0)),
        )
    )
    c = compose(a, b)
    assert c.ops == (Set(("p",), {"hp": 2, "items": ["b"], "new": 0}),)
    assert value == {"hp": 1, "items": ["a"]}  # op values are never mutated


def test_appends_merge_into_one_splice() -> None:
    a = Delta((Splice(("log",), 5, 0, ("a",)),))
    b = Delta((Splice(("log",), 6, 0, ("b", "c")),))
    assert compose(a, b).ops == (Splice(("log",), 5, 0, ("a", "b", "c")),)


def test_sliding_window_chain_stays_two_splices() -> None:
    log = list(range(50))
    states = [{"log": log}]
    for v in range(10):
        cur = states[-1]["log"]
        states.append({"log": [*cur[2:], 100 + 3 * v, 101 + 3 * v, 102 + 3 * v]})
    deltas = [diff(a, b) for a, b in pairwise(states)]
    squashed = squash(deltas)
    assert len(squashed) == 2
    assert strict_equal(patch(states[0], squashed), states[-1])


def test_set_on_inserted_element_folds_into_the_splice() -> None:
    a = Delta((Splice(("l",), 1, 0, ({"n": 1},)),))
    b = Delta((Set(("l", 1, "n"), 2),))
    assert compose(a, b).ops == (Splice(("l",), 1, 0, ({"n": 2},)),)


def test_removing_a_member_that_may_be_new_still_applies_everywhere() -> None:
    c = compose(Delta((Set(("k",), [1] * 40),)), Delta((Remove(("k",)),)))
    assert size(c) < size(Delta((Set(("k",), [1] * 40), Remove(("k",)))))
    for s in ({}, {"k": 0}):
        assert patch(s, c) == {}


def test_token_like_keys_on_a_list_are_not_squashed_wrongly() -> None:
    # RFC 6901 style: "3" and "0" address list elements; Remove("0") shifts "3".
    d = Delta((Set(("a", "3"), "x"), Remove(("a", "0")), Set(("a", "3"), "y")))
    s = {"a": [0, 1, 2, 3, 4]}
    assert patch(s, squash([d])) == patch(s, d) == {"a": [1, 2, "x", "y"]}


def test_token_like_keys_on_a_dict_still_squash() -> None:
    d = Delta((Set(("seats", "1"), "ann"), Set(("seats", "1"), "bob")))
    assert squash([d]).ops == (Set(("seats", "1"), "bob"),)


@pytest.mark.parametrize(
    "op",
    [
        Add(("l", 0), 9),
        Replace(("l", 0), 9),
        Move(("l", 0), ("l", 1)),
        Copy(("l", 0), ("m",)),
        Test(("l", 0), 1),
        Splice(("l",), END, 0, (9,)),
    ],
)
def test_non_native_ops_are_concatenated(op: Op) -> None:
    a = Delta((Set(("m",), 1), op))
    b = Delta((Set(("m",), 2),))
    assert compose(a, b).ops == (*a.ops, *b.ops)


@pytest.mark.parametrize(
    "ops",
    [
        (Set(("a", "x"), 1), Set(("a", 0), 2)),  # a dict, then a list: one of them fails
        (Remove(("k",)), Remove(("k",))),
        (Set(("k",), 1), Set(("k", "x"), 2)),  # folding into a value that does not fit
        (Set(("k",), [1]), Splice(("k",), 3, 0, (2,))),
        (Set(("a",), 1), Remove(())),
        (Set(("l", "1"), 1), Remove(("l", "0"))),  # "0" may be a list index shifting "1"
        (Remove(("l", "0")), Set(("l", "1"), 1)),
    ],
)
def test_unsquashable_ops_are_concatenated(ops: tuple[Op, ...]) -> None:
    assert squash([Delta(ops)]).ops == ops


def test_delta_then_is_compose() -> None:
    a, b = Delta((Set(("x",), 1),)), Delta((Set(("x",), 2),))
    assert a.then(b) == compose(a, b)


# --- invert ------------------------------------------------------------------------------


@settings(max_examples=100)
@given(related())
def test_invert_of_diff_restores_the_base(pair: tuple[Value, Value]) -> None:
    a, b = pair
    before = copy_value(a)
    d = diff(a, b)
    undo = invert(d, a)
    assert strict_equal(patch(patch(a, d), undo), a)
    assert strict_equal(a, before)


@settings(max_examples=100)
@given(op_run())
def test_invert_of_random_operations(run: tuple[Value, list[Op], list[Value]]) -> None:
    start, ops, states = run
    d = Delta(tuple(ops))
    undo = invert(d, start)
    assert strict_equal(patch(states[-1], undo), start)
    assert len(undo) == len(ops)


@pytest.mark.parametrize(
    "ops",
    [
        (Add(("l", 1), "new"), Add(("l", END), "end")),
        (Replace(("l", 0), {"a": 1}),),
        (Move(("l", 0), ("m", "moved")),),
        (Copy(("m",), ("l", 2)),),
        (Test(("l", 0), 1), Splice(("l",), END, 0, (7, 8))),
        (Remove(("l", "1")), Set(("l", "0"), 5)),  # RFC 6901 tokens on a list
    ],
)
def test_invert_of_non_native_ops(ops: tuple[Op, ...]) -> None:
    base: Value = {"l": [1, 2, 3], "m": {}}
    d = Delta(ops)
    undo = invert(d, base)
    assert undo.is_native()
    assert strict_equal(patch(patch(base, d), undo), base)


def test_invert_root_set() -> None:
    assert patch(5, invert(Delta((Set((), [1]),)), 5)) == 5


def test_invert_is_proportional_to_the_change() -> None:
    base = {"log": list(range(10_000)), "turn": 1}
    d = Delta((Splice(("log",), 0, 2, ()), Set(("turn",), 2)))
    undo = invert(d, base)
    assert undo.ops == (Set(("turn",), 1), Splice(("log",), 0, 0, (0, 1)))


@pytest.mark.parametrize(
    "ops",
    [
        (Set(("missing", "x"), 1),),
        (Remove(("nope",)),),
        (Splice(("l",), 2, 5, ()),),
        (Set(("l", 0), 1), Test(("l", 0), 2)),
    ],
)
def test_invert_raises_when_the_delta_does_not_apply(ops: tuple[Op, ...]) -> None:
    base: Value = {"l": [1, 2, 3]}
    with pytest.raises(PatchError):
        invert(Delta(ops), base)


def test_invert_shares_nothing_mutable_with_the_patched_state() -> None:
    base: dict[str, Any] = {"a": {"b": [1, 2]}}
    d = Delta((Set(("a", "b", 0), 9), Set(("a", "c"), 1), Set(("a",), 0)))
    undo = invert(d, base)
    assert strict_equal(patch(patch(base, d), undo), base)
    assert base == {"a": {"b": [1, 2]}}
