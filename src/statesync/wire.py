"""The per-connection wire format for deltas (format version 1).

One :class:`WireEncoder` at the sender and one :class:`WireDecoder` at the receiver form a
*connection*. Both ends keep mirrored state (tables of recently used paths, strings and dict
shapes, the last integers sent at each, and one DEFLATE stream), so a value seen before costs a
byte or two. Messages must therefore be decoded in the order they were encoded, each exactly
once (the one-byte message of an empty delta changes nothing and may be dropped). Version 1
was tuned and measured on the standard workloads with ``bench/wire_bytes.py``.

Theory of operation
-------------------
An encoder turns a :class:`~statesync.delta.Delta` of *native* operations into an *ops payload*
(below) and compresses that with the connection's DEFLATE stream. Every table operation happens
at the same point of the byte stream on both ends, so the decoder replays exactly what the
encoder did. A message that fails to decode raises :class:`~statesync.errors.WireError` and
leaves the decoder exactly as it was, but the sender has already moved on: **after any decode
error the connection is out of step, and both ends must call** ``reset()`` (the protocol layer
resynchronizes with a snapshot). The same holds for a lost or reordered message. An encoder that
raises is unchanged and the connection stays usable.

Errors carry stable codes: ``wire/version`` (unknown first byte), ``wire/too_large`` (over
``max_message_size``), ``wire/truncated`` (bytes ran out), ``wire/malformed`` (anything else the
decoder rejects) and, from the encoder, ``wire/unencodable`` (not a native op or not a state
value).

Memory per connection: the zlib buffers (deflate 16 KB: ``2**(wbits+2) + 2**(memLevel+9)``
plus its state; inflate 9 KB: ``2**wbits`` plus about 7 KB), the decoder's copy of the last
2 KiB it inflated (what it takes to undo a bad message) and the three tables below, whose
entries are size-limited. Measured with :mod:`tracemalloc` on the standard workloads, encoder
and decoder together: at most about 61 KB (``bench/wire_bytes.py`` prints it). Traffic built to
fill every entry to its limit reaches about 200 KB; nothing grows with the number of messages.

Message
-------
``message = version payload``

* ``version`` -- one byte, ``0x01``. Any other value is rejected (``WireError``, code
  ``wire/version``).
* ``payload`` -- empty for an empty delta (``encode(EMPTY) == b"\\x01"``; nothing else
  changes, and a caller may simply not send it). Otherwise the next chunk of the connection's
  one raw DEFLATE stream (RFC 1951, no zlib header or checksum) with a window of at most 2 KiB
  (no distance over 2048), ended by a sync flush (an empty stored block) whose final four bytes
  ``00 00 FF FF`` are dropped. The receiver appends ``00 00 FF FF`` and inflates; the result is
  the ops payload, which holds at least one operation. The reference encoder uses
  ``zlib.compressobj(6, DEFLATED, -11, 2)`` (deterministic for a given zlib); any DEFLATE
  encoder within the window interoperates.

Both a message and its inflated payload may be at most ``max_message_size`` bytes (default
1 MiB, ``wire/too_large``).

Integers
--------
* ``varint`` -- unsigned LEB128: 7 bits per byte, least significant group first, high bit set
  on every byte but the last; at most 10 bytes, and no redundant final ``0x00`` byte.
* ``zigzag`` -- a signed ``n`` is sent as the varint of ``2n`` if ``n >= 0`` else ``-2n - 1``.

Every integer value must lie in ``[-2**63, 2**64 - 1]``; every list index in ``[0, 2**64 - 1]``.

Tables
------
Each end keeps three tables, empty after construction and after ``reset()``. A string, path or
shape that satisfies the limits below *can enter* its table:

=========  =====  ==========================================================================
table      slots  entries
=========  =====  ==========================================================================
paths         64  a path (tuple of at most 8 items, every string item *short*), with an int
                  *memo*
strings       64  a *short* string: at most 24 bytes of UTF-8
shapes         8  the key tuple of a dict (1 to 16 keys, all short), with one int memo a key
=========  =====  ==========================================================================

Replacement is CLOCK (second chance). Each slot holds an entry or nothing, and a reference
bit; each table has a hand, starting at slot 0. *Using* a slot (a reference to it) sets its bit.
*Adding* an entry: while the slot under the hand holds an entry and its bit is set, clear the bit
and advance the hand (modulo the size); then put the entry in that slot (dropping what it held),
with its bit clear and its memos unset, and advance the hand once more. An encoder never sends
in full what its table holds, so entries are distinct (a decoder need not check this).

The *previous path* is the path of the last operation if that path could enter the path table,
else ``()``; it is ``()`` after a reset and carries over from one message to the next.

Ops payload
-----------
A sequence of operations up to the end of the payload. Each starts with a header byte ``h``:

============  =========  ===================================================================
``h``         operation  then
============  =========  ===================================================================
0x00 - 0x4F   ``Set``    path, ``value``
0x50 - 0x9F   ``Remove`` path
0xA0 - 0xEF   ``Splice`` path, ``varint index``, ``varint dc`` (``delete = dc >> 3``,
                         ``count = dc & 7``; when that is 7, ``count = 7 + varint``),
                         then ``count`` values to insert
0xF0 - 0xFF   reserved   (error)
============  =========  ===================================================================

Let ``r`` be ``h`` minus the first header of its operation (``0x00``, ``0x50`` or ``0xA0``).
The path is:

* ``r < 0x40`` -- the path in slot ``r`` of the path table (a use of that slot);
* ``0x40 <= r < 0x48`` -- the first ``k = r - 0x40`` items of the previous path, then one path
  item;
* ``0x48 <= r < 0x50`` -- the first ``k = r - 0x48`` items of the previous path, then
  ``varint m`` and ``m`` path items.

A path item is a ``varint u``: even ``u`` is the list index ``u >> 1``; odd ``u`` is the string
item ``x = u >> 1``. A *string item* ``x`` is slot ``x - 1`` of the string table if ``x > 0``,
else a literal: ``varint length`` and that many bytes of UTF-8, added to the string table when
short. A path given in items is added to the path table, after its items were read, when it can
enter it. Paths may have at most ``max_depth`` items (default 64), and a splice's
``index + delete`` must not exceed ``2**64 - 1``.

The *context* of a ``Set`` value is the memo of its path's entry (unset for an entry just
added); a path that could not enter the table gives no context.

Values
------
A value starts with a tag byte:

============  ===============================================================================
tag           value
============  ===============================================================================
0x00 - 0x3F   the string in slot ``tag`` of the string table
0x40 - 0x7F   int ``context + (tag - 0x60)`` (needs an int context)
0x80 - 0x9F   int ``tag - 0x80``
0xA0 - 0xA7   dict of the shape in slot ``tag - 0xA0``, then one value a key, in shape order
0xA8          ``None``
0xA9 / 0xAA   ``False`` / ``True``
0xAB          int: ``zigzag``
0xAC          int ``context + zigzag`` (needs an int context)
0xAD          float: 8 bytes, IEEE 754 binary64, big-endian; must be finite
0xAE          string literal: ``varint length``, UTF-8 bytes; added to the string table if short
0xAF          string of words: ``varint n``, ``n`` string items, joined with single spaces
0xB0          list: ``varint n``, ``n`` values
0xB1          dict: ``varint n`` (``n >= 1``), ``n`` distinct keys as string items, then ``n``
              values; the key tuple is added to the shape table when it can enter it
0xB2          empty dict
0xB3 - 0xFF   reserved (error)
============  ===============================================================================

The values of a dict sent by shape slot, or of a new dict whose key tuple was just added, have
as context the memos of that shape entry, in key order; the entry is fixed when the dict starts,
even if a nested dict evicts it before the last value. Values of other dicts, of lists and of
splices have no context. After an int value with a context (``bool`` is not an int here), that
memo becomes the int; other values leave it alone. Tags 0x40-0x7F and 0xAC without an int
context, or giving an int out of range, are errors. Containers nest at most ``max_depth`` deep
(default 64): a dict or list at depth ``max_depth`` (the value of an operation is depth 0) is an
error.

The encoder's choices (which are not part of the format): a path in the table is sent by slot;
otherwise it keeps the longest common prefix with the previous path, up to 7 items. A string in
the table is sent by slot; a string that is not, with 2 to 32 non-empty words separated by
single spaces, is sent as words; anything else as a literal. An int with a context is sent as a
delta when that is shorter than the literal.
"""

