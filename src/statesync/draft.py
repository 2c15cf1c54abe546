"""Mutation tracking: rules mutate a draft of the state; the delta is what they did.

Theory of operation
-------------------
A :class:`Draft` wraps a state that it never modifies. ``draft.root`` is a proxy
(:class:`DraftDict` or :class:`DraftList`) that reads like the plain container and records every
write as a native operation (:class:`~statesync.ops.Set`, :class:`~statesync.ops.Remove`,
:class:`~statesync.ops.Splice` with int list indices). :meth:`Draft.finish` returns the new state
and the :class:`~statesync.delta.Delta` of those operations, so the work per action grows with
what the rules did, never with the size of the state::

    patch(state, delta) == new_state      (strictly), and ``state`` is unchanged

*Copy-on-write.* A proxy holds the container it stands for (``_node``), its parent proxy and its
key there. The first write through a proxy shallow-copies its node and, in turn, every ancestor
not copied yet (the ``_owned`` flag); later writes mutate those private copies in place.
Untouched subtrees stay shared with the input, and reading never copies.

*One proxy per position.* A proxy caches the proxies of its container children (``_kids``), so
reading ``root["seats"][3]`` twice gives the same object and a copy made through one of them is
seen by all. Because of that cache a parent always knows which proxies sit below it:

* a write that replaces or removes a child marks the child's proxy *detached*; mutating a
  detached proxy (or anything read through it) raises :class:`~statesync.errors.PathError`;
* a list splice re-keys the child proxies after it (``p = lst[3]; lst.insert(0, x)`` moves ``p``
  to index 4) and detaches the deleted ones; ``sort``/``reverse`` re-key by the permutation.

Positions are tracked by index arithmetic, not by object identity, so a state that holds the same
object twice (``[x, x]``) is handled exactly. :meth:`Draft.finish` detaches the root (every
proxy refuses writes from then on) and empties those caches: parents and kids point at each
other, and a finished draft would otherwise live on until the cyclic garbage collector ran (a
table finishes one per action).

*Paths.* An operation's path is found by walking up the parent links (which also detects a
detached ancestor). The result is cached on the proxy together with the draft's *epoch*, a
counter bumped whenever any proxy is re-keyed or detached, so the steady-state cost of a write is
one comparison, not a walk. A proxy made under a parent whose cached path is current starts
with its own path cached (the parent's plus its key), so even a first write needs no walk.
Paths are interned: the operations of every draft share one tuple per path.

*Reads* of scalars return them as they are; a scan over many members can use :func:`peek` to
read the plain node behind a proxy without making a proxy per member.

*Values written* are validated like :func:`~statesync.value.check_value` and deep-copied first
(a proxy contributes a copy of its current value), so a failed write changes nothing and neither
the caller nor the draft can alias what the other holds. The copy is shared by the recorded
operation and the tree; that is safe because the draft never mutates a node it did not copy
itself, and the caller only ever reaches the tree through proxies.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Mapping, MutableMapping, MutableSequence
from typing import TYPE_CHECKING, Any, Final

from statesync.delta import Delta
from statesync.errors import InvalidValueError, PathError
from statesync.hashing import _ABSENT
from statesync.ops import Remove, Set, Splice
from statesync.value import INT_MAX, INT_MIN, check_value, copy_value, format_path, strict_equal

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from statesync.hashing import IncrementalHash
    from statesync.ops import NativeOp
    from statesync.value import Path, PathItem, Value

__all__ = ["Draft", "DraftDict", "DraftList", "peek", "to_value"]


class _Missing:
    __slots__ = ()


_MISSING: Final = _Missing()

# Paths are interned: a game writes the same few paths over and over, and one shared tuple per
# path saves memory in the history (every operation holds its path) and work for the garbage
# collector, and later lookups by path (the hasher's, the wire encoder's) compare identical
# objects. Drafts make paths of str keys and int indices only, so equal means the same items.
_paths: dict[Path, Path] = {}
_PATHS_LIMIT: Final = 1 << 16


def _intern(path: Path) -> Path:
    """The one shared tuple equal to ``path`` (read ``_paths.get(path)`` first: it is faster)."""
    if len(_paths) >= _PATHS_LIMIT:
        _paths.clear()
    return _paths.setdefault(path, path)


class Draft:
    """A mutable draft of a state that records what is done to it.

    ``state`` must be a valid state value (see :mod:`statesync.value`); it is never modified.
    Mutate through :attr:`root`, then call :meth:`finish`::

        >>> from statesync.delta import patch
        >>> state = {"seats": [{"chips": 100}], "log": ["start"]}
        >>> draft = Draft(state)
        >>> root = draft.root
        >>> root["seats"][0]["chips"] -= 20
        >>> root["log"].append("Alice bets 20")
        >>> new_state, delta = draft.finish()
        >>> new_state
        {'seats': [{'chips': 80}], 'log': ['start', 'Alice bets 20']}
        >>> patch(state, delta) == new_state, state["seats"][0]["chips"]
        (True, 100)

    With ``hasher`` (an :class:`~statesync.hashing.IncrementalHash` of ``state``), the hasher is
    told about each operation before it is applied, so afterwards ``hasher.hex`` is the hash of
    the new state. Copy the hasher first if you may need to roll back.
    """

    __slots__ = ("_epoch", "_hasher", "_ops", "_result", "_root", "_root_proxy", "_undo")

    def __init__(self, state: Value, hasher: IncrementalHash | None = None) -> None:
        self._root: Value = state
        self._ops: list[NativeOp] = []
        self._undo: list[NativeOp] = []
        self._hasher = hasher
        # Bumped whenever a proxy is re-keyed or detached: cached paths are valid while it holds.
        self._epoch = 0
        self._root_proxy: DraftDict | DraftList | None = None
        self._result: tuple[Value, Delta] | None = None

    @property
    def root(self) -> Any:
        """The root as a :class:`DraftDict` / :class:`DraftList` proxy, or the root scalar.

        >>> Draft({"a": 1}).root
        DraftDict({'a': 1})
        >>> Draft(7).root
        7
        """
        proxy = self._root_proxy
        if proxy is not None:
            return proxy
        root = self._root
        t = type(root)
        if t is dict:
            proxy = self._root_proxy = DraftDict(self, root, None, None)
        elif t is list:
            proxy = self._root_proxy = DraftList(self, root, None, None)
        else:
            return root
        if self._result is not None:
            proxy._detached = True  # read-only once finished
        else:
            proxy._path_epoch = self._epoch  # the root's path () is current
        return proxy

    @property
    def finished(self) -> bool:
        """True once :meth:`finish` has been called; the draft can no longer be mutated."""
        return self._result is not None

    def set_root(self, value: object) -> None:
        """Replace the whole state with (a validated copy of) ``value``.

        Proxies read before are detached. Raises :class:`~statesync.errors.InvalidValueError`
        (nothing changed) for an invalid value, :class:`~statesync.errors.PathError` after
        :meth:`finish`.

        >>> d = Draft({"a": 1})
        >>> d.set_root([1, 2])
        >>> d.finish()[1].ops
        (Set(path=(), value=[1, 2]),)
        """
        if self._result is not None:
            raise PathError("the draft is finished and can no longer be mutated")
        new = _import(value)
        if strict_equal(self._root, new):
            return
        if self._hasher is not None:
            self._hasher.before_set(self._root, (), new)
        self._ops.append(Set((), new))
        self._undo.append(Set((), self._root))
        self._root = new
        self._detach_root()

    def inverse(self) -> Delta:
        """The delta that undoes everything recorded so far: ``patch(new_state,
        draft.inverse())`` strictly equals the original state. Built from the values each
        mutation overwrote, so it costs what the change costs."""
        return Delta(tuple(reversed(self._undo)))

    def finish(self) -> tuple[Value, Delta]:
        """End the draft: return ``(new_state, delta)``.

        ``patch(state, delta)`` strictly equals ``new_state``. Afterwards every proxy raises
        :class:`~statesync.errors.PathError` on mutation (reads still work); calling
        :meth:`finish` again returns the same pair. Treat ``new_state`` as immutable: it shares
        subtrees with ``state`` and with the values held by ``delta``.

        >>> d = Draft({"n": 1})
        >>> d.root["n"] += 1
        >>> d.finish()
        ({'n': 2}, Delta(ops=(Set(path=('n',), value=2),)))
        """
        if self._result is None:
            self._result = (self._root, Delta(tuple(self._ops)))
            self._release()
        return self._result

    def unwrap(self, value: object) -> Value:
        """A plain deep copy of ``value``'s current value (proxies included); see
        :func:`to_value`.

        >>> d = Draft({"a": [1]})
        >>> d.unwrap(d.root["a"])
        [1]
        """
        return to_value(value)

    def _release(self) -> None:
        """Detach the root for good (so every proxy refuses writes), and break the reference
        cycles between the proxies (a parent caches its kids, a kid holds its parent; the draft
        holds the root proxy, which holds the draft): a finished draft is then freed by
        reference counting, on the spot, instead of piling up for the cyclic garbage collector
        (one draft per action adds up).

        Proxies still held keep working for reads (a read-only root proxy is made afresh by
        :attr:`root`), but reading no longer returns the proxies cached before."""
        proxy = self._root_proxy
        self._detach_root()
        stack = [] if proxy is None else [proxy]
        while stack:
            kids = stack.pop()._kids
            if kids:
                stack.extend(kids.values())
                kids.clear()

    def _detach_root(self) -> None:
        if self._root_proxy is not None:
            self._root_proxy._detached = True
            self._root_proxy = None
        self._epoch += 1


def to_value(value: object) -> Value:
    """A plain deep copy of ``value``, with every proxy in it replaced by its current value.

    >>> d = Draft({"a": {"b": 1}})
    >>> plain = to_value(d.root["a"])
    >>> plain, type(plain).__name__
    ({'b': 1}, 'dict')
    """
    t = type(value)
    if t is DraftDict or t is DraftList:
        return copy_value(value._node)  # type: ignore[attr-defined]
    if t is dict:
        return {k: to_value(v) for k, v in value.items()}  # type: ignore[attr-defined]
    if t is list:
        return [to_value(v) for v in value]  # type: ignore[attr-defined]
    return value  # type: ignore[return-value]


def peek(value: Any) -> Any:
    """The plain value behind a proxy as it is now, without copying; anything else as is.

    For fast read-only scans in rules (no proxy is made per element read). Never mutate what
    it returns, and peek again after writing through the draft: the first write under a node
    copies it, and the node peeked before that is then an old version.

    >>> d = Draft({"seats": [{"chips": 5}, {"chips": 0}]})
    >>> [i for i, s in enumerate(peek(d.root["seats"])) if s["chips"]]
    [0]
    """
    t = type(value)
    if t is DraftDict or t is DraftList:
        return value._node
    return value


class _Proxy:
    """State shared by :class:`DraftDict` and :class:`DraftList`: node, position, ownership."""

    __slots__ = (
        "_detached",
        "_draft",
        "_key",
        "_kids",
        "_node",
        "_owned",
        "_parent",
        "_path",
        "_path_epoch",
    )

    _node: Any
    _key: Any
    _path: Path
    _path_epoch: int

    def __init__(self, draft: Draft, node: Any, parent: _Proxy | None, key: PathItem | None):
        self._draft = draft
        self._node = node
        self._parent = parent
        self._key = key
        self._owned = False
        self._detached = False
        self._kids: dict[Any, DraftDict | DraftList] = {}
        if parent is not None and parent._path_epoch == draft._epoch:
            # The parent's cached path is current, so this one is known too: the first write
            # through a new proxy then needs no walk up the tree.
            path = (*parent._path, key)
            self._path = _paths.get(path) or _intern(path)  # type: ignore[arg-type]
            self._path_epoch = draft._epoch
        else:
            self._path = ()
            self._path_epoch = -1

    def _locate(self) -> Path:
        """This node's path from the root; raises :class:`PathError` if it is detached."""
        draft = self._draft
        if self._path_epoch == draft._epoch:
            return self._path
        keys: list[PathItem] = []
        p = self
        while True:
            if p._detached:
                keys.reverse()
                raise PathError(self._detached_message(keys), path=tuple(keys))
            parent = p._parent
            if parent is None:
                break
            keys.append(p._key)
            p = parent
        keys.reverse()
        self._path = path = _intern(tuple(keys))
        self._path_epoch = draft._epoch
        return path

    def _detached_message(self, below: list[PathItem]) -> str:
        if self._draft._result is not None:
            return "draft node is detached: the draft is finished and can no longer be mutated"
        where = f" (last seen under {format_path(tuple(below))})" if below else ""
        return (
            "draft node is detached: it (or a container holding it) was removed or replaced "
            f"in the draft{where}"
        )

    def _own(self) -> None:
        """Copy this node (and any ancestor not copied yet) so it may be mutated in place.

        Call only after :meth:`_locate` succeeded (the node is attached, its key current).
        """
        node = self._node
        copy = dict(node) if type(node) is dict else list(node)
        parent = self._parent
        if parent is None:
            self._draft._root = copy
        else:
            if not parent._owned:
                parent._own()
            parent._node[self._key] = copy
        self._node = copy
        self._owned = True

    def _kid(self, key: PathItem, value: Any) -> Any:
        """The proxy for container ``value`` at ``key`` (created and cached), or ``value``."""
        t = type(value)
        if t is dict:
            kid: DraftDict | DraftList = DraftDict(self._draft, value, self, key)
        elif t is list:
            kid = DraftList(self._draft, value, self, key)
        else:
            return value
        self._kids[key] = kid
        return kid

    def _drop_kid(self, key: PathItem) -> None:
        kid = self._kids.pop(key, None)
        if kid is not None:
            kid._detached = True
            self._draft._epoch += 1

    def _drop_all_kids(self) -> None:
        if self._kids:
            for kid in self._kids.values():
                kid._detached = True
            self._kids = {}
            self._draft._epoch += 1

    def __copy__(self) -> Value:
        return copy_value(self._node)

    def __deepcopy__(self, memo: dict[int, Any]) -> Value:
        return copy_value(self._node)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Proxy):
            other = other._node
        return bool(self._node == other)

    def __len__(self) -> int:
        return len(self._node)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._node!r})"


