from __future__ import annotations

import hashlib
import math
import random
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statesync.delta import Delta, patch
from statesync.errors import StateSyncError, WireError
from statesync.ops import END, Add, Copy, Move, Op, Remove, Replace, Set, Splice, Test
from statesync.value import Value, strict_equal
from statesync.wire import WIRE_VERSION, WireDecoder, WireEncoder

from .strategies import containers, keys, native_op, values

SLOW = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def same(a: Delta, b: Delta) -> bool:
    """Strict equality of native deltas (1, 1.0 and True differ, also in paths)."""
    if len(a.ops) != len(b.ops):
        return False
    for x, y in zip(a.ops, b.ops, strict=True):
        if type(x) is not type(y) or not strict_equal(list(x.path), list(y.path)):
            return False
        if isinstance(x, Set) and not strict_equal(x.value, y.value):  # type: ignore[union-attr]
            return False
        if isinstance(x, Splice):
            assert isinstance(y, Splice)
            if (x.index, x.delete) != (y.index, y.delete):
                return False
            if not strict_equal(list(x.insert), list(y.insert)):
                return False
    return True


def payload(message: bytes, inflater: Any = None) -> bytes:
    """The ops payload of the first message of a connection."""
    z = inflater or zlib.decompressobj(-11)
    return bytes(z.decompress(message[1:] + b"\x00\x00\xff\xff"))


def wrap(ops_payload: bytes) -> bytes:
    """A first message of a connection carrying ``ops_payload`` (hand-built per the spec)."""
    z = zlib.compressobj(6, zlib.DEFLATED, -11, 1)
    return bytes([WIRE_VERSION]) + (z.compress(ops_payload) + z.flush(zlib.Z_SYNC_FLUSH))[:-4]


# -- strategies --------------------------------------------------------------------------------

# Small pools, so that paths, strings, shapes and ints repeat across messages and the tables
# (hits, evictions, int deltas, word strings) are exercised, mixed with arbitrary values.
_words = st.sampled_from(["gg", "wp", "calls", "20", "Alice", "x", "é", "a b", "🂡"])
_pool_str = st.one_of(
    _words, st.lists(_words, min_size=1, max_size=4).map(" ".join), keys, st.text(max_size=30)
)
_pool_key = st.one_of(st.sampled_from(["id", "x", "y", "hp", "name", "state"]), keys)
_pool_int = st.one_of(
    st.integers(-40, 300), st.integers(-(2**63), 2**64 - 1), st.sampled_from([2**64 - 1, -(2**63)])
)
_scalar = st.one_of(
    _pool_str, _pool_int, st.none(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False)
)
_value: st.SearchStrategy[Value] = st.recursive(
    _scalar,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4),
        st.dictionaries(_pool_key, kids, max_size=4),
        st.fixed_dictionaries({"id": _pool_int, "x": _pool_int, "state": _pool_str}),
    ),
    max_leaves=12,
)
_path = st.lists(
    st.one_of(_pool_key, st.integers(0, 70), st.integers(0, 2**64 - 1), st.text(max_size=30)),
    max_size=10,
).map(tuple)
_native_op = st.one_of(
    st.builds(Set, _path, st.one_of(_value, values)),
    st.builds(Remove, _path),
    st.builds(
        Splice,
        _path,
        st.integers(0, 300),
        st.integers(0, 20),
        st.lists(_value, max_size=9).map(tuple),
    ),
)
_delta = st.lists(_native_op, max_size=6).map(lambda ops: Delta(tuple(ops)))


# -- round trips -------------------------------------------------------------------------------


@SLOW
@given(st.lists(_delta, min_size=1, max_size=25))
def test_round_trip_over_one_connection(deltas: list[Delta]) -> None:
    enc, dec = WireEncoder(), WireDecoder()
    for d in deltas:
        got = dec.decode(enc.encode(d))
        assert same(d, got), (d, got)


