"""Deltas and their application.

A :class:`Delta` is an ordered tuple of operations (:mod:`statesync.ops`). :func:`patch` applies
one to a state and returns the new state; it is *pure* (the input is never modified: the nodes
on the changed paths are copied, everything else is shared) and *atomic* (a delta that fails
part-way raises :class:`~statesync.errors.PatchError` and no partial result exists).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from statesync.errors import InvalidValueError, PatchError, PathError, TestFailedError
from statesync.hashing import _ABSENT
from statesync.ops import END, Add, Copy, Move, NativeOp, Op, Remove, Replace, Set, Splice, Test
from statesync.value import (
    INT_MAX,
    INT_MIN,
    Path,
    Value,
    check_value,
    copy_value,
    format_path,
)

if TYPE_CHECKING:
    from statesync.hashing import IncrementalHash


@dataclass(frozen=True, slots=True)
class Delta:
    """A change from one state to another: an ordered tuple of operations.

    An empty delta is falsy. Build one with :func:`~statesync.diffing`, from tracked mutations
    (:class:`~statesync.Draft`) or from RFC 6902 JSON Patch::

        >>> from statesync import diff, patch
        >>> d = diff({"a": 1}, {"a": 2})
        >>> patch({"a": 1}, d)
        {'a': 2}
        >>> d.to_json_patch()
        [{'op': 'add', 'path': '/a', 'value': 2}]
    """

    ops: tuple[Op, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.ops)

    def __len__(self) -> int:
        return len(self.ops)

    def then(self, other: Delta) -> Delta:
        """The composition ``self`` followed by ``other``, squashed.

        ``patch(patch(s, a), b) == patch(s, a.then(b))`` for every state ``s`` that ``a``
        applies to.
        """
        from statesync.composition import compose

        out: Delta = compose(self, other)
        return out

    def to_json_patch(self) -> list[dict[str, Any]]:
        """This delta as an RFC 6902 JSON Patch document (a list of operation objects)."""
        from statesync.jsonpatch import to_json_patch

        out: list[dict[str, Any]] = to_json_patch(self)
        return out

    @classmethod
    def from_json_patch(cls, ops: object) -> Delta:
        """Parse an RFC 6902 JSON Patch document (a list of operation objects).

        Raises :class:`~statesync.errors.JsonPatchError` for a malformed document; errors that
        depend on the target (a missing path, a failed ``test``) are raised by :func:`patch`.
        """
        from statesync.jsonpatch import from_json_patch

        out: Delta = from_json_patch(ops)
        return out

    def is_native(self) -> bool:
        """True when every operation is a native one (:class:`Set`, :class:`Remove`,
        :class:`Splice` with a concrete index)."""
        return all(
            type(op) in (Set, Remove) or (isinstance(op, Splice) and op.index >= 0)
            for op in self.ops
        )


EMPTY = Delta()


def patch(state: Value, delta: Delta) -> Value:
    """Apply ``delta`` to ``state`` and return the new state.

    The input is never modified; the result shares unchanged subtrees with it, so treat states
    as immutable values. Raises :class:`~statesync.errors.PatchError` (nothing applied) when an
    operation does not fit the state.
    """
    return apply_ops(state, delta.ops)


def resolve(state: Value, delta: Delta) -> Delta:
    """The same change as ``delta`` on ``state``, using native operations only.

    Turns :class:`Replace`, :class:`Move`, :class:`Copy`, :class:`Test` and ``Splice(END)`` into
    :class:`Set`, :class:`Remove` and :class:`Splice`. Raises :class:`PatchError` if ``delta``
    does not apply to ``state``.
    """
    # Always replay: a native-looking op may still hold an RFC 6901 token ("0") on a list.
    out: list[NativeOp] = []
    apply_ops(state, delta.ops, record=out)
    return Delta(tuple(out))


def apply_ops(
    state: Value,
    ops: tuple[Op, ...],
    *,
    hasher: IncrementalHash | None = None,
    record: list[NativeOp] | None = None,
) -> Value:
    """Apply ``ops`` with path copying; optionally keep ``hasher`` current (it is only changed
    when every operation succeeds) and append the native form of each op to ``record``."""
    if hasher is None:
        return _Patcher(state, None, record).run(ops)
    saved = hasher._save()
    try:
        return _Patcher(state, hasher, record).run(ops)
    except BaseException:
        hasher._restore(saved)
        raise


class _Decline(Exception):
    """Raised inside the fast path: let the general path handle (or reject) the op."""


def _encodable(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _valid_scalar(value: object) -> bool:
    """Whether ``value`` is a valid scalar state value (containers and other types: False)."""
    t = type(value)
    if t is int:
        return INT_MIN <= value <= INT_MAX  # type: ignore[operator]
    if t is str:
        return value.isascii() or _encodable(value)  # type: ignore[attr-defined, arg-type]
    if t is float:
        return math.isfinite(value)  # type: ignore[arg-type]
    return t is bool or value is None


def _import(value: Value) -> Value:
    """A private deep copy of ``value``, validated on the way: what ``copy_value(check_value(
    value))`` returns, in one pass. Raises :class:`_Decline` for an invalid value."""
    t = type(value)
    if t is dict:
        out: dict[str, Value] = {}
        for k, v in value.items():  # type: ignore[union-attr]
            if type(k) is not str or not (k.isascii() or _encodable(k)):
                raise _Decline
            tv = type(v)
            if tv is str:
                if not (v.isascii() or _encodable(v)):  # type: ignore[union-attr, arg-type]
                    raise _Decline
                out[k] = v
            elif tv is dict or tv is list:
                out[k] = _import(v)
            elif _valid_scalar(v):
                out[k] = v
            else:
                raise _Decline
        return out
    if t is list:
        lst: list[Value] = []
        for v in value:  # type: ignore[union-attr]
            tv = type(v)
            if tv is str:
                if not (v.isascii() or _encodable(v)):  # type: ignore[union-attr, arg-type]
                    raise _Decline
                lst.append(v)
            elif tv is dict or tv is list:
                lst.append(_import(v))
            elif _valid_scalar(v):
                lst.append(v)
            else:
                raise _Decline
        return lst
    if _valid_scalar(value):
        return value
    raise _Decline


class _Patcher:
    """Applies operations to a private copy-on-write version of a state.

    Native operations on plain paths take a fast path (:meth:`run`, :meth:`_fast_splice`,
    :meth:`_fast_remove`) that declines, having changed nothing that matters, on anything
    unusual: RFC 6901 tokens, ``END``, invalid values, missing paths, the root. The general
    path (:meth:`apply`) then applies the op or raises the precise error.
    """

    __slots__ = ("_fresh", "_parents", "_via", "hasher", "record", "root")

    def __init__(
        self, root: Value, hasher: IncrementalHash | None, record: list[NativeOp] | None
    ) -> None:
        self.root = root
        self.hasher = hasher
        self.record = record
        # ids of containers created by this patcher: safe to mutate in place. The objects are
        # kept alive by the new tree, so their ids cannot be reused while we run.
        self._fresh: set[int] = set()
        # path -> the owned container at that path in self.root, for containers the fast path
        # has walked to. An entry goes stale only when a container at or above it is replaced
        # or removed, or a list above it shifts; those ops drop the entries below them.
        self._parents: dict[Path, Any] = {}
        # Paths of the lists the fast path walked through (only below those can a splice make
        # an entry of _parents stale).
        self._via: set[Path] = set()

    def run(self, ops: tuple[Op, ...]) -> Value:
        parents = self._parents
        hasher = self.hasher
        record = self.record
        lo, hi, absent = INT_MIN, INT_MAX, _ABSENT
        i = 0
        op: Op | None = None
        try:
            for op in ops:
                t = type(op)
                if t is Set:
                    # The fast path for Set, inline: the bulk of every delta.
                    path = op.path
                    value = op.value  # type: ignore[union-attr]
                    tv = type(value)
                    if tv is str:
                        ok = value.isascii() or _encodable(value)  # type: ignore[union-attr, arg-type]
                        new = value
                    elif tv is int:
                        ok = lo <= value <= hi  # type: ignore[operator]
                        new = value
                    elif tv is dict or tv is list:
                        try:
                            new = _import(value)
                            ok = True
                        except _Decline:
                            ok = False
                    else:
                        ok = _valid_scalar(value)
                        new = value
                    if ok and path and type(path) is tuple:
                        ppath = path[:-1]
                        parent = parents.get(ppath)
                        if parent is None:
                            parent = self._walk(ppath)
                        key = path[-1]
                        if parent is None:
                            pass
                        elif (
                            type(parent) is dict
                            and type(key) is str
                            and (key.isascii() or _encodable(key))
                        ) or (type(parent) is list and type(key) is int and 0 <= key < len(parent)):
                            old = (
                                parent.get(key, absent) if type(parent) is dict else parent[key]  # type: ignore[index]
                            )
                            if hasher is not None:
                                hasher._set_value(path, old, value)
                            if record is not None:
                                record.append(op)  # type: ignore[arg-type]
                            parent[key] = new  # type: ignore[index]
                            to = type(old)
                            if (to is dict or to is list) and len(parents) > 1:
                                self._forget(path, 0)
                            i += 1
                            continue
                    self.apply(op)
                elif t is Splice:
                    if not self._fast_splice(op):  # type: ignore[arg-type]
                        self.apply(op)
                elif t is Remove:
                    if not self._fast_remove(op):  # type: ignore[arg-type]
                        self.apply(op)
                else:
                    self.apply(op)
                i += 1
        except PatchError as e:
            if e.op_index is None:
                e.op_index = i
            raise
        except (PathError, InvalidValueError) as e:
            raise PatchError(
                f"operation {i} ({type(op).__name__}): {e}",
                op_index=i,
                path=getattr(e, "path", ()),
            ) from None
        return self.root

    # ------------------------------------------------------------------ fast paths

    def _forget(self, path: Path, extra: int) -> None:
        """Drop the remembered containers at ``path`` and below (``extra=0``), or strictly
        below it (``extra=1``)."""
        n = len(path)
        parents = self._parents
        for q in [q for q in parents if len(q) >= n + extra and q[:n] == path]:
            del parents[q]

    def _walk(self, target: Path) -> Any:
        """The container at ``target``, owned along with every ancestor and remembered in
        ``_parents``; None when the walk meets anything the general path must handle (a
        token, a missing key, an index out of range, a scalar)."""
        fresh = self._fresh
        node: Any = self.root
        if id(node) not in fresh:
            t = type(node)
            if t is dict or t is list:
                node = node.copy()
            else:
                return None
            fresh.add(id(node))
            self.root = node
        child: Any
        i = 0
        for item in target:
            if type(node) is dict:
                if type(item) is not str:
                    return None
                child = node.get(item)
            elif type(item) is int and 0 <= item < len(node):
                child = node[item]
                self._via.add(target[:i])
            else:
                return None
            t = type(child)
            if t is dict or t is list:
                if id(child) not in fresh:
                    child = child.copy()
                    fresh.add(id(child))
                    node[item] = child
            else:
                return None
            node = child
            i += 1
        self._parents[target] = node
        return node

    def _fast_remove(self, op: Remove) -> bool:
        path = op.path
        if not path or type(path) is not tuple:
            return False
        ppath = path[:-1]
        parent = self._parents.get(ppath)
        if parent is None:
            parent = self._walk(ppath)
        if type(parent) is not dict:
            return False  # a list element (the general path makes it a splice), or a failure
        key = path[-1]
        if type(key) is not str:
            return False
        old = parent.get(key, _ABSENT)
        if old is _ABSENT:
            return False
        if self.hasher is not None:
            self.hasher._remove_value(path, old)
        if self.record is not None:
            self.record.append(op)
        del parent[key]
        if type(old) is dict or type(old) is list:
            self._forget(path, 0)
        return True

    def _fast_splice(self, op: Splice) -> bool:
        path, index, delete, insert = op.path, op.index, op.delete, op.insert
        if (
            type(index) is not int
            or type(delete) is not int
            or index < 0
            or delete < 0
            or type(path) is not tuple
        ):
            return False
        items: list[Value] = []
        for v in insert:
            t = type(v)
            if t is str:
                if not (v.isascii() or _encodable(v)):  # type: ignore[union-attr, arg-type]
                    return False
                items.append(v)
            elif t is dict or t is list:
                try:
                    items.append(_import(v))
                except _Decline:
                    return False
            elif _valid_scalar(v):
                items.append(v)
            else:
                return False
        lst = self._parents.get(path)
        if lst is None:
            lst = self._walk(path)
        if type(lst) is not list:
            return False
        n = len(lst)
        if index + delete > n:
            return False
        if self.hasher is not None:
            self.hasher._splice_list(lst, path, index, delete, insert)
        if self.record is not None:
            self.record.append(
                op if type(insert) is tuple else Splice(path, index, delete, tuple(insert))
            )
        lst[index : index + delete] = items
        if index < n and self._via and path in self._via:
            self._forget(path, 1)  # elements moved: what was remembered below them is stale
        return True

    # ------------------------------------------------------------------ general path

    def _own(self, node: Any) -> Any:
        if id(node) in self._fresh:
            return node
        c = dict(node) if type(node) is dict else list(node)
        self._fresh.add(id(c))
        return c

    def _container(self, path: Path) -> Any:
        """The container at ``path``, owned (copied) along with every ancestor."""
        if not path:
            if type(self.root) not in (dict, list):
                raise PathError("the root is not a container", path=path)
            self.root = self._own(self.root)
            return self.root
        self.root = node = self._own(self.root)
        for depth, item in enumerate(path):
            child = _child(node, item, path[: depth + 1])
            if type(child) not in (dict, list):
                raise PathError(
                    f"{format_path(path[: depth + 1])} is a {type(child).__name__}, "
                    "not a container",
                    path=path,
                )
            child = self._own(child)
            node[item] = child
            node = child
        return node

    def _read(self, path: Path) -> Value:
        node = self.root
        for depth, item in enumerate(path):
            node = _child(node, item, path[: depth + 1])
        return node

    def _norm(self, path: Path) -> Path:
        """Turn RFC 6901 string tokens that address list elements into ints (``"-"`` into
        :data:`END`); native paths come back unchanged."""
        node: Any = self.root
        out: list[str | int] | None = None
        for depth, item in enumerate(path):
            if type(node) is list and type(item) is str:
                if out is None:
                    out = list(path)
                if item == "-":
                    out[depth] = item = END
                elif item.isdigit() and item.isascii() and (item == "0" or item[0] != "0"):
                    out[depth] = item = int(item)
                else:
                    raise PathError(
                        f"{item!r} is not a list index at {format_path(path[:depth])}", path=path
                    )
            if depth + 1 < len(path):
                if type(node) is dict:
                    node = node.get(item) if type(item) is str else None
                elif type(node) is list and type(item) is int and 0 <= item < len(node):
                    node = node[item]
                else:
                    node = None
        return path if out is None else tuple(out)

    def apply(self, op: Op) -> None:
        self._parents.clear()
        self._via.clear()
        if isinstance(op, Move):
            self._move(op)
            return
        if isinstance(op, Copy):
            op = Copy(self._norm(op.from_path), self._norm(op.path))
        elif any(type(item) is str for item in op.path):
            path = self._norm(op.path)
            if path is not op.path:
                op = _with_path(op, path)
        match op:
            case Set(path, value):
                self._set(path, check_value(value), must_exist=False)
            case Replace(path, value):
                self._set(path, check_value(value), must_exist=True)
            case Add(path, value):
                self._add(path, check_value(value))
            case Remove(path):
                self._remove(path)
            case Splice(path, index, delete, insert):
                self._splice(path, index, delete, [check_value(v) for v in insert])
            case Copy(from_path, path):
                self._add(path, copy_value(self._read(from_path)))
            case Test(path, value):
                actual = self._read(path)
                if not json_equal(actual, value):
                    raise TestFailedError(f"test failed at {format_path(path)}", path=path)
            case _:
                raise PatchError(f"unknown operation {op!r}")

    def _move(self, op: Move) -> None:
        from_path, target = self._norm(op.from_path), self._norm(op.path)
        if from_path == target:
            self._read(from_path)
            return
        if target[: len(from_path)] == from_path:
            raise PatchError(
                f"cannot move {format_path(from_path)} into its own child {format_path(target)}",
                path=target,
            )
        value = self._read(from_path)
        self._remove(from_path)
        # RFC 6902 4.4: the target is read against the document after the removal.
        self._add(self._norm(op.path), value)

    def _set(self, path: Path, value: Value, *, must_exist: bool) -> None:
        if not path:
            if self.hasher is not None:
                self.hasher.before_set(self.root, path, value)
            if self.record is not None:
                self.record.append(Set(path, value))
            self.root = copy_value(value)
            return
        parent = self._container(path[:-1])
        key = path[-1]
        if type(parent) is dict:
            if type(key) is not str:
                raise PathError(f"dict at {format_path(path[:-1])} needs a str key", path=path)
            check_value({key: None}, path[:-1])
            if must_exist and key not in parent:
                raise PathError(f"no key {key!r} at {format_path(path[:-1])}", path=path)
        else:
            _check_index(parent, key, path, allow_end=False)
        if self.hasher is not None:
            self.hasher._set_value(
                path, parent.get(key, _ABSENT) if type(parent) is dict else parent[key], value
            )
        if self.record is not None:
            self.record.append(Set(path, value))
        parent[key] = copy_value(value)

    def _add(self, path: Path, value: Value) -> None:
        """RFC 6902 ``add``: dict member add/replace, list insert (index or END)."""
        if path:
            parent = self._read(path[:-1])
            if type(parent) is list:
                key = path[-1]
                if type(key) is not int or not (key == END or 0 <= key <= len(parent)):
                    raise PathError(
                        f"index {key!r} out of range for a list of {len(parent)} "
                        f"at {format_path(path[:-1])}",
                        path=path,
                    )
                self._splice(path[:-1], key, 0, [value])
                return
        self._set(path, value, must_exist=False)

    def _remove(self, path: Path) -> None:
        if not path:
            raise PathError("cannot remove the root", path=path)
        parent = self._container(path[:-1])
        key = path[-1]
        if type(parent) is list:
            _check_index(parent, key, path, allow_end=False)
            self._splice(path[:-1], key, 1, [])  # type: ignore[arg-type]
            return
        if type(key) is not str or key not in parent:
            raise PathError(f"no key {key!r} at {format_path(path[:-1])}", path=path)
        if self.hasher is not None:
            self.hasher._remove_value(path, parent[key])
        if self.record is not None:
            self.record.append(Remove(path))
        del parent[key]

    def _splice(self, path: Path, index: int, delete: int, insert: list[Value]) -> None:
        lst = self._container(path)
        if type(lst) is not list:
            raise PathError(f"{format_path(path)} is not a list", path=path)
        n = len(lst)
        if index == END and delete == 0:
            index = n
        if type(index) is not int or type(delete) is not int or index < 0 or delete < 0:
            raise PathError(
                f"bad splice index {index!r}/{delete!r} at {format_path(path)}", path=path
            )
        if index + delete > n:
            raise PathError(
                f"splice [{index}:{index + delete}] out of range for a list of {n} at "
                f"{format_path(path)}",
                path=path,
            )
        if self.hasher is not None:
            self.hasher._splice_list(lst, path, index, delete, insert)
        if self.record is not None:
            self.record.append(Splice(path, index, delete, tuple(insert)))
        lst[index : index + delete] = [copy_value(v) for v in insert]


def json_equal(a: Value, b: Value) -> bool:
    """RFC 6902 ``test`` equality: numbers compare by value (``1 == 1.0``), but a boolean
    never equals a number; containers compare member by member."""
    ta, tb = type(a), type(b)
    if ta in (int, float) and tb in (int, float):
        return a == b
    if ta is not tb:
        return False
    if ta is dict:
        return a.keys() == b.keys() and all(json_equal(v, b[k]) for k, v in a.items())  # type: ignore[union-attr, index]
    if ta is list:
        return len(a) == len(b) and all(  # type: ignore[arg-type]
            json_equal(x, y)
            for x, y in zip(a, b, strict=False)  # type: ignore[arg-type]
        )
    return a == b


def _with_path(op: Op, path: Path) -> Op:
    match op:
        case Set(_, v):
            return Set(path, v)
        case Replace(_, v):
            return Replace(path, v)
        case Add(_, v):
            return Add(path, v)
        case Remove(_):
            return Remove(path)
        case Splice(_, i, d, ins):
            return Splice(path, i, d, ins)
        case Test(_, v):
            return Test(path, v)
    return op


def _child(node: Any, item: object, path: Path) -> Any:
    t = type(node)
    if t is dict:
        if type(item) is not str or item not in node:
            raise PathError(f"no key {item!r} at {format_path(path[:-1])}", path=path)
        return node[item]
    if t is list:
        _check_index(node, item, path, allow_end=False)
        return node[item]
    raise PathError(f"{format_path(path[:-1])} is a {t.__name__}, not a container", path=path)


def _check_index(lst: list[Value], key: object, path: Path, *, allow_end: bool) -> None:
    if type(key) is not int:
        raise PathError(f"list at {format_path(path[:-1])} needs an int index", path=path)
    limit = len(lst) if allow_end else len(lst) - 1
    if not 0 <= key <= limit:
        raise PathError(
            f"index {key} out of range for a list of {len(lst)} at {format_path(path[:-1])}",
            path=path,
        )
