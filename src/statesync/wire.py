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

Memory per connection: the zlib buffers (deflate 15 KB: ``2**(wbits+2) + 2**(memLevel+9)``
plus its state; inflate 9 KB: ``2**wbits`` plus about 7 KB) and the three tables below, whose
entries are size-limited. Measured with :mod:`tracemalloc` on the standard workloads, encoder
and decoder together: at most about 57 KB (``bench/wire_bytes.py`` prints it). Traffic built to
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
  ``zlib.compressobj(6, DEFLATED, -11, 1)`` (deterministic for a given zlib); any DEFLATE
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
from statesync.ops import NativeOp, Remove, Set, Splice
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
_MEM_LEVEL: Final = 1
_TAIL: Final = b"\x00\x00\xff\xff"

_SET, _REMOVE, _SPLICE, _RESERVED_OP = 0x00, 0x50, 0xA0, 0xF0
_NEW1, _NEWM = 0x40, 0x48  # path codes within a family: keep k, one item / m items
_T_DELTA0, _T_SMALL, _T_SHAPE = 0x60, 0x80, 0xA0
_T_NONE, _T_FALSE, _T_TRUE, _T_INT, _T_DINT, _T_FLOAT = 0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD
_T_STR, _T_WORDS, _T_LIST, _T_DICT, _T_EMPTY_DICT = 0xAE, 0xAF, 0xB0, 0xB1, 0xB2
_F64 = struct.Struct(">d")


def _varint(out: bytearray, n: int) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _zigzag(n: int) -> int:
    return n << 1 if n >= 0 else ((-n) << 1) - 1


def _vlen(n: int) -> int:
    return (n.bit_length() + 6) // 7 or 1


class _Clock:
    """One table: a fixed number of slots with CLOCK replacement and one memo per slot."""

    __slots__ = ("hand", "index", "items", "memo", "refs", "size")

    def __init__(self, size: int, indexed: bool) -> None:
        self.size = size
        self.items: list[Any] = [None] * size
        self.memo: list[Any] = [None] * size
        self.refs = bytearray(size)
        self.hand = 0
        self.index: dict[Any, int] | None = {} if indexed else None

    def add(self, item: Any, memo: Any, undo: list[tuple[Any, ...]]) -> int:
        items, refs, h, n = self.items, self.refs, self.hand, self.size
        while refs[h] and items[h] is not None:
            refs[h] = 0
            h = (h + 1) % n
        old = items[h]
        undo.append((self, h, old, self.memo[h]))
        if self.index is not None:
            if old is not None:
                del self.index[old]
            self.index[item] = h
        items[h] = item
        self.memo[h] = memo
        self.hand = (h + 1) % n
        return h

    def unadd(self, h: int, old: Any, old_memo: Any) -> None:
        if self.index is not None:
            del self.index[self.items[h]]
            if old is not None:
                self.index[old] = h
        self.items[h] = old
        self.memo[h] = old_memo

    def use(self, slot: int) -> Any:
        if slot >= self.size or self.items[slot] is None:
            raise WireError(f"reference to empty table slot {slot}")
        self.refs[slot] = 1
        return self.items[slot]


class _Tables:
    """The mirrored state of one end of a connection, with an undo log for one message."""

    __slots__ = ("_saved", "paths", "prev", "shapes", "strs", "undo")

    def __init__(self, indexed: bool) -> None:
        self.paths = _Clock(_PATH_SLOTS, indexed)
        self.strs = _Clock(_STR_SLOTS, indexed)
        self.shapes = _Clock(_SHAPE_SLOTS, indexed)
        self.prev: Path = ()
        self.undo: list[tuple[Any, ...]] = []
        self._saved: tuple[Any, ...] = ()

    def begin(self) -> None:
        self.undo.clear()
        c = (self.paths, self.strs, self.shapes)
        self._saved = (self.prev, *(x.hand for x in c), *(bytes(x.refs) for x in c))

    def commit(self) -> None:
        self.undo.clear()
        self._saved = ()

    def set_memo(self, memo: list[int | None], i: int, v: int) -> None:
        self.undo.append((memo, i, memo[i]))
        memo[i] = v

    def rollback(self) -> None:
        for entry in reversed(self.undo):
            if len(entry) == 3:
                entry[0][entry[1]] = entry[2]
            else:
                entry[0].unadd(*entry[1:])
        self.undo.clear()
        c = (self.paths, self.strs, self.shapes)
        self.prev = self._saved[0]
        for x, hand, refs in zip(c, self._saved[1:4], self._saved[4:], strict=True):
            x.hand = hand
            x.refs[:] = refs