class DraftDict(_Proxy, MutableMapping[str, Any]):
    """A dict in a :class:`Draft`: reads like the dict, records every write.

    Get one from :attr:`Draft.root` or by reading a dict out of another proxy; do not construct
    it yourself. Reading a container member returns its proxy, a scalar comes back as is.
    Writing validates and deep-copies the value (raising
    :class:`~statesync.errors.InvalidValueError`, with nothing changed, for an invalid one or a
    non-str key); mutating a proxy whose node was removed or replaced raises
    :class:`~statesync.errors.PathError`. ``pop``/``popitem`` return plain copies.

    >>> d = Draft({"a": {"x": 1}, "b": 2})
    >>> r = d.root
    >>> r["a"]["x"] = 5; del r["b"]; r.setdefault("c", []).append(1)
    >>> d.finish()[0]
    {'a': {'x': 5}, 'c': [1]}
    """

    __slots__ = ()
    _node: dict[str, Value]

    def __getitem__(self, key: str) -> Any:
        value = self._node[key]
        t = type(value)
        if t is not dict and t is not list:
            return value  # scalars need no proxy: the common, fast case
        kid = self._kids.get(key)
        if kid is not None:
            return kid
        return self._kid(key, value)

    def __setitem__(self, key: str, value: Any) -> None:
        # The hot write path of every game, so _locate, the import of common scalars (an
        # ASCII str is valid UTF-8; bool and None need no check) and _set are inlined.
        draft = self._draft
        path = self._path if self._path_epoch == draft._epoch else self._locate()
        if type(key) is not str or not key.isascii():
            _check_key(key, path)
        t = type(value)
        if t is int:
            if not INT_MIN <= value <= INT_MAX:
                value = _import(value)
        elif t is str:
            if not value.isascii():
                value = _import(value)
        elif t is not bool and value is not None:
            value = _import(value)
            t = type(value)
        node = self._node
        old: Any = node.get(key, _ABSENT)
        if old is value:
            return
        to = type(old)
        if to is t:
            if to is dict or to is list:
                if strict_equal(old, value):
                    return
            elif old == value:
                return
        if not self._owned:
            self._own()
            node = self._node
        full = (*path, key)
        full = _paths.get(full) or _intern(full)
        hasher = draft._hasher
        if hasher is not None:
            hasher._set_value(full, old, value)
        op = _SetShell()  # _new_set, inlined (twice)
        op.path = full
        op.value = value
        op.__class__ = Set
        draft._ops.append(op)
        if old is _ABSENT:
            draft._undo.append(_new_remove(full))
        else:
            op = _SetShell()
            op.path = full
            op.value = old
            op.__class__ = Set
            draft._undo.append(op)
        node[key] = value
        if (to is dict or to is list) and key in self._kids:
            self._drop_kid(key)

    def _set(self, path: Path, key: str, value: Value) -> None:
        node = self._node
        old: Any = node.get(key, _ABSENT)
        if old is not _ABSENT and strict_equal(old, value):
            return
        if not self._owned:
            self._own()
            node = self._node
        full = (*path, key)
        full = _paths.get(full) or _intern(full)
        draft = self._draft
        if draft._hasher is not None:
            draft._hasher._set_value(full, old, value)
        draft._ops.append(_new_set(full, value))
        draft._undo.append(_new_remove(full) if old is _ABSENT else _new_set(full, old))
        node[key] = value
        if key in self._kids:
            self._drop_kid(key)

    def __delitem__(self, key: str) -> None:
        path = self._locate()
        node = self._node
        if key not in node:
            raise KeyError(key)
        if not self._owned:
            self._own()
            node = self._node
        full = (*path, key)
        full = _paths.get(full) or _intern(full)
        draft = self._draft
        if draft._hasher is not None:
            draft._hasher.before_remove(draft._root, full)
        draft._ops.append(Remove(full))
        draft._undo.append(Set(full, node[key]))
        del node[key]
        if key in self._kids:
            self._drop_kid(key)

    def __contains__(self, key: object) -> bool:
        return key in self._node

    def __iter__(self) -> Iterator[str]:
        return iter(self._node)

    def get(self, key: str, default: Any = None) -> Any:
        """``self[key]`` if present (a proxy for a container), else ``default``."""
        if key in self._node:
            return self[key]
        return default

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return a plain copy of its value; ``default`` (or
        :class:`KeyError`) when it is missing."""
        self._locate()
        node = self._node
        if key in node:
            value = node[key]
            del self[key]
            return copy_value(value)
        if default is _MISSING:
            raise KeyError(key)
        return default

    def popitem(self) -> tuple[str, Any]:
        """Remove the last inserted member; return ``(key, plain copy of value)``."""
        self._locate()
        node = self._node
        if not node:
            raise KeyError("popitem(): dictionary is empty")
        key = next(reversed(node))
        value = node[key]
        del self[key]
        return key, copy_value(value)

    def setdefault(self, key: str, default: Any = None) -> Any:
        """``self[key]``, after setting it to (a copy of) ``default`` if it was missing."""
        self._locate()
        if key not in self._node:
            self[key] = default
        return self[key]

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Like :meth:`dict.update`, but atomic: every key and value is checked and copied
        before the first is written. One ``Set`` per member that changes."""
        path = self._locate()
        if isinstance(other, Mapping) or hasattr(other, "keys"):
            items = [(k, other[k]) for k in other.keys()]
        else:
            items = [(k, v) for k, v in other]
        items.extend(kwargs.items())
        staged: list[tuple[str, Value]] = []
        for key, value in items:
            _check_key(key, path)
            staged.append((key, _import(value)))
        for key, value in staged:
            self._set(path, key, value)

    def clear(self) -> None:
        """Remove every member (recorded as one ``Set`` of ``{}``, or one ``Remove``)."""
        path = self._locate()
        node = self._node
        if len(node) <= 1:
            for key in list(node):
                del self[key]
            return
        if not self._owned:
            self._own()
            node = self._node
        draft = self._draft
        if draft._hasher is not None:
            draft._hasher.before_set(draft._root, path, {})
        draft._ops.append(Set(path, {}))
        draft._undo.append(Set(path, dict(node)))
        node.clear()
        self._drop_all_kids()