from __future__ import annotations

import math
import struct
import zlib
from typing import Any, Final

from statesync.delta import Delta
from statesync.errors import WireError
from statesync.ops import Remove, Set, Splice
from statesync.value import INT_MAX, INT_MIN, Path, Value

__all__ = ["WIRE_VERSION", "WireDecoder", "WireEncoder"]

WIRE_VERSION: Final = 1
"""The format version this module writes and reads (the first byte of every message)."""

_PATH_SLOTS: Final = 64
_STR_SLOTS: Final = 64
_SHAPE_SLOTS: Final = 8
_SHORT: Final = 24
"""Longest string (UTF-8 bytes) the string table holds, and that an interned path or shape
may contain: bounds the memory a table can hold."""
_MAX_PATH_ITEMS: Final = 8
_MAX_SHAPE_KEYS: Final = 16
_MAX_WORDS: Final = 32
_WBITS: Final = 11
_LEVEL: Final = 6
_MEM_LEVEL: Final = 2
_TAIL: Final = b"\x00\x00\xff\xff"
_VERSION_BYTE: Final = bytes((WIRE_VERSION,))
_WINDOW: Final = 1 << _WBITS
# The hot loops spell these constants as literals (cheaper than global loads), with the name in
# a comment.
_SET, _REMOVE, _SPLICE, _RESERVED_OP = 0x00, 0x50, 0xA0, 0xF0
_NEW1, _NEWM = 0x40, 0x48  # path codes within a family: keep k, one item / m items
_T_DELTA0, _T_SMALL, _T_SHAPE = 0x60, 0x80, 0xA0
_T_NONE, _T_FALSE, _T_TRUE, _T_INT, _T_DINT, _T_FLOAT = 0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD
_T_STR, _T_WORDS, _T_LIST, _T_DICT, _T_EMPTY_DICT = 0xAE, 0xAF, 0xB0, 0xB1, 0xB2
_F64 = struct.Struct(">d")
_I64_MIN: Final = INT_MIN  # -0x8000_0000_0000_0000
_U64_MAX: Final = INT_MAX  # 0xFFFF_FFFF_FFFF_FFFF
# Ints beyond +-0x3FFF_FFFF are not "compact": a comparison with one takes the slow generic path,
# so the hot loops test against that bound first.


def _shell(cls: type) -> type:
    """A plain class with the slots of the frozen dataclass ``cls``.

    The decoder builds an operation as a shell, fills its slots and then sets its ``__class__``
    to ``cls``: a genuine (frozen, equal, hashable) instance for about half the cost of the
    generated ``__init__``, which sets each field with ``object.__setattr__``.
    """
    names: tuple[str, ...] = vars(cls)["__slots__"]
    shell = type(f"_{cls.__name__}Shell", (), {"__slots__": names})
    fields = {name: () for name in names}
    obj = shell()
    for name, value in fields.items():
        setattr(obj, name, value)
    obj.__class__ = cls  # raises TypeError if the layouts differ
    if obj != cls(**fields):
        raise ImportError(f"cannot build {cls.__name__} from its slots")
    return shell


_SetShell, _RemoveShell = _shell(Set), _shell(Remove)
_SpliceShell, _DeltaShell = _shell(Splice), _shell(Delta)

_BIT_POSITIONS: Final = tuple(tuple(k for k in range(8) if m >> k & 1) for m in range(256))
"""The positions of the set bits of a byte: the int items of a path, from its mask."""


def _varint(out: bytearray, n: int) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _put_int(out: bytearray, v: int, ctx: int | None) -> None:
    """Write the int ``v`` with context ``ctx``: a delta when short, else small or zigzag."""
    if not _I64_MIN <= v <= _U64_MAX:
        raise _unencodable(f"int {v} is outside the 64-bit range")
    if ctx is not None:
        d = v - ctx
        if -32 <= d < 32:
            out.append(0x60 + d)  # _T_DELTA0
            return
        if not 0 <= v < 32:
            z = (v << 1) ^ (v >> 127)  # zigzag (v >> 127 is 0 or -1 for ints in range)
            dz = (d << 1) ^ (d >> 127)
            if dz < z and (dz < 0x80 <= z or dz < 0x4000 <= z or _shorter(dz, z)):
                out.append(0xAC)  # _T_DINT
                _varint(out, dz)
            else:
                out.append(0xAB)  # _T_INT
                _varint(out, z)
            return
    if 0 <= v < 32:
        out.append(0x80 + v)  # _T_SMALL
    else:
        out.append(0xAB)  # _T_INT
        _varint(out, (v << 1) ^ (v >> 127))


def _shorter(a: int, b: int) -> bool:
    """Whether the varint of ``a`` has fewer bytes than that of ``b``."""
    return (a.bit_length() + 6) // 7 < (b.bit_length() + 6) // 7


def _read_varint(buf: bytes, p: int) -> tuple[int, int]:
    """The varint at ``buf[p]`` and the position after it (IndexError when truncated)."""
    b = buf[p]
    p += 1
    if b < 0x80:
        return b, p
    n = b & 0x7F
    shift = 7
    while True:
        b = buf[p]
        p += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")
    if b == 0:
        raise WireError("varint with a redundant final byte")
    return n, p


def _read_count(buf: bytes, p: int) -> tuple[int, int]:
    """A varint count of items that take at least one byte each."""
    n, p = _read_varint(buf, p)
    if n > len(buf) - p:
        raise WireError(f"count {n} exceeds the rest of the message", code="wire/truncated")
    return n, p