def _unencodable(message: str) -> WireError:
    return WireError(message, code="wire/unencodable")


def _utf8(s: str) -> bytes:
    try:
        return s.encode("utf-8")
    except UnicodeEncodeError:
        raise _unencodable(f"string {s[:20]!r} holds a lone surrogate") from None


class WireEncoder:
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
        self._t = _Tables(indexed=True)
        self._z = zlib.compressobj(_LEVEL, zlib.DEFLATED, -_WBITS, _MEM_LEVEL)

    def encode(self, delta: Delta) -> bytes:
        """The message for ``delta``; ``b"\\x01"`` for an empty one (state untouched)."""
        if not delta.ops:
            return bytes((WIRE_VERSION,))
        t = self._t
        t.begin()
        out = bytearray()
        try:
            for op in delta.ops:
                self._op(out, op)
            if len(out) > self.max_message_size:
                raise WireError(f"delta encodes to {len(out)} bytes", code="wire/too_large")
            body = self._compress(out)
        except RecursionError:
            t.rollback()
            raise _unencodable("value nested too deeply for this interpreter") from None
        except BaseException:
            t.rollback()
            raise
        t.commit()
        return bytes((WIRE_VERSION,)) + body

    def _compress(self, payload: bytearray) -> bytes:
        z = self._z
        near_limit = len(payload) + 1024 > self.max_message_size
        backup = z.copy() if near_limit else None
        body = z.compress(payload) + z.flush(zlib.Z_SYNC_FLUSH)
        if backup is not None and len(body) - 3 > self.max_message_size:
            self._z = backup
            raise WireError("compressed message over the size limit", code="wire/too_large")
        return body[:-4]

    def _op(self, out: bytearray, op: object) -> None:
        t = type(op)
        if t is Set:
            slot = self._path(out, op.path, _SET)  # type: ignore[attr-defined]
            v = op.value  # type: ignore[attr-defined]
            memo = self._t.paths.memo
            self._value(out, v, memo[slot] if slot >= 0 else None, 0)
            if slot >= 0 and type(v) is int:
                self._t.set_memo(memo, slot, v)
        elif t is Remove:
            self._path(out, op.path, _REMOVE)  # type: ignore[attr-defined]
        elif t is Splice:
            i, d, ins = op.index, op.delete, op.insert  # type: ignore[attr-defined]
            if type(i) is not int or type(d) is not int or i < 0 or d < 0 or i + d > INT_MAX:
                raise _unencodable(f"not a native splice (index {i!r}, delete {d!r})")
            if type(ins) not in (tuple, list):
                raise _unencodable("Splice.insert must be a tuple")
            self._path(out, op.path, _SPLICE)  # type: ignore[attr-defined]
            _varint(out, i)
            n = len(ins)
            _varint(out, d << 3 | min(n, 7))
            if n >= 7:
                _varint(out, n - 7)
            for v in ins:
                self._value(out, v, None, 0)
        else:
            raise _unencodable(
                f"{t.__name__} is not a native operation: resolve the delta against its base "
                "state first (statesync.delta.resolve)"
            )

    def _path(self, out: bytearray, path: Path, family: int) -> int:
        """Write a path; return its path-table slot, or -1 when it is not in the table."""
        t = self._t
        if type(path) is not tuple:
            raise _unencodable(f"path {path!r} is not a tuple")
        for item in path:
            if type(item) is not str and type(item) is not int:
                raise _unencodable(f"path item {item!r} is neither a str nor an index")
        slot = t.paths.index.get(path)  # type: ignore[union-attr]
        if slot is not None:
            t.paths.refs[slot] = 1
            out.append(family + slot)
            t.prev = t.paths.items[slot]
            return slot
        if len(path) > self.max_depth:
            raise _unencodable(f"path of {len(path)} items is deeper than max_depth")
        prev = t.prev
        keep = 0
        for a, b in zip(prev, path[:7], strict=False):
            if a != b or type(a) is not type(b):
                break
            keep += 1
        m = len(path) - keep
        if m == 1:
            out.append(family + _NEW1 + keep)
        else:
            out.append(family + _NEWM + keep)
            _varint(out, m)
        items = list(prev[:keep])
        short = True
        for item in path[keep:]:
            if isinstance(item, str):
                item, is_short = self._string_item(out, item, True)
                short = short and is_short
            elif 0 <= item <= INT_MAX:
                _varint(out, item << 1)
            else:
                raise _unencodable(f"list index {item!r} is out of range")
            items.append(item)
        if short and len(items) <= _MAX_PATH_ITEMS:
            t.prev = path = tuple(items)  # shares the table's strings
            return t.paths.add(path, None, t.undo)
        t.prev = ()
        return -1

    def _string_item(self, out: bytearray, s: str, in_path: bool) -> tuple[str, bool]:
        """Write a string item; return the table's equal string (shared) and whether short."""
        strs = self._t.strs
        slot = strs.index.get(s)  # type: ignore[union-attr]
        if slot is not None:
            strs.refs[slot] = 1
            x = slot + 1
            _varint(out, x << 1 | 1 if in_path else x)
            return strs.items[slot], True
        b = _utf8(s)
        out.append(1 if in_path else 0)
        _varint(out, len(b))
        out += b
        if len(b) <= _SHORT:
            strs.add(s, None, self._t.undo)
            return s, True
        return s, False

    def _value(self, out: bytearray, v: Value, ctx: int | None, depth: int) -> None:
        t = type(v)
        if t is int:
            self._int(out, v, ctx)  # type: ignore[arg-type]
        elif t is str:
            self._string(out, v)  # type: ignore[arg-type]
        elif v is None:
            out.append(_T_NONE)
        elif t is bool:
            out.append(_T_TRUE if v else _T_FALSE)
        elif t is float:
            if not math.isfinite(v):  # type: ignore[arg-type]
                raise _unencodable(f"float {v!r} is not finite")
            out.append(_T_FLOAT)
            out += _F64.pack(v)
        elif t is list or t is dict:
            if depth >= self.max_depth:
                raise _unencodable("value nested deeper than max_depth")
            if t is list:
                out.append(_T_LIST)
                _varint(out, len(v))  # type: ignore[arg-type]
                for x in v:  # type: ignore[union-attr]
                    self._value(out, x, None, depth + 1)
            else:
                self._dict(out, v, depth)  # type: ignore[arg-type]
        else:
            raise _unencodable(f"{t.__name__} is not a state value")

    def _string(self, out: bytearray, s: str) -> None:
        strs = self._t.strs
        slot = strs.index.get(s)  # type: ignore[union-attr]
        if slot is not None:
            strs.refs[slot] = 1
            out.append(slot)
            return
        if " " in s:
            words = s.split(" ")
            if len(words) <= _MAX_WORDS and all(words):
                out.append(_T_WORDS)
                _varint(out, len(words))
                for w in words:
                    self._string_item(out, w, False)
                return
        b = _utf8(s)
        out.append(_T_STR)
        _varint(out, len(b))
        out += b
        if len(b) <= _SHORT:
            strs.add(s, None, self._t.undo)

    @staticmethod
    def _int(out: bytearray, v: int, ctx: int | None) -> None:
        if not INT_MIN <= v <= INT_MAX:
            raise _unencodable(f"int {v} is outside the 64-bit range")
        dz = -1
        if ctx is not None:
            d = v - ctx
            if -32 <= d < 32:
                out.append(_T_DELTA0 + d)
                return
            dz = _zigzag(d)
        if 0 <= v < 32:
            out.append(_T_SMALL + v)
            return
        z = _zigzag(v)
        if dz >= 0 and _vlen(dz) < _vlen(z):
            out.append(_T_DINT)
            _varint(out, dz)
        else:
            out.append(_T_INT)
            _varint(out, z)

    def _dict(self, out: bytearray, v: dict[str, Value], depth: int) -> None:
        if not v:
            out.append(_T_EMPTY_DICT)
            return
        shapes = self._t.shapes
        keys = tuple(v)
        slot = shapes.index.get(keys)  # type: ignore[union-attr]
        memo: list[int | None] | None = None
        if slot is not None:
            shapes.refs[slot] = 1
            memo = shapes.memo[slot]
            out.append(_T_SHAPE + slot)
        else:
            out.append(_T_DICT)
            _varint(out, len(keys))
            shared = []
            short = True
            for k in keys:
                if type(k) is not str:
                    raise _unencodable(f"dict key {k!r} is not a str")
                k, is_short = self._string_item(out, k, False)
                shared.append(k)
                short = short and is_short
            if short and len(keys) <= _MAX_SHAPE_KEYS:
                memo = [None] * len(keys)
                shapes.add(tuple(shared), memo, self._t.undo)
        for i, x in enumerate(v.values()):
            self._value(out, x, memo[i] if memo is not None else None, depth + 1)
            if memo is not None and type(x) is int:
                self._t.set_memo(memo, i, x)


