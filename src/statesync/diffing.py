"""Whole-tree diff: the native delta that turns one state into another.

Theory of operation
-------------------
:func:`diff` walks both trees together and emits native operations only (:class:`Set`,
:class:`Remove`, :class:`Splice` with concrete indices), so its output goes straight to the
wire, to :func:`~statesync.composition.squash` and to :func:`~statesync.inversion.invert`.

* Values of different types (``1`` vs ``1.0`` vs ``True``, list vs dict) are replaced whole.
* Dicts recurse per key: :class:`Remove` for a dropped key, :class:`Set` for a new one.
* Lists first trim the common prefix and suffix. What is left (the *middle*) is edited in the
  cheapest of a few ways: a pure insert or delete; a *sliding window* (drop ``k`` items at one
  end, add ``m`` at the other -- chat and action logs) as two splices; element-wise recursion
  when both middles have the same length; an alignment with :class:`difflib.SequenceMatcher`;
  or one splice replacing the whole middle. "Cheapest" is the encoded size of the operations
  (:func:`_op_cost`); when few elements of an equal-length middle differ, element-wise wins
  outright and nothing is encoded, which keeps a 64x64 board with three changed cells cheap.

Equality is strict (:func:`~statesync.value.strict_equal`). Python's ``==`` is used as a fast
prefilter only: ``==`` is necessary for strict equality, and when it holds, :func:`_same_types`
confirms that no ``1`` stands where a ``1.0`` or ``True`` was.
"""

from __future__ import annotations

from difflib import SequenceMatcher
from typing import TYPE_CHECKING, Final

import msgspec

from statesync.delta import Delta
from statesync.ops import NativeOp, Remove, Set, Splice

if TYPE_CHECKING:
    from collections.abc import Hashable

    from statesync.value import Path, Value

__all__ = ["diff"]

_ALIGN_LIMIT: Final = 1_000_000
"""Above ``len(old) * len(new)`` elements in a list middle, skip SequenceMatcher (quadratic
on repetitive lists) and fall back to the other candidates."""
_SLIDE_TRIES: Final = 8
"""How many candidate offsets a sliding-window search verifies before giving up."""

# Deterministic key order, so that equal dicts give equal alignment keys. ``-0.0`` and ``0.0``
# encode differently here (no normalisation pass, for speed): they then align as different
# elements, which costs a slightly larger delta in that rare case, never a wrong one. Lengths
# are those of the canonical encoding (floats are always 9 bytes).
_encoder = msgspec.msgpack.Encoder(order="deterministic")
_CONTAINERS: Final = (dict, list)


def diff(old: Value, new: Value) -> Delta:
    """The delta of native operations that turns ``old`` into ``new``.

    ``patch(old, diff(old, new))`` is strictly equal to ``new``, and ``diff(s, s)`` is empty.
    Both arguments must be valid states (:func:`~statesync.value.check_value`); they are not
    validated again and never modified. Operation values share subtrees with ``new``: treat
    both as immutable. Raises nothing for valid states.

    >>> diff({"a": 1, "b": [1, 2]}, {"a": 1.0, "b": [1, 2, 3]}).ops
    (Set(path=('a',), value=1.0), Splice(path=('b',), index=2, delete=0, insert=(3,)))
    """
    out: list[NativeOp] = []
    _diff(old, new, (), out)
    return Delta(tuple(out))


def _diff(a: Value, b: Value, path: Path, out: list[NativeOp]) -> None:
    if a is b:
        return
    t = type(a)
    if t is not type(b):
        out.append(Set(path, b))
    elif t is dict:
        if not _eq(a, b):
            _diff_dict(a, b, path, out)  # type: ignore[arg-type]
    elif t is list:
        if not _eq(a, b):
            _diff_list(a, b, path, out)  # type: ignore[arg-type]
    elif a != b:
        out.append(Set(path, b))


def _diff_dict(a: dict[str, Value], b: dict[str, Value], path: Path, out: list[NativeOp]) -> None:
    for k, v in a.items():
        if k in b:
            _diff(v, b[k], (*path, k), out)
        else:
            out.append(Remove((*path, k)))
    for k, v in b.items():
        if k not in a:
            out.append(Set((*path, k), v))


def _diff_list(a: list[Value], b: list[Value], path: Path, out: list[NativeOp]) -> None:
    n, m = len(a), len(b)
    top = min(n, m)
    lo = 0
    while lo < top and _eq(a[lo], b[lo]):
        lo += 1
    hi = 0
    while hi < top - lo and _eq(a[n - 1 - hi], b[m - 1 - hi]):
        hi += 1
    xa, xb = a[lo : n - hi], b[lo : m - hi]
    if not xa and not xb:
        return
    if not xa or not xb:
        out.append(Splice(path, lo, len(xa), tuple(xb)))
        return
    whole: list[NativeOp] = (
        [Set(path, b)] if lo == 0 and hi == 0 else [Splice(path, lo, len(xa), tuple(xb))]
    )
    out.extend(_best_middle(xa, xb, lo, path, whole))


