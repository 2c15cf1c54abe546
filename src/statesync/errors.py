"""The one exception tree of statesync.

Every error statesync raises on purpose derives from :class:`StateSyncError`::

    StateSyncError
    ├── InvalidValueError        a value is not a valid state (NaN, non-str key, bytes, ...)
    ├── PathError                a path names nothing, or names the wrong kind of container
    ├── PatchError               a delta cannot be applied; nothing was applied
    │   └── TestFailedError      an RFC 6902 "test" operation did not match
    ├── JsonPatchError           a JSON Patch document is malformed (bad op, bad pointer)
    ├── WireError                bytes on the wire are malformed, truncated or oversized
    ├── HashMismatchError        a state does not hash to what it should
    ├── VersionError             a version is stale, from the future or outside the history
    │   └── HistoryTruncatedError   the history no longer reaches back to that version
    ├── ActionRejected           an action was refused; ``code`` says why
    ├── GameError                a game broke its contract (raised while applying rules)
    ├── StoreError               a store could not do what was asked
    │   ├── TableNotFoundError   no table with that id
    │   ├── TableExistsError     a table with that id already exists
    │   ├── FencedError          another writer owns the table (version or epoch taken)
    │   └── StoreCorruptError    stored bytes cannot be decoded
    └── AuthError                a token is malformed, forged, expired or for another table

Errors carry structured attributes (``code``, ``path``, ``expected_hash``...) so callers never
parse messages. On the wire only the stable string ``code`` travels, never exception text.
"""

from __future__ import annotations

from typing import Any


class StateSyncError(Exception):
    """Base class of every error statesync raises on purpose.

    ``code`` is a stable, machine-readable string (``"patch/path_not_found"``); the message is
    for humans and may change between releases.
    """

    code: str = "statesync/error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class InvalidValueError(StateSyncError):
    """A value cannot be part of a state: only dict (str keys), list, str, int in the
    64-bit range, finite float, bool and None are allowed. ``path`` locates the bad part."""

    code = "value/invalid"

    def __init__(self, message: str, *, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.path = path


class PathError(StateSyncError):
    """A path does not exist in a state, or crosses a value of the wrong kind."""

    code = "path/not_found"

    def __init__(self, message: str, *, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.path = path


class PatchError(StateSyncError):
    """A delta could not be applied. ``patch`` is atomic: when this is raised, the input state
    is untouched and no partial result exists. ``op_index`` is the failing operation."""

    code = "patch/failed"

    def __init__(
        self, message: str, *, op_index: int | None = None, path: tuple[str | int, ...] = ()
    ) -> None:
        super().__init__(message)
        self.op_index = op_index
        self.path = path


class TestFailedError(PatchError):
    """An RFC 6902 ``test`` operation found a different value."""

    __test__ = False  # not a pytest test class
    code = "patch/test_failed"


class JsonPatchError(StateSyncError):
    """A JSON Patch (RFC 6902) document or JSON Pointer (RFC 6901) is malformed."""

    code = "jsonpatch/invalid"


class WireError(StateSyncError):
    """Bytes received from a peer are malformed, truncated, oversized or of an unknown
    format version. The decoder that raised it keeps its previous state."""

    code = "wire/malformed"


class HashMismatchError(StateSyncError):
    """A state does not hash to the expected value: the holder is out of sync."""

    code = "state/hash_mismatch"

    def __init__(
        self, message: str, *, expected_hash: str, actual_hash: str, version: int | None = None
    ) -> None:
        super().__init__(message)
        self.expected_hash = expected_hash
        self.actual_hash = actual_hash
        self.version = version


class VersionError(StateSyncError):
    """A version does not fit: a delta for another base, or a version from the future."""

    code = "version/mismatch"

    def __init__(
        self, message: str, *, expected: int | None = None, actual: int | None = None
    ) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class HistoryTruncatedError(VersionError):
    """The retained history no longer reaches back to the requested version."""

    code = "version/history_truncated"


class ActionRejected(StateSyncError):
    """An action was refused. ``code`` is one of the stable reason codes in
    :mod:`statesync.reasons`; ``detail`` holds optional structured context."""

    code = "action/rejected"

    def __init__(self, code: str, message: str = "", **detail: Any) -> None:
        super().__init__(message or code, code=code)
        self.detail = detail


class GameError(StateSyncError):
    """A game's rules broke their contract (raised an unexpected exception, or produced a
    value that is not a valid state). The action is not applied."""

    code = "game/error"


class StoreError(StateSyncError):
    """A store could not do what was asked; nothing was written."""

    code = "store/error"


class TableNotFoundError(StoreError):
    """No table with that id exists in the store."""

    code = "store/table_not_found"


class TableExistsError(StoreError):
    """A table with that id already exists in the store."""

    code = "store/table_exists"


class FencedError(StoreError):
    """The write lost to another writer: the version already exists, or the table moved to
    another epoch. The writer holding this table in memory is stale and must reload it."""

    code = "store/fenced"

    def __init__(
        self, message: str, *, table_id: str = "", head: int | None = None, epoch: int | None = None
    ) -> None:
        super().__init__(message)
        self.table_id = table_id
        self.head = head
        self.epoch = epoch


class StoreCorruptError(StoreError):
    """Stored bytes cannot be decoded (or were not written by this version of statesync)."""

    code = "store/corrupt"


class AuthError(StateSyncError):
    """A token was refused. ``code`` says why: ``auth/malformed`` (not a token at all),
    ``auth/bad_signature`` (not signed with this server's secret, or altered),
    ``auth/expired`` or ``auth/wrong_table`` (valid, but for another table)."""

    code = "auth/malformed"
