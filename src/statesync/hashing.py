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

from typing import TYPE_CHECKING, Final

import xxhash

from statesync.canonical import scalar_bytes
from statesync.value import Path, Value, check_value

if TYPE_CHECKING:
    from collections.abc import Iterable

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

_scalar_memo: dict[tuple[type, object], int] = {}
_key_memo: dict[str, int] = {}
_powers: list[int] = [1]


def scalar_hash(value: None | bool | int | float | str) -> int:
    """``H`` of a scalar (memoized: game states repeat small ints and short strings)."""
    key = (type(value), value)
    try:
        return _scalar_memo[key]
    except KeyError:
        pass
    out = h(scalar_bytes(value))
    if len(_scalar_memo) >= _MEMO_LIMIT:
        _scalar_memo.clear()
    _scalar_memo[key] = out
    return out


def key_weight(key: str) -> int:
    """``K(key)``: the weight of a dict member in its parent's hash."""
    try:
        return _key_memo[key]
    except KeyError:
        pass
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
    try:
        return _weight_memo[path]
    except KeyError:
        pass
    w = path_weight(path)
    if len(_weight_memo) >= _MEMO_LIMIT:
        _weight_memo.clear()
    _weight_memo[path] = w
    return w


def value_hash(value: Value) -> int:
    """``H(value)`` as an integer, computed from scratch (the value must be valid)."""
    t = type(value)
    if t is dict:
        acc = T_DICT
        for k, v in value.items():  # type: ignore[union-attr]
            acc += key_weight(k) * value_hash(v)
        return acc % P
    if t is list:
        acc = T_LIST
        powers = _powers
        n = len(value)  # type: ignore[arg-type]
        if len(powers) <= n:
            index_weight(n)
        for i, v in enumerate(value):  # type: ignore[arg-type]
            acc += powers[i + 1] * value_hash(v)
        return acc % P
    return scalar_hash(value)  # type: ignore[arg-type]


def format_hash(h_int: int) -> str:
    """32 lowercase hex digits."""
    return f"{h_int:032x}"


