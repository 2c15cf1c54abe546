"""Delta composition: one delta with the effect of several applied in turn.

Theory of operation
-------------------
Concatenating the operations of ``a`` and ``b`` is always a correct composition; squashing
makes it smaller. Instead of rewriting the operation list pairwise, :func:`squash` replays
every operation onto an *edit tree*, an overlay that records what has happened to each part of
an unknown base state:

* ``None`` -- untouched;
* :class:`_Put` -- replaced by a known value; later operations below it are *folded* into that
  value (on a private deep copy: operation values are never mutated);
* :class:`_Gone` -- a dict member removed;
* :class:`_Dict` -- a dict whose members have edits of their own;
* :class:`_List` -- a list as an edit script over the *original* elements: runs kept as they
  are, single kept elements with edits of their own, runs deleted, runs of inserted values.
  Splices and element operations address *current* indices; the script maps them back, so a
  ``Set`` after a front-trim lands on the right element, and appends merge with appends.

Emitting the tree gives at most one operation per edited node: element edits first, at their
original indices, then one splice per changed run, right to left so that every index is still
an original one. A later ``Set``/``Remove`` of a node drops everything recorded below it, which
is how dead operations disappear.

The base state is unknown, so a few things cannot be squashed and fall back to concatenation:
non-native operations (RFC 6902 ``Add``/``Replace``/``Move``/``Copy``/``Test``, ``Splice`` at
``END``), a path that meets a container of the wrong kind, and string path items that may be
RFC 6901 list indices (``"3"``) where a removal could shift their siblings. The result is
never larger than the concatenation, as measured by :class:`_Sizer`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, TypeAlias

import msgspec

from statesync.delta import Delta
from statesync.ops import NativeOp, Op, Remove, Set, Splice
from statesync.value import copy_value

if TYPE_CHECKING:
    from collections.abc import Iterable

    from statesync.value import Path, PathItem, Value

__all__ = ["compose", "squash"]


def compose(a: Delta, b: Delta) -> Delta:
    """A delta equivalent to applying ``a`` and then ``b``, squashed.

    ``patch(patch(s, a), b) == patch(s, compose(a, b))`` for every state ``s`` that ``a``
    applies to and whose result ``b`` applies to (on other states the composition may fail
    differently, or not at all). Pure: neither delta is modified, and the result shares
    operation values with them. Raises nothing; deltas that cannot be squashed are
    concatenated.
    """
    return squash((a, b))


def squash(deltas: Iterable[Delta]) -> Delta:
    """One delta equivalent to applying ``deltas`` in order (e.g. v3->v4, ..., v8->v9).

    Dead operations are dropped, operations below a replaced value are folded into it, and
    splices on the same list are merged; the result is never larger than the plain
    concatenation (see :func:`compose` for the exact contract). Raises nothing.
    """
    concat = Delta(tuple(op for d in deltas for op in d.ops))
    ops = _native(concat.ops)
    if ops is None or len(ops) < 2:
        return concat
    root: _Node = None
    try:
        for op in ops:
            root = _edit(root, op.path, 0, op)
    except _Bail:
        return concat
    out: list[NativeOp] = []
    _emit(root, (), out)
    squashed = Delta(tuple(out))
    sizes = _Sizer()
    if (sizes.delta(squashed), len(squashed)) < (sizes.delta(concat), len(concat)):
        return squashed
    return concat


class _Bail(Exception):
    """The operations cannot be squashed safely: concatenate them instead."""


def _native(ops: tuple[Op, ...]) -> list[NativeOp] | None:
    """``ops`` if all are native operations with plain paths, else ``None``."""
    out: list[NativeOp] = []
    for op in ops:
        if isinstance(op, Splice):
            i, d = op.index, op.delete
            if type(i) is not int or type(d) is not int or i < 0 or d < 0:
                return None
        elif not isinstance(op, (Set, Remove)):
            return None
        if not all(type(p) is str or (type(p) is int and p >= 0) for p in op.path):
            return None
        out.append(op)
    return out


def _is_index_token(key: str) -> bool:
    """Could ``key`` be an RFC 6901 list index (as :func:`~statesync.patch` reads it)?"""
    return key == "-" or (key.isdigit() and key.isascii() and (key == "0" or key[0] != "0"))


# --- the edit tree -------------------------------------------------------------------------


class _Put:
    """Replaced by ``value``. ``owned`` values are private copies that folding may mutate;
    ``existed`` says whether a dict member surely existed in the base (``None``: unknown)."""

    __slots__ = ("existed", "owned", "value")

    def __init__(self, value: Value, existed: bool | None) -> None:
        self.value = value
        self.existed = existed
        self.owned = False


class _Gone:
    """A removed dict member (``existed`` as for :class:`_Put`)."""

    __slots__ = ("existed",)

    def __init__(self, existed: bool | None) -> None:
        self.existed = existed


class _Dict:
    """An original dict with edited members. ``sealed`` after removing a member whose key
    could be a list index: if the "dict" is really a list, the removal shifted its siblings."""

    __slots__ = ("children", "sealed")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.sealed = False

    def remove(self, key: str) -> None:
        child = self.children.get(key)
        if type(child) is _Gone:
            raise _Bail  # removing a removed member: the original fails
        if _is_index_token(key):
            if any(k != key for k in self.children):
                raise _Bail
            self.sealed = True
        existed = child.existed if type(child) is _Put else True
        self.children[key] = _Gone(existed)


# Segments of a list's edit script: original elements kept, one kept element with edits,
# original elements deleted, new values inserted. Only _Run and _Ins span several elements.
class _Run:
    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n


class _Elem:
    __slots__ = ("node",)

    def __init__(self, node: _Node) -> None:
        self.node = node


class _Del:
    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n


class _Ins:
    __slots__ = ("items",)

    def __init__(self, items: list[_Put]) -> None:
        self.items = items


_Seg: TypeAlias = "_Run | _Elem | _Del | _Ins"


def _width(seg: _Seg) -> int:
    """How many elements of the *current* list the segment spans."""
    if isinstance(seg, _Run):
        return seg.n
    if isinstance(seg, _Ins):
        return len(seg.items)
    return 1 if isinstance(seg, _Elem) else 0


class _List:
    """An original list under edit. Until its length changes, ``elems`` maps indices to
    element edits (current index == original index); after, ``segs`` is the edit script."""

    __slots__ = ("elems", "segs")

    def __init__(self) -> None:
        self.elems: dict[int, _Node] = {}
        self.segs: list[_Seg] | None = None

    def edit_child(self, index: int, path: Path, depth: int, op: NativeOp) -> None:
        if self.segs is None:
            self.elems[index] = _edit(self.elems.get(index), path, depth, op)
            return
        j = self._isolate(index)
        seg = self.segs[j]
        if type(seg) is _Ins:
            seg.items[0] = _as_put(_edit(seg.items[0], path, depth, op))
        else:
            node = seg.node if type(seg) is _Elem else None
            self.segs[j] = _Elem(_edit(node, path, depth, op))
        self._normalize()

    def splice(self, index: int, delete: int, insert: tuple[Value, ...]) -> None:
        segs = self._script()
        j = self._split(index)
        e = self._split(index + delete)
        new: list[_Seg] = []
        for seg in segs[j:e]:
            if type(seg) is _Run:
                new.append(_Del(seg.n))
            elif type(seg) is _Elem:
                new.append(_Del(1))
            elif type(seg) is _Del:
                new.append(seg)
            # values inserted earlier and deleted now simply vanish
        if insert:
            new.append(_Ins([_Put(v, None) for v in insert]))
        segs[j:e] = new
        self._normalize()

    def _script(self) -> list[_Seg]:
        if self.segs is None:
            segs: list[_Seg] = []
            self.segs = segs
            pos = 0
            for i in sorted(self.elems):
                if i > pos:
                    segs.append(_Run(i - pos))
                segs.append(_Elem(self.elems[i]))
                pos = i + 1
            self.elems = {}
        return self.segs

    def _split(self, k: int) -> int:
        """Make a segment boundary at current index ``k``; return the segment index there
        (extending the script with kept elements: the list must be that long)."""
        segs = self._script()
        cur = 0
        for j, seg in enumerate(segs):
            if cur == k:
                return j
            w = _width(seg)
            if cur + w > k:
                off = k - cur
                if isinstance(seg, _Run):
                    segs[j : j + 1] = [_Run(off), _Run(seg.n - off)]
                elif isinstance(seg, _Ins):
                    segs[j : j + 1] = [_Ins(seg.items[:off]), _Ins(seg.items[off:])]
                return j + 1
            cur += w
        if cur < k:
            segs.append(_Run(k - cur))
        return len(segs)

    def _isolate(self, index: int) -> int:
        """Index of the one-element segment holding current element ``index``."""
        j = self._split(index)
        e = self._split(index + 1)
        segs = self._script()
        for i in range(j, e):
            seg = segs[i]
            if type(seg) is _Run:
                segs[i] = _Elem(None)
                return i
            if type(seg) is not _Del:
                return i
        raise AssertionError("unreachable: a split range of width 1 holds an element")

    def _normalize(self) -> None:
        """Merge neighbours of the same kind; each run of deletions and insertions becomes
        one deletion followed by one insertion (deletions span no current index)."""
        segs = self._script()
        out: list[_Seg] = []
        dels = 0
        ins: list[_Put] = []
        for seg in segs:
            if isinstance(seg, _Del):
                dels += seg.n
                continue
            if isinstance(seg, _Ins):
                ins.extend(seg.items)
                continue
            _flush(out, dels, ins)
            dels, ins = 0, []
            prev = out[-1] if out else None
            if isinstance(seg, _Run) and isinstance(prev, _Run):
                out[-1] = _Run(prev.n + seg.n)
            else:
                out.append(seg)
        _flush(out, dels, ins)
        self.segs = out


def _flush(out: list[_Seg], dels: int, ins: list[_Put]) -> None:
    if dels:
        out.append(_Del(dels))
    if ins:
        out.append(_Ins(ins))


_Node: TypeAlias = "_Put | _Gone | _Dict | _List | None"


def _as_put(node: _Node) -> _Put:
    if type(node) is not _Put:
        raise AssertionError("unreachable: an edited inserted value stays a value")
    return node


def _edit(node: _Node, path: Path, depth: int, op: NativeOp) -> _Node:
    """Record ``op`` (whose path passes through ``node`` at ``depth``); return the new node."""
    if type(node) is _Put:
        return _fold(node, path[depth:], op)
    if depth == len(path):
        return _edit_here(node, op)
    item = path[depth]
    last = depth + 1 == len(path) and type(op) is Remove
    if isinstance(item, str):
        d = _as_dict(node)
        if last:
            d.remove(item)
        else:
            d.children[item] = _edit(d.children.get(item), path, depth + 1, op)
        return d
    lst = _as_list(node)
    if last:
        lst.splice(item, 1, ())
    else:
        lst.edit_child(item, path, depth + 1, op)
    return lst


def _edit_here(node: _Node, op: NativeOp) -> _Node:
    """``op`` targets ``node`` itself (which is not a :class:`_Put`)."""
    if type(op) is Set:
        existed = node.existed if type(node) is _Gone else (True if node is not None else None)
        return _Put(op.value, existed)
    if type(op) is Splice:
        lst = _as_list(node)
        lst.splice(op.index, op.delete, op.insert)
        return lst
    raise _Bail  # Remove of the root: the original fails


def _as_dict(node: _Node) -> _Dict:
    if node is None:
        return _Dict()
    if type(node) is not _Dict or node.sealed:
        raise _Bail
    return node


def _as_list(node: _Node) -> _List:
    if node is None:
        return _List()
    if type(node) is not _List:
        raise _Bail
    return node


# --- folding into known values --------------------------------------------------------------


def _fold(put: _Put, rel: Path, op: NativeOp) -> _Put:
    """Apply ``op`` (``rel`` is its path below ``put``) to the known value, in place."""
    if not rel and type(op) is Set:
        return _Put(op.value, put.existed)
    if not rel and type(op) is Remove:
        raise _Bail
    if not put.owned:
        put.value = copy_value(put.value)
        put.owned = True
    if type(op) is Splice:
        lst = _walk(put.value, rel)
        if type(lst) is not list or op.index + op.delete > len(lst):
            raise _Bail
        lst[op.index : op.index + op.delete] = [copy_value(v) for v in op.insert]
        return put
    parent = _walk(put.value, rel[:-1])
    key = rel[-1]
    if isinstance(parent, dict) and isinstance(key, str) and (type(op) is Set or key in parent):
        if isinstance(op, Set):
            parent[key] = copy_value(op.value)  # adds or replaces a member
        else:
            del parent[key]
    elif isinstance(parent, list) and type(key) is int and key < len(parent):
        if isinstance(op, Set):
            parent[key] = copy_value(op.value)
        else:
            del parent[key]
    else:
        raise _Bail  # the original fails here, or reads a string token on a list
    return put


def _walk(value: Value, items: Path) -> Value:
    for item in items:
        _check_slot(value, item)
        value = value[item]  # type: ignore[index]
    return value


def _check_slot(node: Value, item: PathItem) -> None:
    """Bail unless ``node[item]`` exists and means what :func:`~statesync.patch` would read
    (no RFC 6901 string tokens on lists: the original would be read differently)."""
    if type(node) is dict:
        ok = type(item) is str and item in node
    else:
        ok = type(node) is list and type(item) is int and item < len(node)
    if not ok:
        raise _Bail


# --- emitting ---------------------------------------------------------------------------------


def _emit(node: _Node, path: Path, out: list[NativeOp]) -> None:
    if isinstance(node, _Put):
        out.append(Set(path, node.value))
    elif isinstance(node, _Gone):
        if not node.existed:
            # Set-then-Remove of a member that may not have existed: Remove alone would fail
            # where the original did not. Keep a 1-byte Set so that both cases work.
            out.append(Set(path, None))
        out.append(Remove(path))
    elif isinstance(node, _Dict):
        for k, child in node.children.items():
            _emit(child, (*path, k), out)
    elif isinstance(node, _List):
        _emit_list(node, path, out)


def _emit_list(lst: _List, path: Path, out: list[NativeOp]) -> None:
    if lst.segs is None:
        for i in sorted(lst.elems):
            _emit(lst.elems[i], (*path, i), out)
        return
    changes: list[tuple[int, int, list[_Put]]] = []
    pos = 0
    for seg in lst.segs:
        if isinstance(seg, _Run):
            pos += seg.n
        elif isinstance(seg, _Elem):
            _emit(seg.node, (*path, pos), out)
            pos += 1
        elif isinstance(seg, _Del):
            changes.append((pos, seg.n, []))
            pos += seg.n
        elif changes and changes[-1][0] + changes[-1][1] == pos:
            changes[-1][2].extend(seg.items)  # the insertion after a deletion: same run
        else:
            changes.append((pos, 0, list(seg.items)))
    for start, dels, ins in reversed(changes):  # right to left: indices stay original
        if dels == 1 and len(ins) <= 1:
            out.append(Set((*path, start), ins[0].value) if ins else Remove((*path, start)))
        else:
            out.append(Splice(path, start, dels, tuple(p.value for p in ins)))


# --- size ----------------------------------------------------------------------------------

# Sizes only: key order and -0.0 do not change the length of the canonical encoding.
_encoder: Final = msgspec.msgpack.Encoder()


class _Sizer:
    """Encoded size of a native delta: each operation as a MessagePack array
    ``[kind, path, *args]`` (``Set``: value; ``Splice``: index, delete, insert). Paths count as
    well as values, since folding moves path keys into values. Sizes of values shared by
    several deltas are computed once."""

    __slots__ = ("_memo",)

    def __init__(self) -> None:
        self._memo: dict[int, tuple[Value, int]] = {}

    def value(self, v: Value) -> int:
        if type(v) not in (dict, list):
            return len(_encoder.encode(v))
        hit = self._memo.get(id(v))
        if hit is not None and hit[0] is v:
            return hit[1]
        n = len(_encoder.encode(v))
        self._memo[id(v)] = (v, n)
        return n

    def delta(self, delta: Delta) -> int:
        return sum(self.op(op) for op in delta.ops)

    def op(self, op: Op) -> int:
        """Bytes of ``[kind, path, *args]`` in MessagePack: 1 (array header) + 1 (kind) + ..."""
        size = 2 + len(_encoder.encode(op.path))
        if type(op) is Set:
            return size + self.value(op.value)
        if type(op) is Splice:
            ins = op.insert
            size += len(_encoder.encode(op.index)) + len(_encoder.encode(op.delete))
            return size + _array_header(len(ins)) + sum(self.value(v) for v in ins)
        return size


def _array_header(n: int) -> int:
    return 1 if n < 16 else 3 if n < 65536 else 5
