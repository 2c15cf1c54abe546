"""Delta inversion: the delta that undoes another, for rollback and undo.

The inverse of each operation needs the value it overwrote, so :func:`invert` replays the
delta on a private copy-on-write view of the base (only containers on changed paths are
copied, once each) and records, before every operation, what the operation will replace.
The inverse is those records in reverse order. Work is proportional to the change, never to
the size of the state: no tree is diffed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from statesync.delta import Delta, apply_ops
from statesync.ops import NativeOp, Remove, Set, Splice

if TYPE_CHECKING:
    from statesync.value import Path, Value

__all__ = ["invert"]


def invert(delta: Delta, base: Value) -> Delta:
    """The delta that takes ``patch(base, delta)`` back to ``base``.

    ``delta`` may hold any operations (RFC 6902 imports too); the inverse is native. Raises
    :class:`~statesync.errors.PatchError` when ``delta`` does not apply to ``base``. Neither
    argument is modified; the inverse shares subtrees with ``base``, so treat states as
    immutable.

    >>> from statesync.diffing import diff
    >>> from statesync.delta import patch
    >>> d = diff({"a": 1}, {"b": 2})
    >>> patch({"b": 2}, invert(d, {"a": 1}))
    {'a': 1}
    """
    # Validates, and turns every operation into a native one with int list indices (RFC 6901
    # tokens such as "0" on a list are read against the state here).
    native: list[NativeOp] = []
    apply_ops(base, delta.ops, record=native)
    replay = _Replay(base)
    undo = [replay.apply(op) for op in native]
    undo.reverse()
    return Delta(tuple(undo))


class _Replay:
    """A copy-on-write view of a state that applies native operations (known to apply) and
    returns the inverse of each."""

    __slots__ = ("_owned", "root")

    def __init__(self, root: Value) -> None:
        self.root = root
        # Containers copied here, safe to change in place. Values are kept (not just ids) so
        # that an id cannot be reused by a new object while we run.
        self._owned: dict[int, Any] = {}

    def apply(self, op: NativeOp) -> NativeOp:
        if isinstance(op, Splice):
            lst = self._container(op.path)
            end = op.index + op.delete
            old = tuple(lst[op.index : end])
            lst[op.index : end] = op.insert
            return Splice(op.path, op.index, len(op.insert), old)
        path = op.path
        if isinstance(op, Remove):
            parent = self._container(path[:-1])
            key = path[-1]
            removed = parent.pop(key)
            if isinstance(key, int):  # not from apply_ops' record, which splices lists
                return Splice(path[:-1], key, 0, (removed,))
            return Set(path, removed)
        if not path:
            old_root, self.root = self.root, op.value
            return Set((), old_root)
        parent = self._container(path[:-1])
        key = path[-1]
        if isinstance(parent, dict) and key not in parent:
            undo: NativeOp = Remove(path)
        else:
            undo = Set(path, parent[key])
        parent[key] = op.value
        return undo

    def _own(self, node: Any) -> Any:
        if id(node) in self._owned:
            return node
        copy = dict(node) if type(node) is dict else list(node)
        self._owned[id(copy)] = copy
        return copy

    def _container(self, path: Path) -> Any:
        self.root = node = self._own(self.root)
        for item in path:
            child = self._own(node[item])
            node[item] = child
            node = child
        return node
