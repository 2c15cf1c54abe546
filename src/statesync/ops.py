"""Delta operations: small frozen value types, one class per kind of change.

Native operations (what :func:`~statesync.diffing`, mutation tracking and the wire format use):

* :class:`Set` -- set a dict member (add or replace), a list element (must exist) or the root;
* :class:`Remove` -- remove a dict member, or one list element (RFC 6902 ``remove``);
* :class:`Splice` -- ``lst[index:index + delete] = insert`` on the list at ``path``.

Operations that only RFC 6902 import produces (:meth:`Delta.from_json_patch`); they are applied
by :func:`~statesync.patch` like the others and turned into native ones by
:func:`~statesync.delta.resolve`:

* :class:`Add` -- RFC 6902 ``add``: set a dict member, or insert into a list;
* :class:`Replace` -- like :class:`Set`, but the target must already exist;
* :class:`Move`, :class:`Copy`, :class:`Test` -- as in RFC 6902;
* ``Splice(index=END)`` -- insert at the end of the list (the JSON Pointer ``-``).

Paths of imported operations may hold RFC 6901 string tokens where a list index is meant
(``"0"``, ``"-"``); :func:`~statesync.patch` reads them against the list it meets. Values held by
operations must not be mutated by their owner afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeAlias

if TYPE_CHECKING:
    from statesync.value import Path, Value

END: Final = -1
"""``Splice.index`` meaning "at the end of the list"."""


@dataclass(frozen=True, slots=True)
class Set:
    """Set ``path`` to ``value``: adds or replaces a dict member, replaces a list element."""

    path: Path
    value: Value


@dataclass(frozen=True, slots=True)
class Remove:
    """Remove the dict member or list element at ``path`` (it must exist)."""

    path: Path


@dataclass(frozen=True, slots=True)
class Splice:
    """``lst[index:index + delete] = insert`` on the list at ``path``.

    ``index`` may be :data:`END` (only with ``delete == 0``) to append.
    """

    path: Path
    index: int
    delete: int
    insert: tuple[Value, ...] = ()


@dataclass(frozen=True, slots=True)
class Add:
    """Add ``value`` at ``path`` (RFC 6902 ``add``): sets a dict member, or inserts into a list
    before the element at the index (:data:`END` appends)."""

    path: Path
    value: Value


@dataclass(frozen=True, slots=True)
class Replace:
    """Replace the existing value at ``path`` (RFC 6902 ``replace``)."""

    path: Path
    value: Value


@dataclass(frozen=True, slots=True)
class Move:
    """Remove the value at ``from_path`` and add it at ``path`` (RFC 6902 ``move``)."""

    from_path: Path
    path: Path


@dataclass(frozen=True, slots=True)
class Copy:
    """Add a copy of the value at ``from_path`` at ``path`` (RFC 6902 ``copy``)."""

    from_path: Path
    path: Path


@dataclass(frozen=True, slots=True)
class Test:
    """Fail the whole patch unless the value at ``path`` equals ``value`` (RFC 6902 ``test``)."""

    __test__ = False  # not a pytest test class
    path: Path
    value: Value


NativeOp: TypeAlias = Set | Remove | Splice
Op: TypeAlias = Set | Remove | Splice | Add | Replace | Move | Copy | Test