def _in_range(n: int) -> int:
    if not _I64_MIN <= n <= _U64_MAX:
        raise WireError(f"int {n} is outside the 64-bit range")
    return n


def _check_splice(i: object, d: object) -> None:
    """Reject a splice whose index or delete count is not a native one."""
    if type(i) is not int or type(d) is not int or i < 0 or d < 0:
        raise _unencodable(f"not a native splice (index {i!r}, delete {d!r})")
    if i + d > _U64_MAX:
        raise _unencodable(f"splice index {i} + delete {d} is out of range")


def _int_items(path: Path) -> int | tuple[int, ...] | None:
    """Check the items of a path that holds an int; return where its ints are: the position of
    its only int, or a tuple of positions (shared), or None if it holds none."""
    mask = 0
    for k, x in enumerate(path):
        if type(x) is not str:
            if type(x) is not int:
                raise _bad_item(x)
            if not 0 <= x <= _U64_MAX:
                raise _unencodable(f"list index {x!r} is out of range")
            mask |= 1 << k
    if not mask or mask >= 256:  # not an int, or a path too long to enter the table
        return None
    positions = _BIT_POSITIONS[mask]
    return positions[0] if len(positions) == 1 else positions


def _check_ints(path: Path, positions: tuple[int, ...]) -> None:
    for k in positions:
        if type(path[k]) is not int:
            raise _bad_item(path[k])


def _empty_slot(slot: int) -> WireError:
    return WireError(f"reference to empty table slot {slot}")


def _no_context() -> WireError:
    return WireError("int delta where no int was remembered")


def _unencodable(message: str) -> WireError:
    return WireError(message, code="wire/unencodable")


def _bad_item(item: object) -> WireError:
    return _unencodable(f"path item {item!r} is neither a str nor an index")


def _bad_op(op: object) -> WireError:
    return _unencodable(
        f"{type(op).__name__} is not a native operation: resolve the delta against its base "
        "state first (statesync.delta.resolve)"
    )


class _Clock:
    """One table: a fixed number of slots with CLOCK replacement.

    ``refs`` holds the reference bits as tags: 0 is a clear bit; a set bit is 1, or the tag of
    the message that set it (2 to 255, see :class:`_End`), which lets a failed message be
    undone without saving the bits before every message. ``memo`` (paths and shapes) holds one
    memo a slot, ``aux`` (the encoder's paths) where the path in a slot has ints. The path
    tables are added to by the ``_new_path`` methods, which inline :meth:`add`.
    """

    __slots__ = ("aux", "hand", "index", "items", "memo", "refs", "size")

    def __init__(self, size: int, indexed: bool, memo: bool, aux: bool = False) -> None:
        self.size = size
        self.items: list[Any] = [None] * size
        self.memo: list[Any] | None = [None] * size if memo else None
        self.aux: list[Any] | None = [None] * size if aux else None
        self.refs = bytearray(size)
        self.hand = 0
        self.index: dict[Any, int] | None = {} if indexed else None

    def add(self, item: Any, memo: Any, undo: list[tuple[Any, ...]]) -> int:
        """Put ``item`` in the slot the hand chooses (its memo: ``memo``); log how to undo it;
        return the slot. (Not for a table with ``aux``.)"""
        refs, hand = self.refs, self.hand
        if refs[hand]:
            h, swept = _sweep(refs, hand)
        else:  # the slot under the hand is empty, or its bit is clear
            h, swept = hand, None
        items, memos = self.items, self.memo
        old = items[h]
        undo.append((self, h, old, None if memos is None else memos[h], None, hand, swept))
        index = self.index
        if index is not None:
            if old is not None:
                del index[old]
            index[item] = h
        items[h] = item
        if memos is not None:
            memos[h] = memo
        self.hand = h + 1 if h + 1 < self.size else 0
        return h

    def unadd(
        self,
        h: int,
        old: Any,
        old_memo: Any,
        old_aux: Any,
        hand: int,
        swept: bytes | bytearray | None,
    ) -> None:
        index = self.index
        if index is not None:
            del index[self.items[h]]
            if old is not None:
                index[old] = h
        self.items[h] = old
        if self.memo is not None:
            self.memo[h] = old_memo
        if self.aux is not None:
            self.aux[h] = old_aux
        self.hand = hand
        if swept is not None:
            if len(swept) == self.size:
                self.refs[:] = swept
            else:
                self.refs[hand : hand + len(swept)] = swept


def _sweep(refs: bytearray, hand: int) -> tuple[int, bytes | bytearray]:
    """Advance a full table's hand from ``hand`` (whose bit is set), clearing set bits, to the
    first slot whose bit is clear; return that slot and the bits it cleared (to undo)."""
    h = refs.find(0, hand)
    swept: bytes | bytearray
    if h >= 0:
        swept = refs[hand:h]
        refs[hand:h] = bytes(h - hand)
        return h, swept
    swept = bytes(refs)
    refs[hand:] = bytes(len(refs) - hand)
    h = refs.find(0, 0, hand)
    if h < 0:
        h = hand  # every bit was set: all cleared, back at the hand
    refs[:h] = bytes(h)
    return h, swept


_RETAG = bytes([0, *[1] * 255])
"""``bytes.translate`` table turning every set reference bit into the plain tag 1."""


class _End:
    """The mirrored state of one end of a connection: the three tables, the previous path and,
    while a message is in progress, its tag and what it takes to undo it.

    Each message gets a tag (2 to 255, then 2 again after every set bit is retagged 1): the
    reference bits it sets carry the tag, so undoing it clears exactly those. The undo log holds
    ``(slot, old)`` for every change of a path memo, ``(memo, i, old)`` for every change of a
    shape memo and ``(clock, slot, old, old_memo, old_aux, hand, swept)`` for every table add
    (``swept``: the bits its hand cleared). Nothing else is saved before a message.
    """

    _paths: _Clock
    _strs: _Clock
    _shapes: _Clock
    _prev: Path
    _undo: list[tuple[Any, ...]]
    _tag: int

    def _clear(self, indexed: bool) -> None:
        self._paths = _Clock(_PATH_SLOTS, indexed, memo=True, aux=indexed)
        self._strs = _Clock(_STR_SLOTS, indexed, memo=False)
        self._shapes = _Clock(_SHAPE_SLOTS, indexed, memo=True)
        self._prev = ()
        self._undo = []
        self._tag = 1

    def _retag(self) -> int:
        """Retire the tags of past messages (every set bit becomes 1); return the first tag."""
        for clock in (self._paths, self._strs, self._shapes):
            clock.refs[:] = clock.refs.translate(_RETAG)
        return 2

    def _rollback(self, prev: Path) -> None:
        """Undo the message in progress (``prev``: the previous path before it)."""
        undo = self._undo
        memo = self._paths.memo
        assert memo is not None
        for entry in reversed(undo):
            if len(entry) == 2:
                memo[entry[0]] = entry[1]
            elif len(entry) == 3:
                entry[0][entry[1]] = entry[2]
            else:
                entry[0].unadd(*entry[1:])
        undo.clear()
        tag = self._tag
        for clock in (self._paths, self._strs, self._shapes):
            refs = clock.refs
            refs[:] = bytes(0 if b == tag else b for b in refs)
        self._prev = prev