@SLOW
@given(st.data())
def test_round_trip_of_applied_deltas(data: st.DataObject) -> None:
    """Deltas of random ops on a random state: the decoded delta patches to the same state."""
    state = data.draw(containers)
    enc, dec = WireEncoder(), WireDecoder()
    for _ in range(data.draw(st.integers(1, 8))):
        ops: list[Op] = []
        new = state
        for _ in range(data.draw(st.integers(0, 4))):
            if type(new) not in (dict, list):
                break
            op = data.draw(native_op(new))
            new = patch(new, Delta((op,)))
            ops.append(op)
        got = dec.decode(enc.encode(Delta(tuple(ops))))
        assert strict_equal(patch(state, got), new)
        state = new


def test_tables_evict_and_stay_in_step() -> None:
    """Many more paths, strings and shapes than the tables hold, revisited at random."""
    rng = random.Random(7)
    enc, dec = WireEncoder(), WireDecoder()
    names = [f"name{i}" for i in range(300)]
    for tick in range(400):
        ops: list[Set | Remove | Splice] = []
        for _ in range(rng.randint(1, 12)):
            e = rng.choice(names)
            field = rng.choice(["x", "y", "state", "hp"])
            value: Value = rng.choice(
                [rng.randint(0, 4000), rng.choice(names), " ".join(rng.sample(names, 3))]
            )
            ops.append(Set(("entities", e, field), value))
        shape = {rng.choice(names): tick for _ in range(rng.randint(1, 5))}
        ops.append(Splice(("log",), tick, 1, (shape, {"id": tick, "text": rng.choice(names)})))
        d = Delta(tuple(ops))
        assert same(d, dec.decode(enc.encode(d)))


def test_exact_types_round_trip() -> None:
    values_: list[Value] = [1, 1.0, True, False, 0, 0.0, None, "", -1, 2**64 - 1, -(2**63)]
    values_ += [1e-7, 123456.789, "1", [1, 1.0, True], {"a": 1, "b": 1.0, "c": True}, [], {}]
    enc, dec = WireEncoder(), WireDecoder()
    for _ in range(2):  # the second time through, with remembered ints and table hits
        d = Delta(tuple(Set(("k", i), v) for i, v in enumerate(values_)))
        assert same(d, dec.decode(enc.encode(d)))
    got = dec.decode(enc.encode(Delta((Set(("z",), -0.0),))))
    assert got.ops[0].value == 0.0  # type: ignore[union-attr]
    assert type(got.ops[0].value) is float  # type: ignore[union-attr]


def test_encoding_is_deterministic() -> None:
    deltas = [
        Delta((Set(("a", i % 5), f"v{i % 7} x"), Splice(("l",), i, 0, ({"k": i},))))
        for i in range(50)
    ]
    a, b = WireEncoder(), WireEncoder()
    assert [a.encode(d) for d in deltas] == [b.encode(d) for d in deltas]


def test_empty_delta_is_one_byte_and_touches_nothing() -> None:
    enc, dec = WireEncoder(), WireDecoder()
    first = Delta((Set(("hp",), 97),))
    assert enc.encode(Delta()) == bytes([WIRE_VERSION])
    assert dec.decode(bytes([WIRE_VERSION])) == Delta()
    assert same(first, dec.decode(enc.encode(first)))


# -- the format, byte for byte (the module docstring is the spec) ------------------------------


def test_spec_examples() -> None:
    enc = WireEncoder()
    inflater = zlib.decompressobj(-11)
    m1 = enc.encode(Delta((Set(("hp",), 97),)))
    assert m1[0] == 0x01
    # new path, keep 0, one item; literal string item (u=1) "hp"; int zigzag(97)=194
    assert payload(m1, inflater) == bytes([0x40, 0x01, 0x02, *b"hp", 0xAB, 0xC2, 0x01])
    m2 = enc.encode(Delta((Set(("hp",), 95), Splice(("log",), 3, 1, ("Alice calls 20",)))))
    # path slot 0 with int context 97: delta -2 -> 0x5e
    # splice: new path ("log"), index 3, dc = 1 << 3 | 1, words: 3 literal string items
    assert payload(m2, inflater) == bytes(
        [0x00, 0x5E, 0xE0, 0x01, 0x03, *b"log", 0x03, 0x09, 0xAF, 0x03]
    ) + bytes([0x00, 0x05, *b"Alice", 0x00, 0x05, *b"calls", 0x00, 0x02, *b"20"])
    m3 = enc.encode(Delta((Set(("log", 0), "calls"), Remove(("hp",)))))
    # keep 1 item of the previous path ("log",) then index 0; strings: hp=0 log=1 Alice=2
    # calls=3 20=4; Remove of the path in slot 0
    assert payload(m3, inflater) == bytes([0x41, 0x00, 0x03, 0x50])


