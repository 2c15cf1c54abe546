"""State hashes: a structural hash that can be updated in time proportional to a change.

Theory of operation
-------------------
A hash must be cheap to keep current on a large state (a 256x256 board changes a few cells per
move), and simple enough that a client in any language can compute it from scratch. So the hash
is *linear* in the hashes of the children, in the field of integers modulo ``P = 2**127 - 1``::

    h(bytes)   = int.from_bytes(xxh3_128(bytes), "big") mod P
    H(scalar)  = h(canonical_bytes(scalar))
    H(dict d)  = (T_DICT + sum(K(k) * H(d[k]) for k in d)) mod P
    H(list l)  = (T_LIST + sum(R**(i+1) * H(l[i]) for i in range(len(l)))) mod P

    T_DICT = h(b"\\xc1dict")   T_LIST = h(b"\\xc1list")   R = h(b"\\xc1index")
    K(k)   = h(b"\\xc1key" + canonical_bytes(k))

``0xc1`` is the one byte MessagePack never uses, so the structural constants can never equal a
scalar's hash input. ``state_hash`` prints ``H(root)`` as 32 lowercase hex digits.

Because ``H`` is linear, changing the subtree at path ``p`` from ``old`` to ``new`` changes the
root hash by ``W(p) * (H(new) - H(old))``, where ``W(p)`` is the product of the weights along the
path (``K(key)`` for a dict key, ``R**(i+1)`` for list index ``i``). A list splice shifts the
elements after it, which multiplies their part of the list's sum by a power of ``R``; that part
comes from a cached list hash, so appending to a list and trimming its front are cheap too.
:class:`IncrementalHash` keeps the root hash, plus cached hashes of chosen subtrees, current
under a stream of operations.

This is a checksum against desyncs, not a MAC: it detects any accidental difference with
probability ``1 - 2**-127`` but is not meant to resist a forger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, TypeAlias

import xxhash

from statesync.canonical import scalar_bytes
from statesync.value import Path, Value, check_value

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

P: Final = (1 << 127) - 1
_MEMO_LIMIT: Final = 1 << 16

_digest = xxhash.xxh3_128_digest
_from_bytes = int.from_bytes


def h(data: bytes) -> int:
    """The field element of a byte string: xxh3-128, big-endian, modulo ``P``."""
    return _from_bytes(_digest(data), "big") % P


T_DICT: Final = h(b"\xc1dict")
T_LIST: Final = h(b"\xc1list")
R: Final = h(b"\xc1index")

_key_memo: dict[str, int] = {}
_powers: list[int] = [1]

# Scalar hashes, memoized per type (game states repeat small ints and short strings). One
# dict per type because ``1``, ``1.0`` and ``True`` are equal as dict keys but hash apart.
_int_memo: dict[int, int] = {}
_str_memo: dict[str, int] = {}
_float_memo: dict[float, int] = {}
_H_NONE: Final = h(scalar_bytes(None))
_H_TRUE: Final = h(scalar_bytes(True))
_H_FALSE: Final = h(scalar_bytes(False))


def scalar_hash(value: None | bool | int | float | str) -> int:
    """``H`` of a scalar (memoized: game states repeat small ints and short strings)."""
    t = type(value)
    memo: dict[int, int] | dict[str, int] | dict[float, int] | None
    if t is int:
        memo = _int_memo
    elif t is str:
        memo = _str_memo
    elif t is float:
        memo = _float_memo
    elif value is None:
        return _H_NONE
    elif value is True:
        return _H_TRUE
    elif value is False:
        return _H_FALSE
    else:
        memo = None
    if memo is not None:
        out = memo.get(value)  # type: ignore[arg-type]
        if out is not None:
            return out
    out = h(scalar_bytes(value))
    if memo is not None:
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[value] = out  # type: ignore[index]
    return out


def key_weight(key: str) -> int:
    """``K(key)``: the weight of a dict member in its parent's hash."""
    out = _key_memo.get(key)
    if out is not None:
        return out
    out = h(b"\xc1key" + scalar_bytes(key))
    if len(_key_memo) >= _MEMO_LIMIT:
        _key_memo.clear()
    _key_memo[key] = out
    return out


