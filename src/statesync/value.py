"""The state model: JSON-like trees.

A *value* is ``None``, ``bool``, ``int`` (signed 64-bit range, or unsigned up to 2**64-1),
finite ``float``, ``str``, ``list`` of values, or ``dict`` with ``str`` keys. Nothing else:
no tuples, bytes, sets or NaN. Equality is *strict*: ``1``, ``1.0`` and ``True`` are three
different values, because they encode and hash differently. ``-0.0`` equals ``0.0`` and is
stored as ``0.0`` by the canonical encoding.

A *path* is a tuple of dict keys (``str``) and list indices (``int``) from the root.
"""

from __future__ import annotations

import math
from typing import Any, TypeAlias

from statesync.errors import InvalidValueError, PathError

Value: TypeAlias = "None | bool | int | float | str | list[Value] | dict[str, Value]"
Scalar: TypeAlias = None | bool | int | float | str
PathItem: TypeAlias = str | int
Path: TypeAlias = tuple[PathItem, ...]

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1

_SCALARS = (str, int, float, bool, type(None))


def check_value(value: object, path: Path = ()) -> Value:
    """Return ``value`` unchanged if it is a valid state, else raise
    :class:`~statesync.errors.InvalidValueError` naming the offending path.

    >>> check_value({"a": [1, 2.5, None]})
    {'a': [1, 2.5, None]}
    """
    t = type(value)
    if t is dict:
        for k, v in value.items():  # type: ignore[attr-defined]
            if type(k) is not str:
                raise InvalidValueError(f"dict key {k!r} at {_fmt(path)} is not a str", path=path)
            _check_str(k, path)
            check_value(v, (*path, k))
    elif t is list:
        for i, v in enumerate(value):  # type: ignore[arg-type]
            check_value(v, (*path, i))
    elif t is str:
        _check_str(value, path)  # type: ignore[arg-type]
    elif t is int:
        if not INT_MIN <= value <= INT_MAX:  # type: ignore[operator]
            raise InvalidValueError(f"int at {_fmt(path)} is outside the 64-bit range", path=path)
    elif t is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise InvalidValueError(f"non-finite float {value!r} at {_fmt(path)}", path=path)
    elif t is not bool and value is not None:
        raise InvalidValueError(
            f"{t.__name__} at {_fmt(path)} is not a state value "
            "(use dict, list, str, int, float, bool or None)",
            path=path,
        )
    return value  # type: ignore[return-value]


def _check_str(s: str, path: Path) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValueError(
            f"str at {_fmt(path)} holds a lone surrogate and is not valid UTF-8", path=path
        ) from None


def copy_value(value: Value) -> Value:
    """Deep copy of a value (much faster than :func:`copy.deepcopy` for plain trees)."""
    t = type(value)
    if t is dict:
        return {k: copy_value(v) for k, v in value.items()}  # type: ignore[union-attr]
    if t is list:
        return [copy_value(v) for v in value]  # type: ignore[union-attr]
    return value


def strict_equal(a: Value, b: Value) -> bool:
    """Equality that tells ``1``, ``1.0`` and ``True`` apart (``-0.0 == 0.0`` still holds).

    >>> strict_equal({"a": 1}, {"a": 1.0})
    False
    """
    if a is b:
        return True
    ta = type(a)
    if ta is not type(b):
        return False
    if ta is dict:
        if len(a) != len(b):  # type: ignore[arg-type]
            return False
        for k, v in a.items():  # type: ignore[union-attr]
            if k not in b:  # type: ignore[operator]
                return False
            if not strict_equal(v, b[k]):  # type: ignore[index]
                return False
        return True
    if ta is list:
        if len(a) != len(b):  # type: ignore[arg-type]
            return False
        return all(strict_equal(x, y) for x, y in zip(a, b, strict=False))  # type: ignore[arg-type]
    return a == b


def get_path(state: Value, path: Path) -> Value:
    """The value at ``path``; raises :class:`~statesync.errors.PathError` if there is none."""
    node: Any = state
    for depth, key in enumerate(path):
        t = type(node)
        if t is dict and type(key) is str:
            try:
                node = node[key]
            except KeyError:
                raise PathError(f"no key {key!r} at {_fmt(path[:depth])}", path=path) from None
        elif t is list and isinstance(key, int):
            if not 0 <= key < len(node):
                raise PathError(f"index {key} out of range at {_fmt(path[:depth])}", path=path)
            node = node[key]
        else:
            raise PathError(
                f"cannot index {t.__name__} with {key!r} at {_fmt(path[:depth])}", path=path
            )
    out: Value = node
    return out


def format_path(path: Path) -> str:
    """Human-readable path, as a JSON Pointer: ``("seats", 3, "chips")`` -> ``/seats/3/chips``."""
    return _fmt(path)


def _fmt(path: Path) -> str:
    if not path:
        return "/ (root)"
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)