def test_decoder_reads_hand_built_payloads() -> None:
    dict_payload = (
        bytes([0x40, 0x01, 0x01, *b"e", 0xB1, 0x02, 0x00, 0x01, *b"x", 0x00, 0x01, *b"s"])
        + bytes([0xAB, 0x80, 0x40, 0x00])  # x = 4096, s = string slot 0 ("e")
        + bytes([0x00, 0xA0, 0x7F, 0xA9])  # Set e again: shape slot 0, x = 4096 + 31, s = False
    )
    got = WireDecoder().decode(wrap(dict_payload))
    assert got == Delta((Set(("e",), {"x": 4096, "s": "e"}), Set(("e",), {"x": 4127, "s": False})))


def _traffic(seed: int, ticks: int) -> list[Delta]:
    """Deterministic deltas that fill, evict and revisit every table (paths with ints, words,
    remembered ints, shapes, nesting, long strings and paths)."""
    rng = random.Random(seed)
    names = [f"p{i}" for i in range(90)] + ["é", "🂡", "long-" * 6, "a b"]

    def value(depth: int = 0) -> Value:
        k = rng.random()
        if k < 0.3:
            return rng.choice(
                [rng.randint(0, 40), rng.randint(-300, 5000), rng.randint(-(2**63), 2**64 - 1)]
            )
        if k < 0.45:
            return rng.choice(names)
        if k < 0.55:
            return " ".join(rng.choice(names[:40]) for _ in range(rng.randint(2, 5)))
        if k < 0.62:
            return rng.choice([None, True, False, 0.5, -2.25, 1e300])
        if depth < 2 and k < 0.8:
            return [value(depth + 1) for _ in range(rng.randint(0, 9))]
        if depth < 2:
            return {rng.choice(names[:20]): value(depth + 1) for _ in range(rng.randint(0, 4))}
        return rng.randint(0, 9)

    def path() -> tuple[str | int, ...]:
        return tuple(
            rng.choice([rng.choice(names[:70]), rng.randint(0, 150)])
            for _ in range(rng.randint(0, 9))
        )

    deltas = []
    for _ in range(ticks):
        ops: list[Set | Remove | Splice] = []
        for _ in range(rng.randint(0, 9)):
            k = rng.random()
            if k < 0.65:
                ops.append(Set(path(), value()))
            elif k < 0.75:
                ops.append(Remove(path()))
            else:
                at, index, delete = path(), rng.randint(0, 300), rng.randint(0, 12)
                ops.append(
                    Splice(at, index, delete, tuple(value() for _ in range(rng.randint(0, 9))))
                )
        deltas.append(Delta(tuple(ops)))
    return deltas


def test_ops_payloads_are_those_of_the_reference_encoder() -> None:
    """The digest of the ops payloads of long traffic, as the first (plain, unoptimized)
    implementation of version 1 wrote them: the format and the encoder's choices are pinned
    (DEFLATE output may vary with zlib, the payloads may not)."""
    enc, inflater = WireEncoder(), zlib.decompressobj(-11)
    digest, size = hashlib.sha256(), 0
    for d in _traffic(2024, 400):
        msg = enc.encode(d)
        if len(msg) > 1:
            ops_payload = payload(msg, inflater)
            digest.update(len(ops_payload).to_bytes(4, "big") + ops_payload)
            size += len(ops_payload)
    assert size == 56469
    assert digest.hexdigest() == "66265d742e4ceac3f89cef49f98a6b5256a9e0d5a7a1d45638f256e48e6bb420"


