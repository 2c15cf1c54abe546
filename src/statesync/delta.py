"""Deltas and their application.

A :class:`Delta` is an ordered tuple of operations (:mod:`statesync.ops`). :func:`patch` applies
one to a state and returns the new state; it is *pure* (the input is never modified: the nodes
on the changed paths are copied, everything else is shared) and *atomic* (a delta that fails
part-way raises :class:`~statesync.errors.PatchError` and no partial result exists).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from statesync.errors import InvalidValueError, PatchError, PathError, TestFailedError
from statesync.ops import END, Add, Copy, Move, NativeOp, Op, Remove, Replace, Set, Splice, Test
from statesync.value import Path, Value, check_value, copy_value, format_path

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
    return p.root


class _Patcher:
    """Applies operations to a private copy-on-write version of a state."""

    __slots__ = ("_fresh", "hasher", "record", "root")

    def __init__(
        self, root: Value, hasher: IncrementalHash | None, record: list[NativeOp] | None
    ) -> None:
        self.root = root
        self.hasher = hasher
        self.record = record
        # ids of containers created by this patcher: safe to mutate in place. The objects are
        # kept alive by the new tree, so their ids cannot be reused while we run.
        self._fresh: set[int] = set()

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
        if isinstance(op, Move):
            self._move(op)
            return
        if isinstance(op, Copy):
            op = Copy(self._norm(op.from_path), self._norm(op.path))
        elif any(type(item) is str for item in op.path):
            op = _with_path(op, self._norm(op.path))
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
            self._emit(Set(path, value))
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
            self.hasher.before_set(self.root, path, value)
        self._emit(Set(path, value))
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
            self.hasher.before_remove(self.root, path)
        self._emit(Remove(path))
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
            self.hasher.before_splice(self.root, path, index, delete, insert)
        self._emit(Splice(path, index, delete, tuple(insert)))
        lst[index : index + delete] = [copy_value(v) for v in insert]

    def _emit(self, op: NativeOp) -> None:
        if self.record is not None:
            self.record.append(op)


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