def index_weight(index: int) -> int:
    """``R**(index+1)``: the weight of a list element in its parent's hash."""
    powers = _powers
    while len(powers) <= index + 1:
        powers.append(powers[-1] * R % P)
    return powers[index + 1]


_R_INV: Final = pow(R, P - 2, P)
_inv_powers: list[int] = [1]


def _rpow(n: int) -> int:
    """``R**n``; negative ``n`` uses powers of ``R``'s inverse (cached, like the positive ones)."""
    if n >= 0:
        return index_weight(n - 1) if n else 1
    inv = _inv_powers
    while len(inv) <= -n:
        inv.append(inv[-1] * _R_INV % P)
    return inv[-n]


def item_weight(item: str | int) -> int:
    """Weight of one path element: ``K(key)`` or ``R**(index+1)``."""
    return key_weight(item) if type(item) is str else index_weight(item)  # type: ignore[arg-type]


def path_weight(path: Iterable[str | int]) -> int:
    """``W(path)``: the product of the weights along ``path``."""
    w = 1
    for item in path:
        w = w * item_weight(item) % P
    return w


_weight_memo: dict[Path, int] = {}


def _weight(path: Path) -> int:
    """``W(path)``, memoized: games touch the same few paths over and over."""
    w = _weight_memo.get(path)
    if w is not None:
        return w
    w = path_weight(path)
    if len(_weight_memo) >= _MEMO_LIMIT:
        _weight_memo.clear()
    _weight_memo[path] = w
    return w


def value_hash(value: Value) -> int:
    """``H(value)`` as an integer, computed from scratch (the value must be valid)."""
    t = type(value)
    if t is int:
        out = _int_memo.get(value)  # type: ignore[arg-type]
        if out is not None:
            return out
    elif t is str:
        out = _str_memo.get(value)  # type: ignore[arg-type]
        if out is not None:
            return out
    elif t is dict:
        acc = T_DICT
        kmemo = _key_memo
        smemo = _str_memo
        imemo = _int_memo
        for k, v in value.items():  # type: ignore[union-attr]
            kw = kmemo.get(k)
            if kw is None:
                kw = key_weight(k)
            tv = type(v)
            hv = smemo.get(v) if tv is str else imemo.get(v) if tv is int else None  # type: ignore[arg-type]
            acc += kw * (value_hash(v) if hv is None else hv)
        return acc % P
    elif t is list:
        acc = T_LIST
        powers = _powers
        if len(powers) <= len(value):  # type: ignore[arg-type]
            index_weight(len(value))  # type: ignore[arg-type]
        smemo = _str_memo
        imemo = _int_memo
        i = 1
        for v in value:  # type: ignore[union-attr]
            tv = type(v)
            hv = smemo.get(v) if tv is str else imemo.get(v) if tv is int else None  # type: ignore[arg-type]
            acc += powers[i] * (value_hash(v) if hv is None else hv)
            i += 1
        return acc % P
    return scalar_hash(value)  # type: ignore[arg-type]


def format_hash(h_int: int) -> str:
    """32 lowercase hex digits."""
    return "%032x" % h_int  # noqa: UP031 (the same digits, twice as fast as an f-string)


def state_hash(value: object) -> str:
    """The hash of a state as 32 lowercase hex digits; equal states hash equal everywhere.

    Raises :class:`~statesync.errors.InvalidValueError` for anything that is not a state.

    >>> state_hash({"a": 1}) == state_hash({"a": 1})
    True
    >>> state_hash([1]) == state_hash([1.0])
    False
    """
    return format_hash(value_hash(check_value(value)))


# What a cache's key set says about a path, memoized per key set (see :class:`_Index`):
# (W(path), whether the path itself is cached, whether a cached path lies strictly below it,
# and ((ancestor, W(rest of path)), ...) for its cached proper non-empty ancestors).
_Info: TypeAlias = "tuple[int, bool, bool, tuple[tuple[Path, int], ...]]"