class WireDecoder:
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
        self._t = _Tables(indexed=False)
        self._z = zlib.decompressobj(-_WBITS)
        self._buf = b""
        self._pos = 0

    def decode(self, data: bytes) -> Delta:
        """The delta in ``data`` (one whole message), or :class:`WireError`."""
        if len(data) > self.max_message_size:
            raise WireError(
                f"message of {len(data)} bytes is over the limit", code="wire/too_large"
            )
        if not data:
            raise WireError("empty message: no version byte", code="wire/truncated")
        if data[0] != WIRE_VERSION:
            raise WireError(f"unknown wire format version {data[0]}", code="wire/version")
        if len(data) == 1:
            return Delta()
        z = self._z.copy()
        limit = self.max_message_size
        try:
            payload = z.decompress(bytes(data[1:]) + _TAIL, limit + 1)
        except zlib.error as e:
            raise WireError(f"bad DEFLATE data: {e}") from None
        if len(payload) > limit:
            raise WireError("message inflates past the size limit", code="wire/too_large")
        if z.eof or z.unused_data or z.unconsumed_tail:
            raise WireError("DEFLATE stream ended inside a message")
        if not payload:
            raise WireError("message holds no operation")
        t = self._t
        t.begin()
        self._buf, self._pos = payload, 0
        try:
            ops = self._ops()
        except WireError:
            t.rollback()
            raise
        except RecursionError:
            t.rollback()
            raise WireError("value nested too deeply for this interpreter") from None
        finally:
            self._buf = b""
        t.commit()
        self._z = z
        return Delta(tuple(ops))

    # -- reading primitives ------------------------------------------------------------------

    def _byte(self) -> int:
        p = self._pos
        if p >= len(self._buf):
            raise WireError("message truncated", code="wire/truncated")
        self._pos = p + 1
        return self._buf[p]

    def _varint(self) -> int:
        buf, p = self._buf, self._pos
        n = shift = 0
        while True:
            if p >= len(buf):
                raise WireError("message truncated inside a varint", code="wire/truncated")
            b = buf[p]
            p += 1
            n |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
            if shift >= 70:
                raise WireError("varint longer than 10 bytes")
        if b == 0 and shift:
            raise WireError("varint with a redundant final byte")
        self._pos = p
        return n

    def _count(self) -> int:
        """A varint count of items that take at least one byte each."""
        n = self._varint()
        if n > len(self._buf) - self._pos:
            raise WireError(f"count {n} exceeds the rest of the message", code="wire/truncated")
        return n

    def _bytes(self, n: int) -> bytes:
        p = self._pos
        if n > len(self._buf) - p:
            raise WireError("message truncated inside a string", code="wire/truncated")
        self._pos = p + n
        return self._buf[p : p + n]

    def _int(self, n: int) -> int:
        if not INT_MIN <= n <= INT_MAX:
            raise WireError(f"int {n} is outside the 64-bit range")
        return n

    # -- structure ---------------------------------------------------------------------------

    def _ops(self) -> list[NativeOp]:
        out: list[NativeOp] = []
        end = len(self._buf)
        memo = self._t.paths.memo
        while self._pos < end:
            h = self._byte()
            if h < _REMOVE:
                slot, path = self._path(h - _SET)
                v = self._value(memo[slot] if slot >= 0 else None, 0)
                if slot >= 0 and type(v) is int:
                    self._t.set_memo(memo, slot, v)
                out.append(Set(path, v))
            elif h < _SPLICE:
                out.append(Remove(self._path(h - _REMOVE)[1]))
            elif h < _RESERVED_OP:
                path = self._path(h - _SPLICE)[1]
                i = self._varint()
                dc = self._varint()
                d, n = dc >> 3, dc & 7
                if n == 7:
                    n += self._varint()
                if i + d > INT_MAX:
                    raise WireError("splice out of range")
                if n > end - self._pos:
                    raise WireError("splice count past the end", code="wire/truncated")
                out.append(Splice(path, i, d, tuple([self._value(None, 0) for _ in range(n)])))
            else:
                raise WireError(f"unknown operation header 0x{h:02x}")
        return out

    def _path(self, r: int) -> tuple[int, Path]:
        t = self._t
        if r < _NEW1:
            path: Path = t.paths.use(r)
            t.prev = path
            return r, path
        if r < _NEWM:
            keep, m = r - _NEW1, 1
        else:
            keep, m = r - _NEWM, self._count()
        if keep > len(t.prev) or keep + m > self.max_depth:
            raise WireError("path keeps more than the previous path, or is too deep")
        items: list[str | int] = list(t.prev[:keep])
        short = True
        for _ in range(m):
            u = self._varint()
            if u & 1:
                s, is_short = self._string_item(u >> 1)
                items.append(s)
                short = short and is_short
            elif u >> 1 > INT_MAX:
                raise WireError("list index out of range")
            else:
                items.append(u >> 1)
        path = tuple(items)
        if short and len(path) <= _MAX_PATH_ITEMS:
            t.prev = path
            return t.paths.add(path, None, t.undo), path
        t.prev = ()
        return -1, path

    def _string_item(self, x: int) -> tuple[str, bool]:
        strs = self._t.strs
        if x:
            return strs.use(x - 1), True
        b = self._bytes(self._varint())
        try:
            s = b.decode("utf-8")
        except UnicodeDecodeError:
            raise WireError("string is not valid UTF-8") from None
        if len(b) <= _SHORT:
            strs.add(s, None, self._t.undo)
            return s, True
        return s, False

    def _value(self, ctx: int | None, depth: int) -> Value:
        tag = self._byte()
        if tag < _T_DELTA0 - 32:
            return self._t.strs.use(tag)  # type: ignore[no-any-return]
        if tag < _T_SMALL:
            if ctx is None:
                raise WireError("int delta where no int was remembered")
            return self._int(ctx + tag - _T_DELTA0)
        if tag < _T_SHAPE:
            return tag - _T_SMALL
        if tag < _T_NONE:
            return self._shaped(tag - _T_SHAPE, depth)
        if tag == _T_NONE:
            return None
        if tag == _T_FALSE or tag == _T_TRUE:
            return tag == _T_TRUE
        if tag == _T_INT:
            return self._int(_unzigzag(self._varint()))
        if tag == _T_DINT:
            if ctx is None:
                raise WireError("int delta where no int was remembered")
            return self._int(ctx + _unzigzag(self._varint()))
        if tag == _T_FLOAT:
            (f,) = _F64.unpack(self._bytes(8))
            if not math.isfinite(f):
                raise WireError("float is not finite")
            return f  # type: ignore[no-any-return]
        if tag == _T_STR:
            return self._string_item(0)[0]
        if tag == _T_WORDS:
            n = self._count()
            return " ".join([self._string_item(self._varint())[0] for _ in range(n)])
        if tag > _T_EMPTY_DICT:
            raise WireError(f"unknown value tag 0x{tag:02x}")
        if depth >= self.max_depth:
            raise WireError("value nested deeper than max_depth")
        if tag == _T_LIST:
            n = self._count()
            return [self._value(None, depth + 1) for _ in range(n)]
        if tag == _T_DICT:
            return self._new_dict(depth)
        return {}

    def _new_dict(self, depth: int) -> Value:
        n = self._count()
        if not n:
            raise WireError("a dict with a shape has at least one key")
        keys: list[str] = []
        short = True
        for _ in range(n):
            k, is_short = self._string_item(self._varint())
            keys.append(k)
            short = short and is_short
        if len(set(keys)) != n:
            raise WireError("duplicate dict key")
        memo: list[int | None] | None = None
        if short and n <= _MAX_SHAPE_KEYS:
            memo = [None] * n
            self._t.shapes.add(tuple(keys), memo, self._t.undo)
        return self._fields(keys, memo, depth)

    def _shaped(self, slot: int, depth: int) -> Value:
        if depth >= self.max_depth:
            raise WireError("value nested deeper than max_depth")
        shapes = self._t.shapes
        keys = shapes.use(slot)
        return self._fields(keys, shapes.memo[slot], depth)

    def _fields(
        self, keys: tuple[str, ...] | list[str], memo: list[int | None] | None, depth: int
    ) -> dict[str, Value]:
        out: dict[str, Value] = {}
        for i, k in enumerate(keys):
            v = self._value(memo[i] if memo is not None else None, depth + 1)
            if memo is not None and type(v) is int:
                self._t.set_memo(memo, i, v)
            out[k] = v
        return out


def _unzigzag(n: int) -> int:
    return n >> 1 if not n & 1 else -((n + 1) >> 1)
