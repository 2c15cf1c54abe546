"""apply_ops: the fast paths must behave exactly like the general path they shortcut."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statesync.delta import _Patcher, apply_ops
from statesync.errors import InvalidValueError, PatchError, PathError
from statesync.hashing import IncrementalHash, state_hash
from statesync.ops import END, Add, Move, NativeOp, Op, Remove, Replace, Set, Splice
from statesync.value import strict_equal

from .strategies import _containers, containers, native_op, values


def slow_apply(
    state: Any,
    ops: tuple[Op, ...],
    *,
    hasher: IncrementalHash | None = None,
    record: list[NativeOp] | None = None,
) -> Any:
    """apply_ops through the general path only (the reference behaviour)."""
    work = hasher.copy() if hasher is not None else None
    p = _Patcher(state, work, record)
    for i, op in enumerate(ops):
        try:
            p.apply(op)
        except PatchError as e:
            if e.op_index is None:
                e.op_index = i
            raise
        except (PathError, InvalidValueError) as e:
            raise PatchError(
                f"operation {i} ({type(op).__name__}): {e}", op_index=i, path=getattr(e, "path", ())
            ) from None
    if hasher is not None and work is not None:
        hasher.root = work.root
        hasher._cache = work._cache
        hasher._index = work._index
    return p.root


def outcome(fn: Any, state: Any, ops: tuple[Op, ...], hasher: IncrementalHash | None) -> Any:
    record: list[NativeOp] = []
    try:
        result = fn(state, ops, hasher=hasher, record=record)
    except PatchError as e:
        return ("error", type(e), str(e), e.op_index, e.path)
    return ("ok", result, record)


def _tokenize(op: Op, state: Any) -> Op:
    """The same op with RFC 6901 string tokens for every list index on its path."""
    node = state
    path: list[Any] = []
    for depth, item in enumerate(op.path):
        path.append(str(item) if isinstance(node, list) else item)
        if isinstance(op, Splice) or depth + 1 < len(op.path):
            node = node[item]
    if isinstance(op, Set):
        return Set(tuple(path), op.value)
    if isinstance(op, Remove):
        return Remove(tuple(path))
    assert isinstance(op, Splice)
    index = END if op.index == len(node) and op.delete == 0 else op.index
    return Splice(tuple(path), index, op.delete, op.insert)


@st.composite
def bad_op(draw: st.DrawFn, state: Any) -> Op:
    path, _ = draw(st.sampled_from(_containers(state)))
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return Set((*path, "\ud800"), 1)  # lone surrogate key
    if choice == 1:
        bad: Any = draw(st.sampled_from([float("nan"), (1,), 2**64, {"a": {3}}]))
        return Set((*path, "k"), bad)
    if choice == 2:
        return Set((*path, 10**6), 1)
    if choice == 3:
        return Set((*path, True), 1)
    if choice == 4:
        return Remove((*path, "missing-key"))
    if choice == 5:
        return Splice(path, draw(st.integers(-2, 8)), draw(st.integers(-1, 8)), ())
    if choice == 6:
        return Set((*path, "01"), 1)
    if choice == 7:
        return Set((*path, -1), 1)
    if choice == 8:
        return Splice((*path, "x", "y"), 0, 0, ("\ud800",))
    return Set((*path, "a", "b"), 1)


@st.composite
def rfc_op(draw: st.DrawFn, state: Any) -> Op:
    path, node = draw(st.sampled_from(_containers(state)))
    flip = draw(st.booleans())
    if isinstance(node, dict):
        if node and flip:
            k = draw(st.sampled_from(sorted(node)))
            return Replace((*path, k), draw(values))
        return Add((*path, "new"), draw(values))
    if node and flip:
        return Move((*path, "0"), (*path, "-"))
    return Add((*path, "-"), draw(values))


@st.composite
def scenario(draw: st.DrawFn) -> tuple[Any, tuple[Op, ...], bool]:
    """A state and a sequence of ops, mostly valid ones applied one after the other."""
    state = draw(containers)
    cache = draw(st.booleans())
    ops: list[Op] = []
    cur = state
    for _ in range(draw(st.integers(1, 12))):
        if not _containers(cur):
            break
        kind = draw(st.integers(0, 11))
        op: Op
        if kind <= 7:
            op = draw(native_op(cur))
        elif kind == 8:
            op = _tokenize(draw(native_op(cur)), cur)
        elif kind == 9:
            op = draw(rfc_op(cur))
        else:
            op = draw(bad_op(cur))
        ops.append(op)
        try:
            cur = slow_apply(cur, (op,))
        except PatchError:
            break
    return state, tuple(ops), cache


def _hasher(state: Any, cache: bool) -> IncrementalHash:
    h = IncrementalHash(state)
    if cache:
        for path, _ in _containers(state)[1:4]:
            h.subtree(state, path)
    return h


@settings(max_examples=400, deadline=None)
@given(scenario())
def test_fast_paths_match_the_general_path(case: tuple[Any, tuple[Op, ...], bool]) -> None:
    state, ops, cache = case
    before = copy.deepcopy(state)
    fast_h, slow_h = _hasher(state, cache), _hasher(state, cache)
    fast_before = (fast_h.hex, dict(fast_h._cache))
    fast = outcome(apply_ops, state, ops, fast_h)
    slow = outcome(slow_apply, state, ops, slow_h)
    assert strict_equal(state, before)  # pure: the input is never modified
    assert fast[0] == slow[0]
    if fast[0] == "error":
        assert fast == slow
        # atomic: the hasher is exactly as it was
        assert (fast_h.hex, {k: v % (2**127 - 1) for k, v in fast_h._cache.items()}) == (
            fast_before[0],
            {k: v % (2**127 - 1) for k, v in fast_before[1].items()},
        )
    else:
        assert strict_equal(fast[1], slow[1])
        assert fast[2] == slow[2]
        assert fast_h.hex == slow_h.hex == state_hash(fast[1])
        for path in fast_h._cache:
            node = fast[1]
            for item in path:
                node = node[item]
            assert fast_h.subtree(fast[1], path) == IncrementalHash(node).root


def test_memo_of_walked_containers_survives_structural_changes() -> None:
    state: Any = {"a": [{"x": 1}, {"x": 2}, {"x": 3}], "b": {"c": {"d": 1}}}
    ops: tuple[Op, ...] = (
        Set(("a", 1, "x"), 20),
        Splice(("a",), 0, 1, ()),  # shifts: ("a", 1) is now the old ("a", 2)
        Set(("a", 1, "x"), 30),
        Set(("b", "c", "d"), 2),
        Set(("b", "c"), {"d": 5}),  # replaces a walked container
        Set(("b", "c", "d"), 6),
        Remove(("b", "c")),
        Set(("b", "c"), {"e": []}),
        Splice(("b", "c", "e"), 0, 0, (1, 2)),
        Set(("a", 0), {"y": 1}),
        Set(("a", 0, "y"), 2),
    )
    h = IncrementalHash(state)
    h.subtree(state, ("a",))
    out = apply_ops(state, ops, hasher=h)
    assert out == {"a": [{"y": 2}, {"x": 30}], "b": {"c": {"e": [1, 2]}}}
    assert state == {"a": [{"x": 1}, {"x": 2}, {"x": 3}], "b": {"c": {"d": 1}}}
    assert h.hex == state_hash(out)
    assert h.subtree(out, ("a",)) == IncrementalHash(out["a"]).root


def test_values_are_copied_in() -> None:
    value: Any = {"k": [1, {"z": 2}]}
    out: Any = apply_ops({"a": 1}, (Set(("a",), value), Splice(("a", "k"), 0, 0, (value,))))
    assert out["a"] is not value
    out["a"]["k"][2]["z"] = 9
    assert value == {"k": [1, {"z": 2}]}


@pytest.mark.parametrize(
    "op",
    [
        Set(("a", "\ud800"), 1),
        Set(("a", "k"), "\ud800"),
        Set(("a", "k"), float("inf")),
        Set(("a", "k"), [1, (2,)]),  # type: ignore[list-item]
        Set(("l", True), 1),
        Set(("l", -1), 1),
        Set(("l", "1"), 1),
        Set(("l", "01"), 1),
        Remove(("l", "0")),
        Splice(("l",), END, 0, (7,)),
        Splice(("l",), END, 1, ()),
        Splice(("l",), 0, 3, ()),
        Splice(("a",), 0, 0, ()),
        Set((), 5),
        Remove(()),
    ],
)
def test_unusual_ops_behave_like_the_general_path(op: Op) -> None:
    state = {"a": {"b": 1}, "l": [1, 2]}
    for cache in (False, True):
        fast = outcome(apply_ops, state, (Set(("a", "b"), 2), op), _hasher(state, cache))
        slow = outcome(slow_apply, state, (Set(("a", "b"), 2), op), _hasher(state, cache))
        if fast[0] == "ok":
            assert strict_equal(fast[1], slow[1]) and fast[2] == slow[2]
        else:
            assert fast == slow


def test_hash_numbers_stay_small_under_long_runs() -> None:
    state: Any = {"log": [f"m{i}" for i in range(20)], "x": [[1, 2], [3]]}
    h = IncrementalHash(state)
    h.subtree(state, ("log",))
    for i in range(2000):
        state = apply_ops(
            state,
            (
                Splice(("log",), 20, 0, (f"n{i}",)),
                Splice(("log",), 0, 1, ()),
                Splice(("x",), 0, 1, ()),
                Splice(("x",), 1, 0, ([i, i],)),
                Set(("x", 1, 1), i),
            ),
            hasher=h,
        )
    assert h.hex == state_hash(state)
    assert h._root.bit_length() < 400
    assert all(v.bit_length() < 400 for v in h._cache.values())