class DraftList(_Proxy, MutableSequence[Any]):
    """A list in a :class:`Draft`: reads like the list, records every write.

    Get one from :attr:`Draft.root` or by reading a list out of another proxy. Indexing with an
    int returns a proxy for a container element (it follows the element when the list shifts);
    a slice returns a plain copy. Insertions and deletions are recorded as ``Splice``, element
    writes as ``Set``; ``sort`` and ``reverse`` record one ``Set`` of the whole list. Values are
    validated and deep-copied as in :class:`DraftDict`; ``pop`` returns a plain copy.

    >>> d = Draft({"log": ["a", "b"], "seats": [{"n": 1}, {"n": 2}]})
    >>> r = d.root
    >>> second = r["seats"][1]
    >>> r["seats"].insert(0, {"n": 0}); second["n"] = 20
    >>> r["log"].append("c"); del r["log"][0]
    >>> [op.path for op in d.finish()[1].ops]
    [('seats',), ('seats', 2, 'n'), ('log',), ('log',)]
    """

    __slots__ = ()
    _node: list[Value]

    def _index(self, index: Any) -> int:
        """``index`` as a non-negative int inside the list, or :class:`IndexError`."""
        i = operator.index(index)
        n = len(self._node)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("list index out of range")
        return i

    def __getitem__(self, index: Any) -> Any:
        if type(index) is int and index >= 0:
            value = self._node[index]
            t = type(value)
            if t is not dict and t is not list:
                return value
            kid = self._kids.get(index)
            if kid is not None:
                return kid
            return self._kid(index, value)
        if type(index) is slice:
            return copy_value(self._node[index])
        i = self._index(index)
        kid = self._kids.get(i)
        if kid is not None:
            return kid
        return self._kid(i, self._node[i])

    def __setitem__(self, index: Any, value: Any) -> None:
        path = self._locate()
        if type(index) is slice:
            self._set_slice(index, [_import(v) for v in value])
            return
        i = self._index(index)
        if type(value) is not int or not INT_MIN <= value <= INT_MAX:
            value = _import(value)
        self._set_index(path, i, value)

    def _set_index(self, path: Path, i: int, value: Value) -> None:
        node = self._node
        if strict_equal(node[i], value):
            return
        if not self._owned:
            self._own()
            node = self._node
        full = (*path, i)
        full = _paths.get(full) or _intern(full)
        draft = self._draft
        if draft._hasher is not None:
            draft._hasher.before_set(draft._root, full, value)
        draft._ops.append(Set(full, value))
        draft._undo.append(Set(full, node[i]))
        node[i] = value
        if i in self._kids:
            self._drop_kid(i)

    def _set_slice(self, s: slice, values: list[Value]) -> None:
        start, stop, step = s.indices(len(self._node))
        if step == 1:
            self._splice(start, max(0, stop - start), values)
            return
        targets = range(start, stop, step)
        if len(targets) != len(values):
            raise ValueError(
                f"attempt to assign sequence of size {len(values)} "
                f"to extended slice of size {len(targets)}"
            )
        path = self._locate()
        for i, v in zip(targets, values, strict=True):
            self._set_index(path, i, v)

    def __delitem__(self, index: Any) -> None:
        if self._path_epoch != self._draft._epoch:
            self._locate()
        if type(index) is int and 0 <= index < len(self._node):  # the common case, inlined
            self._splice(index, 1, [])
            return
        if type(index) is not slice:
            self._splice(self._index(index), 1, [])
            return
        targets = range(*index.indices(len(self._node)))
        if not targets:
            return
        if targets.step in (1, -1):
            self._splice(min(targets), len(targets), [])
            return
        for i in sorted(targets, reverse=True):
            self._splice(i, 1, [])

    def _splice(self, index: int, delete: int, insert: list[Value]) -> None:
        """``node[index:index + delete] = insert`` (already imported), recorded."""
        draft = self._draft
        path = self._path if self._path_epoch == draft._epoch else self._locate()
        if not delete and not insert:
            return
        if not self._owned:
            self._own()
        node = self._node
        end = index + delete
        if draft._hasher is not None:
            draft._hasher._splice_list(node, path, index, delete, insert)
        op = _SpliceShell()  # built as in _new_set (twice)
        op.path = path
        op.index = index
        op.delete = delete
        op.insert = tuple(insert)
        op.__class__ = Splice
        draft._ops.append(op)
        op = _SpliceShell()
        op.path = path
        op.index = index
        op.delete = len(insert)
        op.insert = tuple(node[index:end])
        op.__class__ = Splice
        draft._undo.append(op)
        node[index:end] = insert
        if self._kids:
            self._shift_kids(index, delete, len(insert))

    def _shift_kids(self, index: int, delete: int, inserted: int) -> None:
        end = index + delete
        shift = inserted - delete
        changed = False
        kids: dict[Any, DraftDict | DraftList] = {}
        for i, kid in self._kids.items():
            if i < index:
                kids[i] = kid
            elif i < end:
                kid._detached = True
                changed = True
            else:
                kids[i + shift] = kid
                if shift:
                    kid._key = i + shift
                    changed = True
        self._kids = kids
        if changed:
            self._draft._epoch += 1

    def insert(self, index: Any, value: Any) -> None:
        """Insert (a copy of) ``value`` before ``index``, clamped like :meth:`list.insert`."""
        self._locate()
        n = len(self._node)
        i = operator.index(index)
        if i < 0:
            i = max(0, i + n)
        self._splice(min(i, n), 0, [_import(value)])

    def append(self, value: Any) -> None:
        """Append (a copy of) ``value``."""
        if self._path_epoch != self._draft._epoch:
            self._locate()
        if type(value) is not str or not value.isascii():
            value = _import(value)
        self._splice(len(self._node), 0, [value])

    def extend(self, values: Iterable[Any]) -> None:
        """Append (copies of) ``values``: one ``Splice``."""
        self._locate()
        self._splice(len(self._node), 0, [_import(v) for v in values])

    def __iadd__(self, values: Iterable[Any]) -> DraftList:
        self.extend(values)
        return self

    def pop(self, index: Any = -1) -> Any:
        """Remove the element at ``index`` (default last); return a plain copy of it."""
        self._locate()
        if not self._node:
            raise IndexError("pop from empty list")
        i = self._index(index)
        value = self._node[i]
        self._splice(i, 1, [])
        return copy_value(value)

    def remove(self, value: Any) -> None:
        """Remove the first element equal (``==``) to ``value``; :class:`ValueError` if none."""
        self._locate()
        self._splice(self._node.index(_plain(value)), 1, [])

    def clear(self) -> None:
        """Remove every element: one ``Splice``."""
        self._locate()
        self._splice(0, len(self._node), [])

    def reverse(self) -> None:
        """Reverse in place, recorded as one ``Set`` of the whole list."""
        self._locate()
        self._permute(list(range(len(self._node) - 1, -1, -1)))

    def sort(self, *, key: Callable[[Any], Any] | None = None, reverse: bool = False) -> None:
        """Stable sort in place, like :meth:`list.sort`, recorded as one ``Set`` of the whole
        list (nothing when the order does not change). ``key`` receives what indexing
        returns: proxies for containers, scalars as they are.

        >>> d = Draft([{"c": 3}, {"c": 1}])
        >>> d.root.sort(key=lambda seat: seat["c"])
        >>> d.finish()[0]
        [{'c': 1}, {'c': 3}]
        """
        self._locate()
        node = self._node
        if key is None:
            plain: list[Any] = node
            order = sorted(range(len(node)), key=plain.__getitem__, reverse=reverse)
        else:
            keys = [key(self[i]) for i in range(len(node))]
            order = sorted(range(len(node)), key=keys.__getitem__, reverse=reverse)
        self._permute(order)

    def _permute(self, order: list[int]) -> None:
        """Reorder so that new element ``j`` is old element ``order[j]``."""
        if all(i == j for j, i in enumerate(order)):
            return
        path = self._locate()
        if not self._owned:
            self._own()
        node = self._node
        reordered = [node[i] for i in order]
        value = copy_value(reordered)  # the live nodes may still be mutated in place
        draft = self._draft
        if draft._hasher is not None:
            draft._hasher.before_set(draft._root, path, value)
        draft._ops.append(Set(path, value))
        draft._undo.append(Set(path, copy_value(node)))  # children stay live: copy them
        node[:] = reordered
        if self._kids:
            where = {old: new for new, old in enumerate(order)}
            kids: dict[Any, DraftDict | DraftList] = {}
            for i, kid in self._kids.items():
                kid._key = where[i]
                kids[kid._key] = kid
            self._kids = kids
            draft._epoch += 1

    def __iter__(self) -> Iterator[Any]:
        i = 0
        node = self._node
        while i < len(node):
            value = node[i]
            t = type(value)
            if t is not dict and t is not list:
                yield value
            else:
                kid = self._kids.get(i)
                yield kid if kid is not None else self._kid(i, value)
            i += 1
            node = self._node  # the loop body may have copied the list on write

    def __contains__(self, value: object) -> bool:
        return _plain(value) in self._node

    def index(self, value: Any, start: int = 0, stop: int = sys.maxsize) -> int:
        """Index of the first element equal (``==``) to ``value``; :class:`ValueError` if none."""
        return self._node.index(_plain(value), start, stop)

    def count(self, value: Any) -> int:
        """How many elements equal (``==``) ``value``."""
        return self._node.count(_plain(value))