_BAD_OPS: list[Any] = [
    Set(("ok", 1.0), 1),
    Set(("ok", True), 1),
    Set(("v",), math.nan),
    Set(("v",), {"a": {1, 2}}),
    Move(("a",), ("b",)),
    Set(["a"], 1),  # type: ignore[arg-type]
    Set(("v",), 2**64),
    Splice(("l",), -1, 0, ()),
    Set(("v",), ["\ud800"]),
]


def test_failed_encodes_leave_no_trace_on_a_long_connection() -> None:
    """Failures mixed into traffic long enough to wrap the per-message tags of the reference
    bits: the encoder goes on exactly like one that never saw them."""
    rng = random.Random(5)
    enc, twin, dec = WireEncoder(), WireEncoder(), WireDecoder()
    for d in _traffic(7, 700):
        if rng.random() < 0.2:
            ops = list(d.ops)
            ops.insert(rng.randint(0, len(ops)), rng.choice(_BAD_OPS))
            with pytest.raises(WireError) as exc:
                enc.encode(Delta(tuple(ops)))
            assert exc.value.code == "wire/unencodable"
        msg = enc.encode(d)
        assert msg == twin.encode(d)
        assert same(d, dec.decode(msg))


def test_failed_decodes_leave_no_trace_on_a_long_connection() -> None:
    """Damaged messages mixed into traffic that has long filled the 2 KiB DEFLATE window and
    wrapped the reference-bit tags: after each rejection the decoder goes on exactly like one
    that never saw it (its inflater is rebuilt from the window)."""
    rng = random.Random(6)
    enc, dec, twin = WireEncoder(), WireDecoder(), WireDecoder()
    rejected = 0
    for d in _traffic(8, 700):
        msg = enc.encode(d)
        if len(msg) > 1 and rng.random() < 0.2:
            bad = bytearray(msg)
            kind = rng.randrange(3)
            if kind == 0:
                bad = bad[: rng.randint(1, len(bad) - 1)]
            elif kind == 1:
                bad[rng.randint(1, len(bad) - 1)] ^= 1 << rng.randrange(8)
            else:
                bad += rng.randbytes(rng.randint(1, 4))
            try:
                dec.decode(bytes(bad))
            except WireError:
                rejected += 1
            else:  # the damage went unnoticed: out of step, start over
                for end in (enc, dec, twin):
                    end.reset()
                continue
        got = dec.decode(msg)
        assert got == twin.decode(msg)
        assert same(d, got)
    assert rejected > 50


def test_int_path_items_are_checked_on_table_hits() -> None:
    """A path in the table is found by equality, and True and 1.0 equal 1: the encoder checks
    the int items of every path it finds."""
    enc, dec = WireEncoder(), WireDecoder()
    first = Delta((Set(("g", 1, "x", 2), 5), Set(("s", 3), 1), Remove(("g", 0, "y", 1))))
    assert same(first, dec.decode(enc.encode(first)))
    for path in [("g", True, "x", 2), ("g", 1, "x", 2.0), ("s", 3.0), ("g", False, "y", 1)]:
        for op in (Set(path, 1), Remove(path), Splice(path, 0, 0, ())):
            with pytest.raises(WireError) as exc:
                enc.encode(Delta((op,)))
            assert exc.value.code == "wire/unencodable"
    assert same(first, dec.decode(enc.encode(first)))


# -- rejection ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [0x00, 0x02, 0x78, 0xFF])
def test_unknown_version_is_rejected(version: int) -> None:
    msg = WireEncoder().encode(Delta((Set(("a",), 1),)))
    with pytest.raises(WireError) as exc:
        WireDecoder().decode(bytes([version]) + msg[1:])
    assert exc.value.code == "wire/version"


def test_empty_message_is_rejected() -> None:
    with pytest.raises(WireError) as exc:
        WireDecoder().decode(b"")
    assert exc.value.code == "wire/truncated"