class _Index:
    """Facts about paths that depend only on which paths a hasher caches, computed once per
    path and shared by every hasher with the same key set (copies, tables of the same game)."""

    __slots__ = ("info", "keys", "limit", "prefixes")

    def __init__(self, keys: frozenset[Path], limit: int) -> None:
        self.keys = keys
        self.prefixes = frozenset(q[:k] for q in keys for k in range(len(q)))
        self.info: dict[Path, _Info] = {}
        self.limit = limit

    def lookup(self, path: Path) -> _Info:
        keys = self.keys
        ancestors = (
            tuple((path[:k], _weight(path[k:])) for k in range(1, len(path)) if path[:k] in keys)
            if keys
            else ()
        )
        out = (_weight(path), path in keys, path in self.prefixes, ancestors)
        info = self.info
        if len(info) >= self.limit:
            info.clear()
        info[path] = out
        return out


_EMPTY_INDEX: Final = _Index(frozenset(), _MEMO_LIMIT)
_indexes: dict[frozenset[Path], _Index] = {}


def _index_for(keys: frozenset[Path]) -> _Index:
    if not keys:
        return _EMPTY_INDEX
    idx = _indexes.get(keys)
    if idx is None:
        if len(_indexes) >= 64:
            _indexes.clear()
        idx = _indexes[keys] = _Index(keys, _MEMO_LIMIT >> 4)
    return idx


class _Absent:
    __slots__ = ()


_ABSENT: Final = _Absent()
"""The ``old`` value meaning "no such dict key yet" (:meth:`IncrementalHash._set_value`)."""


# ``H`` of a bool, None or memoized int/str/float by type, without a walk: the hot path of
# every write (game states are mostly such scalars). Read as ``_SCALAR_MEMOS.get(type(v))``,
# then ``.get(v)``; a miss (a container, or a scalar not memoized yet) goes to value_hash.
_SCALAR_MEMOS: Final[dict[type, dict[Any, int]]] = {
    int: _int_memo,
    str: _str_memo,
    float: _float_memo,
    bool: {False: _H_FALSE, True: _H_TRUE},
    type(None): {None: _H_NONE},
}