def _best_middle(
    xa: list[Value], xb: list[Value], lo: int, path: Path, whole: list[NativeOp]
) -> list[NativeOp]:
    """The cheapest edit of the non-empty middles ``xa`` -> ``xb`` found at index ``lo``."""
    slide = _slide(xa, xb, lo, path)
    changed: list[int] | None = None
    if len(xa) == len(xb):
        changed = [i for i, (x, y) in enumerate(zip(xa, xb, strict=True)) if not _eq(x, y)]
        if len(changed) * 2 <= len(xa):
            # Mostly equal in place: an alignment could save little, so skip it (and the
            # encoding it needs); only a detected shift competes.
            elementwise = _elementwise(xa, xb, changed, lo, path)
            return elementwise if slide is None else min(elementwise, slide, key=_cost)
    if slide is not None:
        return slide  # inserts only the new items: never worse than rewriting the middle
    candidates = [whole]
    if changed is not None:
        candidates.insert(0, _elementwise(xa, xb, changed, lo, path))
    if len(xa) * len(xb) <= _ALIGN_LIMIT:
        candidates.append(_aligned(xa, xb, lo, path))
    return min(candidates, key=_cost)


def _elementwise(
    xa: list[Value], xb: list[Value], changed: list[int], lo: int, path: Path
) -> list[NativeOp]:
    ops: list[NativeOp] = []
    for i in changed:
        _diff(xa[i], xb[i], (*path, lo + i), ops)
    return ops


def _slide(xa: list[Value], xb: list[Value], lo: int, path: Path) -> list[NativeOp] | None:
    """Two splices when one middle is the other shifted: items dropped at one end, new items
    added at the other (both directions); ``None`` when it is not such a shift."""
    k = _shift(xa, xb)
    if k is not None:  # xb == xa[k:] + added
        kept = len(xa) - k
        ops: list[NativeOp] = [Splice(path, lo, k, ())]
        if kept < len(xb):
            ops.append(Splice(path, lo + kept, 0, tuple(xb[kept:])))
        return ops
    k = _shift(xb, xa)
    if k is not None:  # xb == added + xa[:kept]
        kept = len(xb) - k
        ops = [Splice(path, lo, 0, tuple(xb[:k]))]
        if kept < len(xa):
            ops.insert(0, Splice(path, lo + kept, len(xa) - kept, ()))
        return ops
    return None


def _shift(x: list[Value], y: list[Value]) -> int | None:
    """The smallest ``k >= 1`` such that ``y`` starts with the non-empty ``x[k:]``."""
    first = y[0]
    start = 1
    for _ in range(_SLIDE_TRIES):
        try:
            k = x.index(first, start)  # == finds candidates; _eq below confirms them
        except ValueError:
            return None
        kept = len(x) - k
        if kept <= len(y) and _eq(x[k:], y[:kept]):
            return k
        start = k + 1
    return None


def _aligned(xa: list[Value], xb: list[Value], lo: int, path: Path) -> list[NativeOp]:
    """Splices for inserted and deleted runs, element-wise recursion for same-size replaced
    runs, from an alignment of the two middles."""
    ka = [_key(x) for x in xa]
    kb = [_key(y) for y in xb]
    ops: list[NativeOp] = []
    shift = lo
    matcher = SequenceMatcher(None, ka, kb, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        at = i1 + shift
        if tag == "replace" and i2 - i1 == j2 - j1:
            for t in range(i2 - i1):
                _diff(xa[i1 + t], xb[j1 + t], (*path, at + t), ops)
            continue
        ops.append(Splice(path, at, i2 - i1, tuple(xb[j1:j2])))
        shift += (j2 - j1) - (i2 - i1)
    return ops


def _key(x: Value) -> Hashable:
    """A hashable stand-in for ``x``: equal keys mean strictly equal values."""
    if type(x) in _CONTAINERS:
        return _encode(x)
    return (type(x), x)


def _encode(x: Value) -> bytes:
    return _encoder.encode(x)


def _cost(ops: list[NativeOp]) -> int:
    return sum(_op_cost(op) for op in ops)


def _op_cost(op: NativeOp) -> int:
    """Encoded bytes of the path and values of ``op`` (a proxy for its size on the wire)."""
    size = len(_encode(op.path))  # type: ignore[arg-type]
    if type(op) is Set:
        return size + len(_encode(op.value))
    if type(op) is Splice:
        return size + 2 + len(_encode(op.insert))  # type: ignore[arg-type]
    return size


def _eq(x: Value, y: Value) -> bool:
    """Strict equality, with C-speed ``==`` doing the bulk of the work."""
    return x is y or (x == y and _same_types(x, y))


def _same_types(x: Value, y: Value) -> bool:
    """Given ``x == y``: do the two trees also agree on every type (``1`` vs ``1.0``)?"""
    t = type(x)
    if t is not type(y):
        return False
    if t is list:
        tx = list(map(type, x))  # type: ignore[arg-type]
        if tx != list(map(type, y)):  # type: ignore[arg-type]
            return False
        if list in tx or dict in tx:
            return all(_same_types(u, v) for u, v in zip(x, y, strict=True))  # type: ignore[arg-type]
        return True
    if t is dict:
        return all(_same_types(v, y[k]) for k, v in x.items())  # type: ignore[index, union-attr]
    return True