def test_oversized_messages_are_rejected() -> None:
    big = Delta((Set(("s",), "".join(chr(0x4E00 + i % 5000) for i in range(3000))),))
    msg = WireEncoder().encode(big)
    with pytest.raises(WireError) as exc:
        WireDecoder(max_message_size=len(msg) - 1).decode(msg)
    assert exc.value.code == "wire/too_large"
    # small on the wire, large once inflated
    bomb = WireEncoder().encode(Delta((Set(("s",), "a" * 100_000),)))
    assert len(bomb) < 1000
    with pytest.raises(WireError) as exc:
        WireDecoder(max_message_size=10_000).decode(bomb)
    assert exc.value.code == "wire/too_large"
    with pytest.raises(WireError) as exc:
        WireDecoder().decode(bytes([WIRE_VERSION]) + bytes((1 << 20) + 1))
    assert exc.value.code == "wire/too_large"


def test_encoder_size_limit_leaves_the_connection_usable() -> None:
    enc, dec = WireEncoder(max_message_size=2000), WireDecoder(max_message_size=2000)
    rng = random.Random(1)
    noise = "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(700))  # incompressible
    first = Delta((Set(("a",), "hello world"),))
    assert same(first, dec.decode(enc.encode(first)))
    for too_big in (Delta((Set(("b",), noise),)), Delta((Set(("b",), "x" * 3000),))):
        with pytest.raises(WireError) as exc:
            enc.encode(too_big)
        assert exc.value.code == "wire/too_large"
    after = Delta((Set(("a",), "hello world"), Set(("c",), noise[:300])))
    assert same(after, dec.decode(enc.encode(after)))


def test_compressed_size_limit_restores_the_compressor() -> None:
    # a 9-byte payload fits a 9-byte limit, but its message (12 bytes) does not
    enc = WireEncoder(max_message_size=9)
    with pytest.raises(WireError) as exc:
        enc.encode(Delta((Set(("a",), "xyz"),)))
    assert exc.value.code == "wire/too_large"
    small = Delta((Set(("b",), 1),))
    assert same(small, WireDecoder().decode(enc.encode(small)))  # still a fresh connection


@pytest.mark.parametrize(
    "op",
    [
        Add(("a",), 1),
        Replace(("a",), 1),
        Move(("a",), ("b",)),
        Copy(("a",), ("b",)),
        Test(("a",), 1),
        Splice(("l",), END, 0, (1,)),
        Splice(("l",), 0, -1, ()),
    ],
    ids=repr,
)
def test_non_native_ops_are_rejected_at_encode(op: Op) -> None:
    enc, dec = WireEncoder(), WireDecoder()
    before = Delta((Set(("s", "t"), "same words here"),))
    assert same(before, dec.decode(enc.encode(before)))
    with pytest.raises(WireError) as exc:
        enc.encode(Delta((Set(("s", "u"), "new words here"), op)))
    assert exc.value.code == "wire/unencodable"
    assert isinstance(exc.value, StateSyncError)
    after = Delta((Set(("s", "u"), "new words here"), Set(("s", "t"), 5)))
    assert same(after, dec.decode(enc.encode(after)))  # the failed encode left no trace


@pytest.mark.parametrize(
    "value",
    [
        math.nan,
        math.inf,
        (1, 2),
        {1: "a"},
        {"a": {1, 2}},
        2**64,
        -(2**63) - 1,
        "\ud800",
        {"k": ["\udfff"]},
        b"bytes",
    ],
    ids=repr,
)
def test_invalid_values_are_rejected_at_encode(value: Any) -> None:
    enc, dec = WireEncoder(), WireDecoder()
    with pytest.raises(WireError) as exc:
        enc.encode(Delta((Set(("ok",), {"x": 1, "y": "words and more"}), Set(("v",), value))))
    assert exc.value.code == "wire/unencodable"
    good = Delta((Set(("ok",), {"x": 2, "y": "words"}),))
    assert same(good, dec.decode(enc.encode(good)))


@pytest.mark.parametrize(
    "path", [("a", True), ("a", 1.0), ("a", -1), ["a"], ("a", None), ("a", 2**64)], ids=repr
)
def test_bad_paths_are_rejected_at_encode(path: Any) -> None:
    enc = WireEncoder()
    enc.encode(Delta((Set(("a", 1), 1),)))  # a path in the table that True and 1.0 equal
    with pytest.raises(WireError):
        enc.encode(Delta((Set(path, 1),)))