class WireEncoder(_End):
    """The sending end of a connection: turns native deltas into compact messages.

    Pair it with one :class:`WireDecoder` and deliver every message, in order::

        >>> from statesync.diffing import diff
        >>> enc, dec = WireEncoder(), WireDecoder()
        >>> msg = enc.encode(diff({"hp": 100}, {"hp": 97}))
        >>> dec.decode(msg).ops
        (Set(path=('hp',), value=97),)
        >>> enc.encode(diff({}, {})) == b"\\x01"   # an empty delta
        True

    :meth:`encode` raises :class:`~statesync.errors.WireError` (code ``wire/unencodable``) for
    an operation that is not native (resolve it first with :func:`statesync.delta.resolve`) or
    a value that is not a state value, and ``wire/too_large`` for a message over
    ``max_message_size``; the encoder is then unchanged. ``max_message_size`` and
    ``max_depth`` should match the decoder's.
    """

    def __init__(self, *, max_message_size: int = 1 << 20, max_depth: int = 64) -> None:
        self.max_message_size = max_message_size
        self.max_depth = max_depth
        self.reset()

    def reset(self) -> None:
        """Forget everything sent so far: the peer's decoder must be reset too."""
        self._clear(indexed=True)
        self._z = zlib.compressobj(_LEVEL, zlib.DEFLATED, -_WBITS, _MEM_LEVEL)

    def encode(self, delta: Delta) -> bytes:
        """The message for ``delta``; ``b"\\x01"`` for an empty one (state untouched)."""
        ops: tuple[Any, ...] = delta.ops
        if not ops:
            return _VERSION_BYTE
        tag = self._tag + 1  # this message's tag
        if tag > 255:
            tag = self._retag()
        self._tag = tag
        paths, strs = self._paths, self._strs
        path_slot = paths.index.get  # type: ignore[union-attr]
        path_items, path_refs, path_memo, path_ints = paths.items, paths.refs, paths.memo, paths.aux
        str_slot = strs.index.get  # type: ignore[union-attr]
        str_refs = strs.refs
        undo_append = self._undo.append
        out = bytearray()
        append = out.append
        prev = prev0 = self._prev
        try:
            # The hot loop: paths in the table, ints and strings are written inline; the rest
            # goes through _new_path and _value. A path that is not a tuple fails the lookup
            # (TypeError) or _new_path.
            for op in ops:
                t = type(op)
                if t is Set:
                    path = op.path
                    slot = path_slot(path)
                    if slot is None:
                        self._prev = prev
                        slot = self._new_path(out, path, 0x00)  # _SET
                        prev = self._prev
                    else:
                        ints = path_ints[slot]  # type: ignore[index]
                        if ints is not None:  # only int items may differ in type (True, 1.0 == 1)
                            if type(ints) is int:
                                if type(path[ints]) is not int:
                                    raise _bad_item(path[ints])
                            else:
                                _check_ints(path, ints)
                        if not path_refs[slot]:
                            path_refs[slot] = tag
                        append(slot)  # _SET + slot
                        prev = path_items[slot]
                    v = op.value
                    tv = type(v)
                    if tv is int:
                        if (v > 0x3FFF_FFFF or v < -0x3FFF_FFFF) and not (
                            _I64_MIN <= v <= _U64_MAX
                        ):  # compact ints compare fast, big constants do not
                            raise _unencodable(f"int {v} is outside the 64-bit range")
                        if slot >= 0:
                            ctx = path_memo[slot]  # type: ignore[index]
                            path_memo[slot] = v  # type: ignore[index]
                            undo_append((slot, ctx))
                            if ctx is not None:
                                d = v - ctx
                                if -32 <= d < 32:
                                    append(0x60 + d)  # _T_DELTA0
                                    continue
                                if not 0 <= v < 32:
                                    z = v + v if v >= 0 else -1 - v - v  # zigzag
                                    dz = d + d if d >= 0 else -1 - d - d
                                    if dz < z and (
                                        dz < 0x80 <= z or dz < 0x4000 <= z or _shorter(dz, z)
                                    ):
                                        append(0xAC)  # _T_DINT
                                        z = dz
                                    else:
                                        append(0xAB)  # _T_INT
                                    if z < 0x80:
                                        append(z)
                                    elif z < 0x4000:
                                        append((z & 0x7F) | 0x80)
                                        append(z >> 7)
                                    else:
                                        _varint(out, z)
                                    continue
                        if 0 <= v < 32:
                            append(0x80 + v)  # _T_SMALL
                        else:
                            append(0xAB)  # _T_INT
                            z = v + v if v >= 0 else -1 - v - v  # zigzag
                            if z < 0x80:
                                append(z)
                            elif z < 0x4000:
                                append((z & 0x7F) | 0x80)
                                append(z >> 7)
                            else:
                                _varint(out, z)
                    elif tv is str:
                        s = str_slot(v)
                        if s is not None:
                            if not str_refs[s]:
                                str_refs[s] = tag
                            append(s)
                        elif " " in v and len(words := v.split(" ")) <= _MAX_WORDS and all(words):
                            append(0xAF)  # _T_WORDS
                            append(len(words))
                            for w in words:
                                s = str_slot(w)
                                if s is None:
                                    self._literal(out, w, 0)
                                else:
                                    if not str_refs[s]:
                                        str_refs[s] = tag
                                    append(s + 1)
                        else:
                            self._literal(out, v, 0xAE)  # _T_STR
                    elif tv is dict and self.max_depth > 0:
                        self._dict(out, v, 0)  # what _value does for a dict at depth 0
                    else:
                        self._value(out, v, None, 0)
                elif t is Splice:
                    i, d, ins = op.index, op.delete, op.insert
                    if (
                        type(i) is not int
                        or type(d) is not int
                        or not (0 <= i <= 0x3FFF_FFFF and 0 <= d <= 0x3FFF_FFFF)
                    ):
                        _check_splice(i, d)
                    if type(ins) is not tuple and type(ins) is not list:
                        raise _unencodable("Splice.insert must be a tuple")
                    path = op.path
                    slot = path_slot(path)
                    if slot is None:
                        self._prev = prev
                        self._new_path(out, path, 0xA0)  # _SPLICE
                        prev = self._prev
                    else:
                        ints = path_ints[slot]  # type: ignore[index]
                        if ints is not None:
                            if type(ints) is int:
                                if type(path[ints]) is not int:
                                    raise _bad_item(path[ints])
                            else:
                                _check_ints(path, ints)
                        if not path_refs[slot]:
                            path_refs[slot] = tag
                        append(0xA0 + slot)  # _SPLICE + slot
                        prev = path_items[slot]
                    if i < 0x80:
                        append(i)
                    else:
                        _varint(out, i)
                    n = len(ins)
                    if n < 7:
                        dc = d << 3 | n
                        if dc < 0x80:
                            append(dc)
                        else:
                            _varint(out, dc)
                    else:
                        _varint(out, d << 3 | 7)
                        _varint(out, n - 7)
                    for v in ins:
                        tv = type(v)
                        if tv is str:
                            s = str_slot(v)
                            if s is not None:
                                if not str_refs[s]:
                                    str_refs[s] = tag
                                append(s)
                            elif (
                                " " in v and len(words := v.split(" ")) <= _MAX_WORDS and all(words)
                            ):
                                append(0xAF)  # _T_WORDS
                                append(len(words))
                                for w in words:
                                    s = str_slot(w)
                                    if s is None:
                                        self._literal(out, w, 0)
                                    else:
                                        if not str_refs[s]:
                                            str_refs[s] = tag
                                        append(s + 1)
                            else:
                                self._literal(out, v, 0xAE)  # _T_STR
                        elif tv is int and 0 <= v < 32:
                            append(0x80 + v)  # _T_SMALL
                        else:
                            self._value(out, v, None, 0)
                elif t is Remove:
                    path = op.path
                    slot = path_slot(path)
                    if slot is None:
                        self._prev = prev
                        self._new_path(out, path, 0x50)  # _REMOVE
                        prev = self._prev
                    else:
                        ints = path_ints[slot]  # type: ignore[index]
                        if ints is not None:
                            if type(ints) is int:
                                if type(path[ints]) is not int:
                                    raise _bad_item(path[ints])
                            else:
                                _check_ints(path, ints)
                        if not path_refs[slot]:
                            path_refs[slot] = tag
                        append(0x50 + slot)  # _REMOVE + slot
                        prev = path_items[slot]
                else:
                    raise _bad_op(op)
            self._prev = prev
            if len(out) + 1024 <= self.max_message_size:
                z = self._z
                message = _VERSION_BYTE + (z.compress(out) + z.flush(zlib.Z_SYNC_FLUSH))[:-4]
            else:
                message = self._compress_near_limit(out)
        except BaseException as e:
            self._rollback(prev0)
            if isinstance(e, RecursionError):
                raise _unencodable("value nested too deeply for this interpreter") from None
            if isinstance(e, TypeError):  # a path that is not hashable
                raise _unencodable(f"cannot encode this delta: {e}") from None
            raise
        self._undo.clear()
        return message

    def _compress_near_limit(self, payload: bytearray) -> bytes:
        if len(payload) > self.max_message_size:
            raise WireError(f"delta encodes to {len(payload)} bytes", code="wire/too_large")
        z = self._z
        backup = z.copy()
        body = z.compress(payload) + z.flush(zlib.Z_SYNC_FLUSH)
        if len(body) - 3 > self.max_message_size:
            self._z = backup
            raise WireError("compressed message over the size limit", code="wire/too_large")
        return _VERSION_BYTE + body[:-4]

    def _new_path(self, out: bytearray, path: Path, family: int) -> int:
        """Write a path that is not in the table; return its new slot, or -1."""
        if type(path) is not tuple:
            raise _unencodable(f"path {path!r} is not a tuple")
        ints = None
        for x in path:
            if type(x) is not str:
                ints = _int_items(path)
                break
        n = len(path)
        if n > self.max_depth:
            raise _unencodable(f"path of {n} items is deeper than max_depth")
        prev = self._prev
        limit = len(prev)
        if limit > n:
            limit = n
        if limit > 7:
            limit = 7
        keep = 0
        while keep < limit and prev[keep] == path[keep]:  # a str never equals an int
            keep += 1
        append = out.append
        if n - keep == 1:
            append(family + 0x40 + keep)  # _NEW1
        else:
            append(family + 0x48 + keep)  # _NEWM
            _varint(out, n - keep)
        strs = self._strs
        str_slot = strs.index.get  # type: ignore[union-attr]
        str_items, str_refs = strs.items, strs.refs
        items = list(prev[:keep])
        short = True
        for k in range(keep, n):
            x = path[k]
            if type(x) is str:
                s = str_slot(x)
                if s is None:
                    if not self._literal(out, x, 1):
                        short = False
                else:
                    if not str_refs[s]:
                        str_refs[s] = self._tag
                    if s < 62:
                        append(2 * s + 3)  # odd: string item s + 1
                    else:
                        _varint(out, 2 * s + 3)
                    x = str_items[s]  # share the table's string
            elif x < 0x40:  # type: ignore[operator]
                append(x << 1)  # type: ignore[operator]
            else:
                _varint(out, x << 1)  # type: ignore[operator]
            items.append(x)
        if not short or n > _MAX_PATH_ITEMS:
            self._prev = ()
            return -1
        self._prev = path = tuple(items)  # shares the table's strings
        # _Clock.add, inline
        paths = self._paths
        refs, hand = paths.refs, paths.hand
        if refs[hand]:
            h, swept = _sweep(refs, hand)
        else:
            h, swept = hand, None
        path_items, memos, auxes, index = paths.items, paths.memo, paths.aux, paths.index
        old = path_items[h]
        self._undo.append((paths, h, old, memos[h], auxes[h], hand, swept))  # type: ignore[index]
        if old is not None:
            del index[old]  # type: ignore[union-attr]
        index[path] = h  # type: ignore[index]
        path_items[h] = path
        memos[h] = None  # type: ignore[index]
        auxes[h] = ints  # type: ignore[index]
        paths.hand = h + 1 if h < _PATH_SLOTS - 1 else 0
        return h

    def _literal(self, out: bytearray, s: str, lead: int) -> bool:
        """Write ``lead``, then ``s`` as varint length and UTF-8, added to the string table
        when short; return whether it is short."""
        try:
            b = s.encode("utf-8")
        except UnicodeEncodeError:
            raise _unencodable(f"string {s[:20]!r} holds a lone surrogate") from None
        out.append(lead)
        n = len(b)
        if n < 0x80:
            out.append(n)
        else:
            _varint(out, n)
        out += b
        if n <= _SHORT:
            self._strs.add(s, None, self._undo)
            return True
        return False

    def _string_item(self, out: bytearray, s: str) -> tuple[str, bool]:
        """Write a string item (value context); return the table's equal string and whether
        it is short."""
        strs = self._strs
        slot = strs.index.get(s)  # type: ignore[union-attr]
        if slot is not None:
            if not strs.refs[slot]:
                strs.refs[slot] = self._tag
            out.append(slot + 1)
            return strs.items[slot], True
        return s, self._literal(out, s, 0)

    def _string(self, out: bytearray, s: str) -> None:
        """Write a string value that is not in the string table."""
        if " " in s:
            words = s.split(" ")
            if len(words) <= _MAX_WORDS and all(words):
                out.append(0xAF)  # _T_WORDS
                out.append(len(words))  # a one-byte varint
                for w in words:
                    self._string_item(out, w)
                return
        self._literal(out, s, 0xAE)  # _T_STR

    def _value(self, out: bytearray, v: Value, ctx: int | None, depth: int) -> None:
        t = type(v)
        if t is int:
            _put_int(out, v, ctx)  # type: ignore[arg-type]
        elif t is str:
            strs = self._strs
            slot = strs.index.get(v)  # type: ignore[union-attr]
            if slot is not None:
                if not strs.refs[slot]:
                    strs.refs[slot] = self._tag
                out.append(slot)
            else:
                self._string(out, v)  # type: ignore[arg-type]
        elif v is None:
            out.append(0xA8)  # _T_NONE
        elif t is bool:
            out.append(0xAA if v else 0xA9)  # _T_TRUE, _T_FALSE
        elif t is float:
            if not math.isfinite(v):  # type: ignore[arg-type]
                raise _unencodable(f"float {v!r} is not finite")
            out.append(0xAD)  # _T_FLOAT
            out += _F64.pack(v)
        elif t is list or t is dict:
            if depth >= self.max_depth:
                raise _unencodable("value nested deeper than max_depth")
            if t is list:
                out.append(0xB0)  # _T_LIST
                _varint(out, len(v))  # type: ignore[arg-type]
                for x in v:  # type: ignore[union-attr]
                    self._value(out, x, None, depth + 1)
            else:
                self._dict(out, v, depth)  # type: ignore[arg-type]
        else:
            raise _unencodable(f"{t.__name__} is not a state value")

    def _dict(self, out: bytearray, v: dict[str, Value], depth: int) -> None:
        if not v:
            out.append(0xB2)  # _T_EMPTY_DICT
            return
        shapes = self._shapes
        keys = tuple(v)
        slot = shapes.index.get(keys)  # type: ignore[union-attr]
        memo: list[int | None] | None = None
        if slot is not None:
            if not shapes.refs[slot]:
                shapes.refs[slot] = self._tag
            memo = shapes.memo[slot]  # type: ignore[index]
            out.append(0xA0 + slot)  # _T_SHAPE
        else:
            out.append(0xB1)  # _T_DICT
            _varint(out, len(keys))
            shared = []
            short = True
            for k in keys:
                if type(k) is not str:
                    raise _unencodable(f"dict key {k!r} is not a str")
                k, is_short = self._string_item(out, k)
                shared.append(k)
                short = short and is_short
            if short and len(keys) <= _MAX_SHAPE_KEYS:
                memo = [None] * len(keys)
                shapes.add(tuple(shared), memo, self._undo)
        depth += 1
        if memo is None:
            for x in v.values():
                self._value(out, x, None, depth)
            return
        undo = self._undo
        strs = self._strs
        str_slot = strs.index.get  # type: ignore[union-attr]
        for i, x in enumerate(v.values()):
            if type(x) is str:  # _value, inline: a string takes no context
                s = str_slot(x)
                if s is None:
                    self._string(out, x)
                else:
                    if not strs.refs[s]:
                        strs.refs[s] = self._tag
                    out.append(s)
                continue
            old = memo[i]
            self._value(out, x, old, depth)
            if type(x) is int:
                undo.append((memo, i, old))
                memo[i] = x


