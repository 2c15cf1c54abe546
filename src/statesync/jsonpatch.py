"""RFC 6902 JSON Patch import and export, with RFC 6901 JSON Pointer.

Theory of operation
-------------------
Export (:func:`to_json_patch`) maps each operation of a :class:`~statesync.delta.Delta` to one
or more JSON Patch operation objects::

    Set(path, v)            "add" when path ends in a str (a dict member),
                            "replace" when it ends in an int (a list element) or is the root
    Remove(path)            "remove"
    Splice(p, i, d, ins)    d x "remove" at p/i, then "add" at p/i+j for each ins[j]
                            (i == END: "add" at p/- for each value)
    Add, Replace, Test      "add", "replace", "test"
    Move, Copy              "move", "copy" (with "from")

Import (:func:`from_json_patch`) validates the document strictly and raises
:class:`~statesync.errors.JsonPatchError` for anything malformed; it produces :class:`Add`,
:class:`Remove`, :class:`Replace`, :class:`Move`, :class:`Copy` and :class:`Test` operations whose
paths hold the decoded pointer tokens as ``str``. Whether a token addresses a list element
(``"0"``, ``"-"``) can only be known against a state, so :func:`~statesync.patch` reads it there
and raises :class:`~statesync.errors.PatchError` for a target that does not fit.

Values are deep-copied both ways, so the caller may mutate its document afterwards without
changing the delta, and the other way round.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final, assert_never

from statesync.delta import Delta
from statesync.errors import InvalidValueError, JsonPatchError
from statesync.ops import END, Add, Copy, Move, Op, Remove, Replace, Set, Splice, Test
from statesync.value import check_value, copy_value

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from statesync.value import Path, PathItem, Value

__all__ = ["format_pointer", "from_json_patch", "parse_pointer", "to_json_patch"]

_BAD_ESCAPE: Final = re.compile(r"~(?![01])")

_VALUE_OPS: Final[Mapping[str, Callable[[Path, Value], Op]]] = {
    "add": Add,
    "replace": Replace,
    "test": Test,
}
_FROM_OPS: Final[Mapping[str, Callable[[Path, Path], Op]]] = {"move": Move, "copy": Copy}


# --- RFC 6901 JSON Pointer ----------------------------------------------------------------


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """Decode an RFC 6901 JSON Pointer into its reference tokens.

    ``""`` is the root (``()``); ``~1`` decodes to ``/`` and then ``~0`` to ``~``, so
    ``"/~01"`` is ``("~1",)``. Tokens stay ``str`` even where a list index is meant.

    >>> parse_pointer("/a~1b/0")
    ('a/b', '0')

    Raises :class:`~statesync.errors.JsonPatchError` when ``pointer`` is not a str, is
    non-empty without a leading ``/``, holds a ``~`` not followed by ``0`` or ``1``, or holds a
    lone surrogate (not valid UTF-8).
    """
    if not isinstance(pointer, str):
        raise JsonPatchError(f"a JSON Pointer is a string, not {type(pointer).__name__}")
    if not pointer:
        return ()
    if pointer[0] != "/":
        raise JsonPatchError(f"JSON Pointer {pointer!r} must be empty or start with '/'")
    if _BAD_ESCAPE.search(pointer):
        raise JsonPatchError(f"JSON Pointer {pointer!r} has a '~' not followed by '0' or '1'")
    try:
        pointer.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonPatchError(f"JSON Pointer {pointer!r} is not valid UTF-8") from None
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/"))


def format_pointer(path: Path) -> str:
    """Encode ``path`` as an RFC 6901 JSON Pointer: ``()`` is ``""``, ``~`` becomes ``~0`` and
    ``/`` becomes ``~1``; ints are written in decimal and :data:`~statesync.ops.END` as ``-``.

    >>> format_pointer(("a/b", 0, -1))
    '/a~1b/0/-'

    Raises :class:`~statesync.errors.JsonPatchError` for an int below ``-1`` or an item that
    is neither ``str`` nor ``int``.
    """
    return "".join("/" + _format_token(item) for item in path)


def _format_token(item: PathItem) -> str:
    if isinstance(item, str):
        return item.replace("~", "~0").replace("/", "~1")
    if type(item) is int and item >= END:
        return "-" if item == END else str(item)
    raise JsonPatchError(f"path item {item!r} cannot be written as a JSON Pointer token")


# --- export -------------------------------------------------------------------------------


def to_json_patch(delta: Delta) -> list[dict[str, Any]]:
    """``delta`` as an RFC 6902 JSON Patch document: a list of fresh operation objects.

    Values are deep copies, so mutating the document never changes ``delta``. See the module
    docstring for the mapping. Raises :class:`~statesync.errors.JsonPatchError` if a path
    cannot be written as a JSON Pointer (an int index below ``-1``).
    """
    return [obj for op in delta.ops for obj in _export(op)]


def _export(op: Op) -> list[dict[str, Any]]:
    match op:
        case Set(path, value):
            # Without the state, a str key is the best evidence of a dict member; "add"
            # is the RFC op that both adds and replaces one.
            name = "add" if path and isinstance(path[-1], str) else "replace"
            return [_with_value(name, path, value)]
        case Remove(path):
            return [{"op": "remove", "path": format_pointer(path)}]
        case Splice(path, index, delete, insert):
            return _export_splice(path, index, delete, insert)
        case Add(path, value):
            return [_with_value("add", path, value)]
        case Replace(path, value):
            return [_with_value("replace", path, value)]
        case Test(path, value):
            return [_with_value("test", path, value)]
        case Move(from_path, path):
            return [_with_from("move", from_path, path)]
        case Copy(from_path, path):
            return [_with_from("copy", from_path, path)]
        case _:
            assert_never(op)


def _export_splice(
    path: Path, index: int, delete: int, insert: tuple[Value, ...]
) -> list[dict[str, Any]]:
    # Each "remove" shifts the rest left, so all of them target the same index.
    out = [{"op": "remove", "path": format_pointer((*path, index))} for _ in range(delete)]
    for j, value in enumerate(insert):
        at = END if index == END else index + j
        out.append(_with_value("add", (*path, at), value))
    return out


def _with_value(name: str, path: Path, value: Value) -> dict[str, Any]:
    return {"op": name, "path": format_pointer(path), "value": copy_value(value)}


def _with_from(name: str, from_path: Path, path: Path) -> dict[str, Any]:
    return {"op": name, "from": format_pointer(from_path), "path": format_pointer(path)}


# --- import -------------------------------------------------------------------------------


def from_json_patch(doc: object) -> Delta:
    """Parse an RFC 6902 JSON Patch document (as :func:`json.loads` returns it) into a delta.

    Members of an operation object other than ``op``, ``path``, ``value`` and ``from`` are
    ignored, as the RFC requires. Values are deep-copied into the delta.

    Raises :class:`~statesync.errors.JsonPatchError`, naming the operation index, when ``doc``
    is not a list, an operation is not an object, ``op`` is missing or unknown, ``path`` (or
    ``from`` for move/copy, or ``value`` for add/replace/test) is missing, a pointer is not a
    str or is malformed, or a value is not a valid state value. Errors that depend on the
    target (a missing path, a failed ``test``) are raised later by :func:`~statesync.patch`.
    """
    if not isinstance(doc, list):
        raise JsonPatchError(
            f"a JSON Patch document is a list of operations, not {type(doc).__name__}"
        )
    return Delta(tuple(_import(i, obj) for i, obj in enumerate(doc)))


def _import(index: int, obj: object) -> Op:
    if not isinstance(obj, dict):
        raise JsonPatchError(f"operation {index} is a {type(obj).__name__}, not an object")
    name = _op_name(index, obj)
    path = _pointer(index, obj, name, "path")
    if name == "remove":
        return Remove(path)
    if name in _VALUE_OPS:
        return _VALUE_OPS[name](path, _value(index, obj, name))
    return _FROM_OPS[name](_pointer(index, obj, name, "from"), path)


def _op_name(index: int, obj: dict[Any, Any]) -> str:
    if "op" not in obj:
        raise JsonPatchError(f"operation {index} has no 'op' member")
    name = obj["op"]
    if not isinstance(name, str):
        raise JsonPatchError(f"operation {index}: 'op' is a {type(name).__name__}, not a string")
    if name != "remove" and name not in _VALUE_OPS and name not in _FROM_OPS:
        raise JsonPatchError(f"operation {index}: unknown op {name!r}")
    return name


def _pointer(index: int, obj: dict[Any, Any], name: str, member: str) -> Path:
    if member not in obj:
        raise JsonPatchError(f"operation {index} ({name}) has no {member!r} member")
    try:
        return parse_pointer(obj[member])
    except JsonPatchError as e:
        raise JsonPatchError(f"operation {index} ({name}): {member!r}: {e}") from None


def _value(index: int, obj: dict[Any, Any], name: str) -> Value:
    # Membership, not truthiness: "value": null is present and valid.
    if "value" not in obj:
        raise JsonPatchError(f"operation {index} ({name}) has no 'value' member")
    try:
        return copy_value(check_value(obj["value"]))
    except InvalidValueError as e:
        raise JsonPatchError(
            f"operation {index} ({name}): 'value' is not a state value: {e}"
        ) from e