def state_hash(value: object) -> str:
    """The hash of a state as 32 lowercase hex digits; equal states hash equal everywhere.

    Raises :class:`~statesync.errors.InvalidValueError` for anything that is not a state.

    >>> state_hash({"a": 1}) == state_hash({"a": 1})
    True
    >>> state_hash([1]) == state_hash([1.0])
    False
    """
    return format_hash(value_hash(check_value(value)))


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

    __slots__ = ("_cache", "_keys", "_maxlen", "_prefixes", "root")

    def __init__(self, state: Value, *, root: int | None = None) -> None:
        self.root = value_hash(state) if root is None else root
        self._cache: dict[Path, int] = {}
        # Derived from the cache's key set, rebuilt only when that set changes: which paths
        # have cached descendants, and the longest cached path (bounds ancestor lookups).
        self._keys = 0
        self._prefixes: frozenset[Path] = frozenset()
        self._maxlen = 0

    def _index_keys(self) -> None:
        prefixes = set()
        maxlen = 0
        for q in self._cache:
            maxlen = max(maxlen, len(q))
            for k in range(len(q)):
                prefixes.add(q[:k])
        self._prefixes = frozenset(prefixes)
        self._maxlen = maxlen
        self._keys = len(self._cache)

    @property
    def hex(self) -> str:
        """The current root hash as 32 hex digits."""
        return format_hash(self.root)

    def copy(self) -> IncrementalHash:
        """An independent copy (for rolling back a failed transaction)."""
        c = IncrementalHash.__new__(IncrementalHash)
        c.root = self.root
        c._cache = dict(self._cache)
        c._keys = self._keys
        c._prefixes = self._prefixes
        c._maxlen = self._maxlen
        return c

    def subtree(self, state: Value, path: Path) -> int:
        """``H`` of the subtree at ``path`` (cached and kept current from now on)."""
        if not path:
            return self.root
        try:
            return self._cache[path]
        except KeyError:
            pass
        node = state
        for item in path:
            node = node[item]  # type: ignore[index]
        out = value_hash(node)
        if len(self._cache) >= 256:
            self._cache.clear()
        self._keys = -1
        self._cache[path] = out
        self._keys = -1
        return out

    def forget(self) -> None:
        """Drop every cached subtree hash (the root hash stays)."""
        self._cache.clear()
        self._keys = -1

    def _old_hash(self, state: Value, path: Path) -> int | None:
        cached = self._cache.get(path)
        if cached is not None:
            return cached
        node = state
        for item in path:
            if type(node) is dict:
                if item not in node:
                    return None
            node = node[item]  # type: ignore[index]
        return value_hash(node)

    def _propagate(self, path: Path, diff: int) -> None:
        """Add ``W(path) * diff`` to the root and to every cached ancestor of ``path``."""
        if not diff:
            return
        self.root = (self.root + _weight(path) * diff) % P
        cache = self._cache
        if not cache:
            return
        if self._keys != len(cache):
            self._index_keys()
        for k in range(1, min(len(path), self._maxlen + 1)):
            anc = path[:k]
            if anc in cache:
                cache[anc] = (cache[anc] + _weight(path[k:]) * diff) % P

    def _invalidate_below(self, path: Path, from_index: int | None = None) -> None:
        if self._keys != len(self._cache):
            self._index_keys()
        if path not in self._prefixes:
            return
        n = len(path)
        doomed = [
            q
            for q in self._cache
            if len(q) > n
            and q[:n] == path
            and (from_index is None or (type(q[n]) is int and q[n] >= from_index))  # type: ignore[operator]
        ]
        for q in doomed:
            del self._cache[q]
            self._keys = -1

    def before_set(self, state: Value, path: Path, new: Value) -> None:
        """Account for setting ``path`` (a dict key, a list index or the root) to ``new``."""
        old = self._old_hash(state, path)
        self._invalidate_below(path)
        new_h = value_hash(new)
        if path in self._cache:
            self._cache[path] = new_h
        if not path:
            self.root = new_h
            return
        self._propagate(path, new_h - (old or 0))

    def before_remove(self, state: Value, path: Path) -> None:
        """Account for removing the dict key at ``path``."""
        old = self._old_hash(state, path)
        self._invalidate_below(path)
        if self._cache.pop(path, None) is not None:
            self._keys = -1
        self._propagate(path, -(old or 0))

    def before_splice(
        self, state: Value, path: Path, index: int, delete: int, insert: list[Value]
    ) -> None:
        """Account for ``lst[index:index+delete] = insert`` on the list at ``path``."""
        node = state
        for item in path:
            node = node[item]  # type: ignore[index]
        lst: list[Value] = node  # type: ignore[assignment]
        n = len(lst)
        end = index + delete
        shift = len(insert) - delete
        diff = 0
        for j, v in enumerate(insert):
            diff += index_weight(index + j) * value_hash(v)
        for j in range(index, end):
            diff -= index_weight(j) * self._elem_hash(lst, path, j)
        if shift and end < n:
            diff += (_rpow(shift) - 1) * self._tail_sum(lst, path, end)
        self._invalidate_below(path, from_index=index)
        diff %= P
        if path in self._cache:
            self._cache[path] = (self._cache[path] + diff) % P
        if not path:
            self.root = (self.root + diff) % P
        else:
            self._propagate(path, diff)

    def _elem_hash(self, lst: list[Value], path: Path, j: int) -> int:
        cached = self._cache.get((*path, j))
        return cached if cached is not None else value_hash(lst[j])

    def _tail_sum(self, lst: list[Value], path: Path, start: int) -> int:
        """``sum(R**(j+1) * H(lst[j]) for j >= start)``, from whichever side is shorter."""
        n = len(lst)
        if n - start <= start + 1:
            return sum(index_weight(j) * self._elem_hash(lst, path, j) for j in range(start, n))
        if not path:
            whole = self.root
        else:
            cached = self._cache.get(path)
            whole = value_hash(lst) if cached is None else cached
            if path not in self._cache:
                self._keys = -1
            self._cache[path] = whole
        head = sum(index_weight(j) * self._elem_hash(lst, path, j) for j in range(start))
        return (whole - T_LIST - head) % P