class WireDecoder(_End):
    """The receiving end of a connection: turns messages back into deltas.

    Every input gives a :class:`~statesync.delta.Delta` of native operations or raises
    :class:`~statesync.errors.WireError` (codes ``wire/version``, ``wire/too_large``,
    ``wire/truncated``, ``wire/malformed``), never another exception, in time and memory
    linear in the message. After an error the decoder is unchanged, but it is out of step with
    its encoder: reset both ends before the next message (see the module docstring)::

        >>> enc, dec = WireEncoder(), WireDecoder()
        >>> dec.decode(b"\\x07")
        Traceback (most recent call last):
        ...
        statesync.errors.WireError: unknown wire format version 7
    """

    def __init__(self, *, max_message_size: int = 1 << 20, max_depth: int = 64) -> None:
        self.max_message_size = max_message_size
        self.max_depth = max_depth
        self.reset()

    def reset(self) -> None:
        """Forget everything received so far: the peer's encoder must be reset too."""
        self._clear(indexed=False)
        self._z = zlib.decompressobj(-_WBITS)
        self._history = bytearray()

    def _restore_inflater(self) -> None:
        """Put back the inflater of before the current message."""
        if self._history:
            self._z = zlib.decompressobj(-_WBITS, zdict=bytes(self._history))
        else:
            self._z = zlib.decompressobj(-_WBITS)

    def decode(self, data: bytes) -> Delta:
        """The delta in ``data`` (one whole message), or :class:`WireError`."""
        size = len(data)
        if not 1 < size <= self.max_message_size or data[0] != WIRE_VERSION:
            if size > self.max_message_size:
                raise WireError(f"message of {size} bytes is over the limit", code="wire/too_large")
            if not size:
                raise WireError("empty message: no version byte", code="wire/truncated")
            if data[0] != WIRE_VERSION:
                raise WireError(f"unknown wire format version {data[0]}", code="wire/version")
            return Delta()
        z = self._z
        limit = self.max_message_size
        try:
            buf = z.decompress(bytes(data[1:]) + _TAIL, limit + 1)
        except zlib.error as e:
            self._restore_inflater()
            raise WireError(f"bad DEFLATE data: {e}") from None
        end = len(buf)
        if not 0 < end <= limit or z.eof or z.unused_data or z.unconsumed_tail:
            self._restore_inflater()
            if end > limit:
                raise WireError("message inflates past the size limit", code="wire/too_large")
            if not end:
                raise WireError("message holds no operation")
            raise WireError("DEFLATE stream ended inside a message")
        tag = self._tag + 1  # this message's tag
        if tag > 255:
            tag = self._retag()
        self._tag = tag
        paths, strs = self._paths, self._strs
        path_items, path_refs, path_memo = paths.items, paths.refs, paths.memo
        str_items, str_refs = strs.items, strs.refs
        undo_append = self._undo.append
        out: list[Any] = []
        append = out.append
        p = 0
        prev = prev0 = self._prev
        try:
            # The hot loop: reading past the end raises IndexError (wire/truncated); paths in
            # the table and common values are read inline, the rest by _new_path and _value.
            while p < end:
                h = buf[p]
                p += 1
                if h < 0x50:  # Set (_SET to _REMOVE)
                    if h < 0x40:  # _NEW1
                        path = path_items[h]
                        if path is None:
                            raise _empty_slot(h)
                        if not path_refs[h]:
                            path_refs[h] = tag
                        prev = path
                    else:
                        self._prev = prev
                        h, path, p = self._new_path(buf, p, h)  # h: the slot, or -1
                        prev = self._prev
                    x = buf[p]  # the value's tag
                    p += 1
                    if x < 0x40:
                        v = str_items[x]
                        if v is None:
                            raise _empty_slot(x)
                        if not str_refs[x]:
                            str_refs[x] = tag
                    elif x < 0x80:
                        if h < 0 or (ctx := path_memo[h]) is None:  # type: ignore[index]
                            raise _no_context()
                        v = ctx + x - 0x60  # _T_DELTA0
                        if v > 0x3FFF_FFFF or v < -0x3FFF_FFFF:
                            _in_range(v)
                        path_memo[h] = v  # type: ignore[index]
                        undo_append((h, ctx))
                    elif x < 0xA0:
                        v = x - 0x80  # _T_SMALL
                        if h >= 0:
                            undo_append((h, path_memo[h]))  # type: ignore[index]
                            path_memo[h] = v  # type: ignore[index]
                    elif x == 0xAB or x == 0xAC:  # _T_INT, _T_DINT
                        ctx = 0
                        if x == 0xAC and (h < 0 or (ctx := path_memo[h]) is None):  # type: ignore[index]
                            raise _no_context()
                        x = buf[p]
                        if x < 0x80:
                            p += 1
                        elif 0 < (y := buf[p + 1]) < 0x80:
                            x = (x & 0x7F) | (y << 7)
                            p += 2
                        else:
                            x, p = _read_varint(buf, p)
                        v = ctx + ((x >> 1) ^ -(x & 1))  # unzigzag
                        if v > 0x3FFF_FFFF or v < -0x3FFF_FFFF:
                            _in_range(v)
                        if h >= 0:
                            undo_append((h, path_memo[h]))  # type: ignore[index]
                            path_memo[h] = v  # type: ignore[index]
                    elif x == 0xAF:  # _T_WORDS
                        n = buf[p]
                        if n < 0x80:
                            p += 1
                        else:
                            n, p = _read_varint(buf, p)
                        if n > end - p:
                            raise WireError("word count past the end", code="wire/truncated")
                        words = []
                        for _ in range(n):
                            x = buf[p] - 1  # a string item: slot x, or a literal (x < 0)
                            if 0 <= x < 0x40 and (s := str_items[x]) is not None:
                                if not str_refs[x]:
                                    str_refs[x] = tag
                                p += 1
                            else:
                                s, p, _ = self._string_item(buf, p)
                            words.append(s)
                        v = " ".join(words)
                    elif h >= 0:
                        ctx = path_memo[h]  # type: ignore[index]
                        v, p = self._value(buf, p - 1, ctx, 0)
                        if type(v) is int:
                            path_memo[h] = v  # type: ignore[index]
                            undo_append((h, ctx))
                    else:
                        v, p = self._value(buf, p - 1, None, 0)
                    o = _SetShell()
                    o.path = path
                    o.value = v
                    o.__class__ = Set
                    append(o)
                elif h >= 0xA0:  # Splice
                    if h >= 0xF0:  # _RESERVED_OP
                        raise WireError(f"unknown operation header 0x{h:02x}")
                    h -= 0xA0  # _SPLICE
                    if h < 0x40:
                        path = path_items[h]
                        if path is None:
                            raise _empty_slot(h)
                        if not path_refs[h]:
                            path_refs[h] = tag
                        prev = path
                    else:
                        self._prev = prev
                        _, path, p = self._new_path(buf, p, h)
                        prev = self._prev
                    i = buf[p]
                    if i < 0x80:
                        p += 1
                    else:
                        i, p = _read_varint(buf, p)
                    x = buf[p]
                    if x < 0x80:
                        p += 1
                    else:
                        x, p = _read_varint(buf, p)
                    d = x >> 3
                    n = x & 7
                    if n == 7:
                        x, p = _read_varint(buf, p)
                        n += x
                    if (i > 0x3FFF_FFFF or d > 0x3FFF_FFFF) and i + d > _U64_MAX:
                        raise WireError("splice out of range")
                    if n > end - p:
                        raise WireError("splice count past the end", code="wire/truncated")
                    ins: list[Value] = []
                    for _ in range(n):
                        x = buf[p]
                        if x < 0x40 and (v := str_items[x]) is not None:
                            if not str_refs[x]:
                                str_refs[x] = tag
                            p += 1
                        elif 0x80 <= x < 0xA0:
                            v = x - 0x80  # _T_SMALL
                            p += 1
                        elif x == 0xAF:  # _T_WORDS, as for Set
                            nw = buf[p + 1]
                            if nw < 0x80:
                                p += 2
                            else:
                                nw, p = _read_varint(buf, p + 1)
                            if nw > end - p:
                                raise WireError("word count past the end", code="wire/truncated")
                            words = []
                            for _ in range(nw):
                                x = buf[p] - 1
                                if 0 <= x < 0x40 and (s := str_items[x]) is not None:
                                    if not str_refs[x]:
                                        str_refs[x] = tag
                                    p += 1
                                else:
                                    s, p, _ = self._string_item(buf, p)
                                words.append(s)
                            v = " ".join(words)
                        else:
                            v, p = self._value(buf, p, None, 0)
                        ins.append(v)
                    o = _SpliceShell()
                    o.path = path
                    o.index = i
                    o.delete = d
                    o.insert = tuple(ins)
                    o.__class__ = Splice
                    append(o)
                else:  # Remove
                    h -= 0x50  # _REMOVE
                    if h < 0x40:
                        path = path_items[h]
                        if path is None:
                            raise _empty_slot(h)
                        if not path_refs[h]:
                            path_refs[h] = tag
                        prev = path
                    else:
                        self._prev = prev
                        _, path, p = self._new_path(buf, p, h)
                        prev = self._prev
                    o = _RemoveShell()
                    o.path = path
                    o.__class__ = Remove
                    append(o)
        except BaseException as e:
            self._rollback(prev0)
            self._restore_inflater()
            if isinstance(e, IndexError):
                raise WireError("message truncated", code="wire/truncated") from None
            if isinstance(e, RecursionError):
                raise WireError("value nested too deeply for this interpreter") from None
            raise
        self._prev = prev
        self._undo.clear()
        history = self._history
        history += buf
        del history[:-_WINDOW]
        delta: Any = _DeltaShell()
        delta.ops = tuple(out)
        delta.__class__ = Delta
        return delta  # type: ignore[no-any-return]

    def _new_path(self, buf: bytes, p: int, r: int) -> tuple[int, Path, int]:
        """Read a path given in items; return its slot (or -1), the path and the position."""
        if r < 0x48:  # _NEWM
            keep, m = r - 0x40, 1
        else:
            keep = r - 0x48
            m, p = _read_count(buf, p)
        prev = self._prev
        if keep > len(prev) or keep + m > self.max_depth:
            raise WireError("path keeps more than the previous path, or is too deep")
        strs = self._strs
        str_items, str_refs, tag = strs.items, strs.refs, self._tag
        items: list[str | int] = list(prev[:keep])
        short = True
        for _ in range(m):
            u = buf[p]
            if u < 0x80:
                p += 1
            else:
                u, p = _read_varint(buf, p)
            if not u & 1:
                if u > 0x3FFF_FFFF and u >> 1 > _U64_MAX:
                    raise WireError("list index out of range")
                items.append(u >> 1)
                continue
            x = (u >> 1) - 1  # a string slot, or -1 for a literal
            if 0 <= x < 0x40:
                s = str_items[x]
                if s is None:
                    raise _empty_slot(x)
                if not str_refs[x]:
                    str_refs[x] = tag
            elif x < 0:
                s, p, is_short = self._literal(buf, p)
                short = short and is_short
            else:
                raise _empty_slot(x)
            items.append(s)
        path = tuple(items)
        if not short or len(path) > _MAX_PATH_ITEMS:
            self._prev = ()
            return -1, path, p
        self._prev = path
        # _Clock.add, inline
        paths = self._paths
        refs, hand = paths.refs, paths.hand
        if refs[hand]:
            h, swept = _sweep(refs, hand)
        else:
            h, swept = hand, None
        path_items, memos = paths.items, paths.memo
        self._undo.append((paths, h, path_items[h], memos[h], None, hand, swept))  # type: ignore[index]
        path_items[h] = path
        memos[h] = None  # type: ignore[index]
        paths.hand = h + 1 if h < _PATH_SLOTS - 1 else 0
        return h, path, p

    def _literal(self, buf: bytes, p: int) -> tuple[str, int, bool]:
        """Read a literal string (length, UTF-8), added to the table when short; return it,
        the position after it and whether it is short."""
        n = buf[p]
        if n < 0x80:
            p += 1
        else:
            n, p = _read_varint(buf, p)
        q = p + n
        if q > len(buf):
            raise WireError("message truncated inside a string", code="wire/truncated")
        try:
            s = buf[p:q].decode("utf-8")
        except UnicodeDecodeError:
            raise WireError("string is not valid UTF-8") from None
        if n <= _SHORT:
            self._strs.add(s, None, self._undo)
            return s, q, True
        return s, q, False

    def _string_item(self, buf: bytes, p: int) -> tuple[str, int, bool]:
        """Read a string item (value context): a table slot or a literal."""
        x = buf[p]
        if x < 0x80:
            p += 1
        else:
            x, p = _read_varint(buf, p)
        if not x:
            return self._literal(buf, p)
        strs = self._strs
        if x > _STR_SLOTS or (s := strs.items[x - 1]) is None:
            raise _empty_slot(x - 1)
        if not strs.refs[x - 1]:
            strs.refs[x - 1] = self._tag
        return s, p, True

    def _value(self, buf: bytes, p: int, ctx: int | None, depth: int) -> tuple[Value, int]:
        """Read the value at ``p`` (context ``ctx``); return it and the position after it."""
        tag = buf[p]
        p += 1
        if tag < 0x40:
            strs = self._strs
            s = strs.items[tag]
            if s is None:
                raise _empty_slot(tag)
            if not strs.refs[tag]:
                strs.refs[tag] = self._tag
            return s, p
        if tag < 0x80:
            if ctx is None:
                raise _no_context()
            return _in_range(ctx + tag - 0x60), p  # _T_DELTA0
        if tag < 0xA0:
            return tag - 0x80, p  # _T_SMALL
        if tag < 0xA8:
            if depth >= self.max_depth:
                raise WireError("value nested deeper than max_depth")
            slot = tag - 0xA0  # _T_SHAPE
            shapes = self._shapes
            keys = shapes.items[slot]
            if keys is None:
                raise _empty_slot(slot)
            if not shapes.refs[slot]:
                shapes.refs[slot] = self._tag
            return self._fields(buf, p, keys, shapes.memo[slot], depth)  # type: ignore[index]
        if tag == 0xA8:  # _T_NONE
            return None, p
        if tag == 0xA9 or tag == 0xAA:  # _T_FALSE, _T_TRUE
            return tag == 0xAA, p
        if tag == 0xAB:  # _T_INT
            z, p = _read_varint(buf, p)
            return _in_range((z >> 1) ^ -(z & 1)), p
        if tag == 0xAC:  # _T_DINT
            if ctx is None:
                raise _no_context()
            z, p = _read_varint(buf, p)
            return _in_range(ctx + ((z >> 1) ^ -(z & 1))), p
        if tag == 0xAD:  # _T_FLOAT
            if p + 8 > len(buf):
                raise WireError("message truncated inside a float", code="wire/truncated")
            (f,) = _F64.unpack_from(buf, p)
            if not math.isfinite(f):
                raise WireError("float is not finite")
            return f, p + 8
        if tag == 0xAE:  # _T_STR
            s, p, _ = self._literal(buf, p)
            return s, p
        if tag == 0xAF:  # _T_WORDS
            n, p = _read_count(buf, p)
            words = []
            for _ in range(n):
                s, p, _ = self._string_item(buf, p)
                words.append(s)
            return " ".join(words), p
        if tag > 0xB2:  # _T_EMPTY_DICT
            raise WireError(f"unknown value tag 0x{tag:02x}")
        if depth >= self.max_depth:
            raise WireError("value nested deeper than max_depth")
        if tag == 0xB0:  # _T_LIST
            n, p = _read_count(buf, p)
            items: list[Value] = []
            for _ in range(n):
                v, p = self._value(buf, p, None, depth + 1)
                items.append(v)
            return items, p
        if tag == 0xB1:  # _T_DICT
            return self._new_dict(buf, p, depth)
        return {}, p

    def _new_dict(self, buf: bytes, p: int, depth: int) -> tuple[Value, int]:
        n, p = _read_count(buf, p)
        if not n:
            raise WireError("a dict with a shape has at least one key")
        keys: list[str] = []
        short = True
        for _ in range(n):
            k, p, is_short = self._string_item(buf, p)
            keys.append(k)
            short = short and is_short
        if len(set(keys)) != n:
            raise WireError("duplicate dict key")
        memo: list[int | None] | None = None
        if short and n <= _MAX_SHAPE_KEYS:
            memo = [None] * n
            self._shapes.add(tuple(keys), memo, self._undo)
        return self._fields(buf, p, keys, memo, depth)

    def _fields(
        self,
        buf: bytes,
        p: int,
        keys: tuple[str, ...] | list[str],
        memo: list[int | None] | None,
        depth: int,
    ) -> tuple[Value, int]:
        out: dict[str, Value] = {}
        depth += 1
        if memo is None:
            for k in keys:
                out[k], p = self._value(buf, p, None, depth)
            return out, p
        undo = self._undo
        for i, k in enumerate(keys):
            old = memo[i]
            v, p = self._value(buf, p, old, depth)
            if type(v) is int:
                undo.append((memo, i, old))
                memo[i] = v
            out[k] = v
        return out, p