class IncrementalHash:
    """Keeps ``H(root)`` current while operations are applied to a state.

    Call :meth:`before_set`, :meth:`before_remove` or :meth:`before_splice` with the state as
    it is *before* each change; the hasher reads the old subtree from it. Subtree hashes asked
    for with :meth:`subtree` are cached and kept current as well (lists that are spliced are
    cached automatically, which makes trimming the front of a long list cheap).

    >>> s = {"a": [1, 2]}
    >>> ih = IncrementalHash(s)
    >>> ih.before_set(s, ("a", 0), 5); s["a"][0] = 5
    >>> ih.hex == state_hash(s)
    True
    """

    # The root and the cached subtree hashes are kept *unreduced* (congruent modulo P): a
    # reduction costs more than the multiplication it follows. They only ever grow by
    # additions of products of reduced factors (a splice reduces its diff first), so they
    # stay a few bits longer than P**2; they are reduced when read (``root``, ``subtree``)
    # or when they become the old hash of a set.
    __slots__ = ("_cache", "_index", "_root")

    def __init__(self, state: Value, *, root: int | None = None) -> None:
        self._root = value_hash(state) if root is None else root
        self._cache: dict[Path, int] = {}
        # Derived from the cache's key set; None when that set changed (rebuilt on demand).
        self._index: _Index | None = _EMPTY_INDEX

    @property
    def root(self) -> int:
        """``H(root)`` as an integer in ``[0, P)``."""
        r = self._root = self._root % P
        return r

    @root.setter
    def root(self, value: int) -> None:
        self._root = value

    @property
    def hex(self) -> str:
        """The current root hash as 32 hex digits."""
        r = self._root = self._root % P  # self.root, inlined
        return format_hash(r)

    def _reindex(self) -> _Index:
        idx = self._index = _index_for(frozenset(self._cache))
        return idx

    def _info(self, path: Path) -> _Info:
        idx = self._index or self._reindex()
        return idx.info.get(path) or idx.lookup(path)

    def copy(self) -> IncrementalHash:
        """An independent copy (for rolling back a failed transaction)."""
        c = IncrementalHash.__new__(IncrementalHash)
        c._root = self._root
        c._cache = dict(self._cache)
        c._index = self._index
        return c

    def subtree(self, state: Value, path: Path) -> int:
        """``H`` of the subtree at ``path`` (cached and kept current from now on)."""
        if not path:
            return self.root
        cache = self._cache
        cached = cache.get(path)
        if cached is not None:
            if not 0 <= cached < P:  # kept unreduced; every viewer asks: reduce (and store) once
                cached = cache[path] = cached % P
            return cached
        node = state
        for item in path:
            node = node[item]  # type: ignore[index]
        out = value_hash(node)
        if len(cache) >= 256:
            cache.clear()
        cache[path] = out
        self._index = None
        return out

    def forget(self) -> None:
        """Drop every cached subtree hash (the root hash stays)."""
        self._cache.clear()
        self._index = _EMPTY_INDEX

    def _walk_hash(self, state: Value, path: Path) -> int:
        """``H`` of the value at ``path`` in ``state``; 0 when a dict key on the way is missing."""
        node = state
        try:
            for item in path:
                node = node[item]  # type: ignore[index]
        except KeyError:
            return 0
        return value_hash(node)

    def _drop_below(self, path: Path, from_index: int | None = None) -> None:
        """Forget cached hashes strictly below ``path`` (only list elements from
        ``from_index`` on, and what is below them, when it is given)."""
        n = len(path)
        cache = self._cache
        doomed = [
            q
            for q in cache
            if len(q) > n
            and q[:n] == path
            and (from_index is None or (type(q[n]) is int and q[n] >= from_index))  # type: ignore[operator]
        ]
        if doomed:
            for q in doomed:
                del cache[q]
            self._index = None

    def _add(self, info: _Info, diff: int) -> None:
        """Add ``W(path) * diff`` to the root and to every cached ancestor of the path."""
        self._root += info[0] * diff
        ancestors = info[3]
        if ancestors:
            cache = self._cache
            for anc, w in ancestors:
                cache[anc] += w * diff

    def before_set(self, state: Value, path: Path, new: Value) -> None:
        """Account for setting ``path`` (a dict key, a list index or the root) to ``new``."""
        if not path:
            if self._cache:
                self._cache.clear()
                self._index = _EMPTY_INDEX
            self._root = value_hash(new)
            return
        node: object = _ABSENT
        if path not in self._cache:  # a cached subtree's old hash needs no walk
            node = state
            try:
                for item in path:
                    node = node[item]  # type: ignore[index]
            except KeyError:
                node = _ABSENT
        self._set_value(path, node, new)

    def _set_value(self, path: Path, old: object, new: Value) -> None:
        """:meth:`before_set` for a caller that already holds the old value at ``path``
        (:data:`_ABSENT` for a new dict key); ``path`` is not the root."""
        idx = self._index or self._reindex()
        w, cached, below, ancestors = idx.info.get(path) or idx.lookup(path)
        cache = self._cache
        memos = _SCALAR_MEMOS  # _scalar_memo_hash, inlined for the old and the new value
        memo_h: int | None
        if cached:
            old_h = cache[path] % P
        elif old is _ABSENT:
            old_h = 0
        else:
            memo = memos.get(type(old))
            memo_h = None if memo is None else memo.get(old)
            old_h = value_hash(old) if memo_h is None else memo_h  # type: ignore[arg-type]
        memo = memos.get(type(new))
        memo_h = None if memo is None else memo.get(new)
        new_h = value_hash(new) if memo_h is None else memo_h
        if below:
            self._drop_below(path)
        if cached:
            cache[path] = new_h
        if new_h != old_h:
            diff = new_h - old_h
            self._root += w * diff
            for anc, aw in ancestors:
                cache[anc] += aw * diff

    def before_remove(self, state: Value, path: Path) -> None:
        """Account for removing the dict key at ``path``."""
        info = self._info(path)
        old = self._cache[path] % P if info[1] else self._walk_hash(state, path)
        self._removed(path, info, old)

    def _remove_value(self, path: Path, old: Value) -> None:
        """:meth:`before_remove` for a caller that holds the value being removed."""
        info = self._info(path)
        self._removed(path, info, self._cache[path] % P if info[1] else value_hash(old))

    def _removed(self, path: Path, info: _Info, old: int) -> None:
        if info[2]:
            self._drop_below(path)
        if info[1]:
            del self._cache[path]
            self._index = None
        if old:
            self._add(info, -old)

    def before_splice(
        self, state: Value, path: Path, index: int, delete: int, insert: Sequence[Value]
    ) -> None:
        """Account for ``lst[index:index+delete] = insert`` on the list at ``path``."""
        node = state
        for item in path:
            node = node[item]  # type: ignore[index]
        self._splice_list(node, path, index, delete, insert)  # type: ignore[arg-type]

    def _splice_list(
        self, lst: list[Value], path: Path, index: int, delete: int, insert: Sequence[Value]
    ) -> None:
        """:meth:`before_splice` for a caller that holds the list at ``path``."""
        idx = self._index or self._reindex()
        w, cached, below, ancestors = idx.info.get(path) or idx.lookup(path)
        n = len(lst)
        m = len(insert)
        end = index + delete
        powers = _powers
        if len(powers) <= n + m + 1:
            index_weight(n + m + 1)
        diff = 0
        smemo = _str_memo
        imemo = _int_memo
        if m:
            k = index + 1
            for v in insert:
                tv = type(v)
                hv = smemo.get(v) if tv is str else imemo.get(v) if tv is int else None  # type: ignore[arg-type]
                diff += powers[k] * (value_hash(v) if hv is None else hv)
                k += 1
        if delete:
            for j in range(index, end):  # _elem_hash, inlined
                v = lst[j]
                tv = type(v)
                if tv is str:
                    hv = smemo.get(v)  # type: ignore[arg-type]
                elif tv is int:
                    hv = imemo.get(v)  # type: ignore[arg-type]
                else:
                    hv = self._cache.get((*path, j)) if below else None
                diff -= powers[j + 1] * (value_hash(v) if hv is None else hv)
        if m != delete and end < n:
            if not index and not m and n - end > end + 1:
                # Trimming the front of a long list (a chat, a log): from the whole list's
                # hash, tail = whole - T_LIST - head (diff is -head so far), and the new hash
                # is T_LIST + R**-delete * tail.
                whole = (self._cache.get(path) if path else None) or self._whole(lst, path)
                inv = _inv_powers
                r = inv[delete] if len(inv) > delete else _rpow(-delete)
                diff = r * (whole - T_LIST + diff) + T_LIST - whole
            else:
                diff += (_rpow(m - delete) - 1) * self._tail_sum(lst, path, end, below)
            cached = cached or path in self._cache  # it may just have been cached
        if below:
            self._drop_below(path, index)
        # Reduced once: the list's cached hash then only grows by additions, so it can be
        # multiplied in as it is by the next splice.
        diff %= P
        if not diff:
            return
        if not path:
            self._root += diff
            return
        cache = self._cache
        if cached:
            cache[path] += diff
        self._root += w * diff
        for anc, aw in ancestors:
            cache[anc] += aw * diff

    def _elem_hash(self, lst: list[Value], path: Path, j: int, below: bool) -> int:
        """``H(lst[j])``, from the cache when elements of the list may be cached."""
        if below:
            cached = self._cache.get((*path, j))
            if cached is not None:
                return cached
        v = lst[j]
        tv = type(v)
        hv = _str_memo.get(v) if tv is str else _int_memo.get(v) if tv is int else None  # type: ignore[arg-type]
        return value_hash(v) if hv is None else hv

    def _tail_sum(self, lst: list[Value], path: Path, start: int, below: bool) -> int:
        """``sum(R**(j+1) * H(lst[j]) for j >= start)``, from whichever side is shorter
        (``_powers`` must reach ``len(lst)``)."""
        n = len(lst)
        powers = _powers
        direct = n - start <= start + 1
        part = 0
        for j in range(start, n) if direct else range(start):
            part += powers[j + 1] * self._elem_hash(lst, path, j, below)
        if direct:
            return part
        return (self._whole(lst, path) - T_LIST - part) % P

    def _whole(self, lst: list[Value], path: Path) -> int:
        """``H`` of the list at ``path`` (which is ``lst``), cached from now on."""
        if not path:
            return self.root
        cache = self._cache
        whole = cache.get(path)
        if whole is None:
            whole = cache[path] = value_hash(lst)
            self._index = None
        return whole

    def _save(self) -> tuple[int, dict[Path, int] | None, _Index | None]:
        """What :meth:`_restore` needs to undo every change made after this call."""
        cache = self._cache
        return (self._root, dict(cache) if cache else None, self._index)

    def _restore(self, saved: tuple[int, dict[Path, int] | None, _Index | None]) -> None:
        root, cache, self._index = saved
        self._root = root
        self._cache = {} if cache is None else cache