def test_nesting_limits() -> None:
    deep: Value = 1
    for _ in range(70):
        deep = [deep]
    with pytest.raises(WireError):
        WireEncoder().encode(Delta((Set(("d",), deep),)))
    with pytest.raises(WireError):
        WireEncoder().encode(Delta((Set(tuple(range(65)), 1),)))
    msg = WireEncoder(max_depth=100).encode(Delta((Set(("d",), deep),)))
    with pytest.raises(WireError):
        WireDecoder().decode(msg)
    assert same(Delta((Set(("d",), deep),)), WireDecoder(max_depth=100).decode(msg))
    very_deep = bytes([0x40, 0x01, 0x01, *b"d"]) + bytes([0xB0, 0x01]) * 5000 + bytes([0xA8])
    with pytest.raises(WireError):
        WireDecoder(max_depth=10**6).decode(wrap(very_deep))


@pytest.mark.parametrize(
    ("ops_payload", "code"),
    [
        (bytes([0xF0]), "wire/malformed"),  # reserved op header
        (bytes([0x00, 0x80]), "wire/malformed"),  # empty path slot
        (bytes([0x41, 0x00, 0x80]), "wire/malformed"),  # keeps 1 of an empty previous path
        (bytes([0x40, 0x00, 0xFF]), "wire/malformed"),  # reserved value tag
        (bytes([0x40, 0x00, 0x60]), "wire/malformed"),  # int delta without context
        (bytes([0x40, 0x00, 0x3F]), "wire/malformed"),  # empty string slot
        (bytes([0x40, 0x00, 0xAB, 0x80, 0x00]), "wire/malformed"),  # overlong varint
        (bytes([0x40, 0x00, 0xAB]) + b"\xff" * 10 + b"\x01", "wire/malformed"),  # > 10 bytes
        (
            bytes([0x40, 0x00, 0xAB, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x04]),
            "wire/malformed",
        ),  # 2**65: zigzag of an int past 2**64 - 1
        (bytes([0x40, 0x00, 0xAD, 0x7F, 0xF0, 0, 0, 0, 0, 0, 0]), "wire/malformed"),  # inf
        (bytes([0x40, 0x00, 0xAE, 0x02, 0xC3, 0x28]), "wire/malformed"),  # bad UTF-8
        (bytes([0x40, 0x00, 0xAE, 0x05, 0x61]), "wire/truncated"),  # short string
        (bytes([0x40, 0x00, 0xB0, 0x7F, 0xA8]), "wire/truncated"),  # count past the end
        (bytes([0x40, 0x00, 0xB1, 0x00]), "wire/malformed"),  # dict with no key
        (
            bytes([0x40, 0x00, 0xB1, 0x02, 0x00, 0x01, 0x61, 0x01, 0xA8, 0xA8]),
            "wire/malformed",
        ),  # duplicate key "a" (literal, then slot 0)
        (bytes([0x40, 0x00]), "wire/truncated"),  # Set without a value
        (bytes([0xE0, 0x00, 0x00, 0x01]), "wire/truncated"),  # splice missing its value
    ],
)
def test_malformed_payloads(ops_payload: bytes, code: str) -> None:
    dec = WireDecoder()
    with pytest.raises(WireError) as exc:
        dec.decode(wrap(ops_payload))
    assert exc.value.code == code


def test_bad_deflate_and_stream_end() -> None:
    with pytest.raises(WireError):
        WireDecoder().decode(bytes([WIRE_VERSION, 0xFF, 0xFF, 0xFF]))
    final = zlib.compressobj(6, zlib.DEFLATED, -11)
    body = final.compress(bytes([0x40, 0x00, 0xA8])) + final.flush()  # BFINAL stream end
    with pytest.raises(WireError):
        WireDecoder().decode(bytes([WIRE_VERSION]) + body)
    blob = random.Random(3).randbytes(3000)
    wide = zlib.compressobj(6, zlib.DEFLATED, -15)  # back-references reach 3000 bytes
    body = wide.compress(blob + blob) + wide.flush(zlib.Z_SYNC_FLUSH)
    with pytest.raises(WireError):
        WireDecoder().decode(bytes([WIRE_VERSION]) + body[:-4])