# Delta operations are built on every write. These make the same frozen values as ``Set(...)``,
# ``Remove(...)`` and ``Splice(...)`` for less than the generated ``__init__``, which sets each
# field with ``object.__setattr__``: an operation is built as a *shell*, a plain class with the
# same slots, filled by ordinary attribute stores, and then given its real ``__class__``.
def _shell(cls: type) -> type[Any]:
    """A plain class with the slots of the frozen dataclass ``cls`` (checked at import: an
    instance turned into a ``cls`` equals the one ``cls(...)`` makes)."""
    names: tuple[str, ...] = vars(cls)["__slots__"]
    shell = type(f"_{cls.__name__}Shell", (), {"__slots__": names})
    probe = shell()
    for name in names:
        setattr(probe, name, ())
    probe.__class__ = cls  # raises TypeError if the layouts differ
    if probe != cls(**dict.fromkeys(names, ())):
        raise ImportError(f"cannot build {cls.__name__} from its slots")
    return shell


_SetShell, _RemoveShell, _SpliceShell = _shell(Set), _shell(Remove), _shell(Splice)


def _new_set(path: Path, value: Value) -> Set:
    op = _SetShell()
    op.path = path
    op.value = value
    op.__class__ = Set
    return op  # type: ignore[no-any-return]


