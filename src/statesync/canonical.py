"""Canonical encoding: the one byte string a value encodes to, on any machine.

The canonical form is MessagePack (https://msgpack.org) with these rules, so that a client in
any language can reproduce it (``docs/hashing.md`` spells it out byte for byte):

* map keys are sorted by their UTF-8 bytes; every key is a str;
* integers use the shortest MessagePack form (positive fixint, uint8..64, negative fixint,
  int8..64);
* floats always use float64 (``0xcb``); ``-0.0`` is written as ``0.0``; NaN and infinities are
  rejected;
* strings use the shortest str form (fixstr, str8, str16, str32) of their UTF-8 bytes;
* ``True``/``False``/``None`` are ``0xc3``/``0xc2``/``0xc0``; arrays use the shortest array form.

``ENCODING_VERSION`` names this form; it is part of every hash's definition and changes only
with a major release.
"""

from __future__ import annotations

from typing import Final

import msgspec

from statesync.value import Value, check_value

ENCODING_VERSION: Final = 1

_encoder = msgspec.msgpack.Encoder(order="deterministic")


def canonical_bytes(value: object) -> bytes:
    """The canonical MessagePack bytes of ``value``.

    Raises :class:`~statesync.errors.InvalidValueError` for anything that is not a state value.

    >>> canonical_bytes({"b": 1, "a": -0.0}).hex()
    '82a161cb0000000000000000a16201'
    """
    return _encoder.encode(normalize(check_value(value)))


def scalar_bytes(value: None | bool | int | float | str) -> bytes:
    """Canonical bytes of an already validated scalar (the hot path of hashing)."""
    if type(value) is float and value == 0.0:
        value = 0.0
    return _encoder.encode(value)


def normalize(value: Value) -> Value:
    """``value`` with every ``-0.0`` replaced by ``0.0``; the same object when there is none."""
    t = type(value)
    if t is float:
        return 0.0 if value == 0.0 else value
    if t is dict:
        out: dict[str, Value] | None = None
        for k, v in value.items():  # type: ignore[union-attr]
            n = normalize(v)
            if n is not v:
                if out is None:
                    out = dict(value)  # type: ignore[arg-type]
                out[k] = n
        return value if out is None else out
    if t is list:
        lst: list[Value] | None = None
        for i, v in enumerate(value):  # type: ignore[arg-type]
            n = normalize(v)
            if n is not v:
                if lst is None:
                    lst = list(value)  # type: ignore[arg-type]
                lst[i] = n
        return value if lst is None else lst
    return value


def encode(value: Value) -> bytes:
    """Canonical bytes of a value that is already known to be valid (no validation pass)."""
    return _encoder.encode(normalize(value))


def decode(data: bytes) -> Value:
    """Decode MessagePack bytes into a value, validating the result.

    Raises :class:`~statesync.errors.InvalidValueError` for bytes that are not a valid
    MessagePack state value.
    """
    from statesync.errors import InvalidValueError

    try:
        value = msgspec.msgpack.decode(data)
    except (msgspec.DecodeError, ValueError) as e:
        raise InvalidValueError(f"not a canonical state encoding: {e}") from None
    return check_value(value)
