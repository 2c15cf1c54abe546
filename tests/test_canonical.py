from __future__ import annotations

import math

import msgpack
import pytest
from hypothesis import given

from statesync.canonical import canonical_bytes, decode
from statesync.errors import InvalidValueError
from statesync.value import strict_equal

from .strategies import values


@pytest.mark.parametrize(
    ("value", "hex_bytes"),
    [
        (None, "c0"),
        (True, "c3"),
        (False, "c2"),
        (0, "00"),
        (127, "7f"),
        (128, "cc80"),
        (-1, "ff"),
        (-33, "d0df"),
        (2**64 - 1, "cfffffffffffffffff"),
        (-(2**63), "d38000000000000000"),
        (1.0, "cb3ff0000000000000"),
        (-0.0, "cb0000000000000000"),
        ("a", "a161"),
        ("é", "a2c3a9"),
        ([1, "a"], "9201a161"),
        ({"b": 1, "a": 2, "é": 3, "z": 4}, "84a16102a16201a17a04a2c3a903"),
    ],
)
def test_canonical_bytes_are_pinned(value: object, hex_bytes: str) -> None:
    assert canonical_bytes(value).hex() == hex_bytes


@given(values)
def test_canonical_bytes_are_standard_msgpack(v: object) -> None:
    data = canonical_bytes(v)
    # Any MessagePack library decodes it; decoding and re-encoding is the identity.
    assert canonical_bytes(msgpack.unpackb(data, strict_map_key=True)) == data


@given(values)
def test_decode_round_trip(v: object) -> None:
    assert strict_equal(decode(canonical_bytes(v)), v)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [math.nan, {1: "x"}, {"a": (1,)}, {"s": {1, 2}}, object()])
def test_invalid_values_raise(bad: object) -> None:
    with pytest.raises(InvalidValueError) as info:
        canonical_bytes(bad)
    assert info.value.code == "value/invalid"


def test_error_names_the_path() -> None:
    with pytest.raises(InvalidValueError) as info:
        canonical_bytes({"a": [1, {"b": math.inf}]})
    assert info.value.path == ("a", 1, "b")


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x92\x01", b"\xc4\x01x", b"\x81\x01\x02"])
def test_decode_rejects_non_state_bytes(data: bytes) -> None:
    with pytest.raises(InvalidValueError):
        decode(data)