def _new_remove(path: Path) -> Remove:
    op = _RemoveShell()
    op.path = path
    op.__class__ = Remove
    return op  # type: ignore[no-any-return]


def _check_key(key: object, path: Path) -> None:
    """Raise :class:`InvalidValueError` unless ``key`` can be a dict key in a state."""
    if type(key) is not str:
        raise InvalidValueError(f"dict key {key!r} at {format_path(path)} is not a str", path=path)
    check_value(key, path)  # a lone surrogate is not valid UTF-8


def _plain(value: object) -> Any:
    return value._node if isinstance(value, _Proxy) else value


def _import(value: object) -> Value:
    """A validated deep copy of ``value`` for writing into a draft (proxies give their value)."""
    try:
        return _copy_in(value)
    except InvalidValueError:
        check_value(_plain_tree(value))  # raises again, naming the offending path
        raise


def _copy_in(value: object) -> Value:
    # ASCII strs and 64-bit ints are taken as they are without a call: card lists, decks and
    # logs are made of them.
    t = type(value)
    if t is dict:
        out: dict[str, Value] = {}
        for k, v in value.items():  # type: ignore[attr-defined]
            if type(k) is not str or not k.isascii():
                _check_key(k, ())
            tv = type(v)
            if (tv is str and v.isascii()) or (tv is int and INT_MIN <= v <= INT_MAX):
                out[k] = v
            else:
                out[k] = _copy_in(v)
        return out
    if t is list:
        items: list[Value] = []
        for v in value:  # type: ignore[attr-defined]
            tv = type(v)
            if (tv is str and v.isascii()) or (tv is int and INT_MIN <= v <= INT_MAX):
                items.append(v)
            else:
                items.append(_copy_in(v))
        return items
    if t is DraftDict or t is DraftList:
        return copy_value(value._node)  # type: ignore[attr-defined]
    if t is int and INT_MIN <= value <= INT_MAX:  # type: ignore[operator]
        return value  # type: ignore[return-value]
    return check_value(value)


def _plain_tree(value: object) -> object:
    """``value`` with proxies replaced by their nodes (no copying), for error reporting."""
    t = type(value)
    if t is dict:
        return {k: _plain_tree(v) for k, v in value.items()}  # type: ignore[attr-defined]
    if t is list:
        return [_plain_tree(v) for v in value]  # type: ignore[attr-defined]
    return _plain(value)