# -- fuzzing the decoder -----------------------------------------------------------------------


def _decode_or_error(dec: WireDecoder, data: bytes) -> Delta | None:
    try:
        got = dec.decode(data)
    except WireError:
        return None
    assert isinstance(got, Delta)
    assert got.is_native()
    return got


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_gives_wire_error_or_delta(data: bytes) -> None:
    _decode_or_error(WireDecoder(), data)
    _decode_or_error(WireDecoder(), bytes([WIRE_VERSION]) + data)
    _decode_or_error(WireDecoder(), wrap(data))  # garbage straight into the ops parser


def _warm_traffic() -> tuple[list[bytes], list[bytes]]:
    """Messages that fill every table, and their ops payloads (to mutate)."""
    rng = random.Random(11)
    enc, inflater = WireEncoder(), zlib.decompressobj(-11)
    msgs, payloads = [], []
    for tick in range(120):
        ops: list[Set | Remove | Splice] = [
            Set(("e", f"n{rng.randrange(90)}", rng.choice("xys")), rng.randrange(5000))
            for _ in range(4)
        ]
        ops.append(Set(("w", tick % 7), f"w{rng.randrange(80)} w{rng.randrange(80)}"))
        ops.append(Splice(("log",), tick, 1, ({f"k{tick % 12}": tick, "v": [1.5, None]},)))
        ops.append(Remove(("e", f"n{rng.randrange(90)}")))
        msgs.append(enc.encode(Delta(tuple(ops))))
        payloads.append(payload(msgs[-1], inflater))
    return msgs, payloads


_WARM_MSGS, _WARM_PAYLOADS = _warm_traffic()


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_WARM_PAYLOADS), st.lists(st.tuples(st.integers(0), st.integers(0, 255))))
def test_mutated_payloads_on_a_warm_decoder(base: bytes, edits: list[tuple[int, int]]) -> None:
    """Random edits of real ops payloads, where table references mostly resolve."""
    dec = WireDecoder()
    for m in _WARM_MSGS:
        dec.decode(m)
    data = bytearray(base)
    for i, b in edits:
        data[i % len(data)] = b
    _decode_or_error(dec, wrap(bytes(data)))


@SLOW
@given(st.lists(_delta, min_size=1, max_size=6), st.data())
def test_damaged_messages_leave_the_decoder_unchanged(
    deltas: list[Delta], data: st.DataObject
) -> None:
    enc = WireEncoder()
    msgs = [enc.encode(d) for d in deltas]
    k = data.draw(st.integers(0, len(msgs) - 1))
    dec = WireDecoder()
    for d, m in zip(deltas[:k], msgs[:k], strict=True):
        assert same(d, dec.decode(m))
    good = msgs[k]
    kind = data.draw(st.sampled_from(["truncate", "flip", "splice"]))
    if kind == "truncate":
        bad = good[: data.draw(st.integers(0, max(len(good) - 1, 0)))]
    elif kind == "flip":
        flipped = bytearray(good)
        for _ in range(data.draw(st.integers(1, 3))):
            i = data.draw(st.integers(0, len(flipped) - 1))
            flipped[i] ^= 1 << data.draw(st.integers(0, 7))
        bad = bytes(flipped)
    else:
        bad = good + data.draw(st.binary(min_size=1, max_size=8))
    if bad == good:
        return
    got = _decode_or_error(dec, bad)
    if got is None:
        # the failed message left no trace: the real one still decodes, and so does the rest
        for d, m in zip(deltas[k:], msgs[k:], strict=True):
            assert same(d, dec.decode(m))
    # whatever happened, a reset pair is back in step
    enc.reset()
    dec.reset()
    for d in deltas:
        assert same(d, dec.decode(enc.encode(d)))


def test_wire_error_codes_are_stable_strings() -> None:
    codes = set()
    for data in (b"", b"\x09", bytes([WIRE_VERSION, 0xFF]), bytes(2 << 20)):
        with pytest.raises(WireError) as exc:
            WireDecoder().decode(data)
        codes.add(exc.value.code)
    assert codes <= {"wire/truncated", "wire/version", "wire/malformed", "wire/too_large"}
