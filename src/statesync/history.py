"""The retained history of a table: one entry per version, bounded by count and bytes."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING

from statesync.errors import HistoryTruncatedError, VersionError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from statesync.actions import PlayerAction
    from statesync.delta import Delta


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """How version ``version`` came to be: the action, the forward delta from
    ``version - 1`` (full state, native ops), its inverse, and the full-state hash after."""

    version: int
    action: PlayerAction | None
    delta: Delta
    inverse: Delta
    hash: str
    size: int
    """Approximate bytes this entry holds (for the byte bound)."""


class History:
    """Entries for the most recent versions, oldest first.

    Keeps at most ``max_versions`` entries and about ``max_bytes`` of deltas, always at least
    the newest entry.

    >>> h = History(max_versions=100)
    >>> h.base_version  # nothing retained: only the current version itself is reachable
    0
    """

    def __init__(self, *, max_versions: int = 1000, max_bytes: int = 4 << 20, start: int = 0):
        if max_versions < 1 or max_bytes < 1:
            raise ValueError("history bounds must be positive")
        self.max_versions = max_versions
        self.max_bytes = max_bytes
        self._entries: deque[HistoryEntry] = deque()
        self._bytes = 0
        self._base = start

    @property
    def base_version(self) -> int:
        """The oldest version a client can be brought forward from by deltas."""
        return self._base

    @property
    def head_version(self) -> int:
        return self._entries[-1].version if self._entries else self._base

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[HistoryEntry]:
        return iter(self._entries)

    def append(self, entry: HistoryEntry) -> None:
        """Add the entry for the next version; trims the oldest entries past the bounds."""
        entries = self._entries
        head = entries[-1].version if entries else self._base  # head_version, inlined
        if entry.version != head + 1:
            raise VersionError(
                f"history expects version {head + 1}, got {entry.version}",
                expected=head + 1,
                actual=entry.version,
            )
        entries.append(entry)
        self._bytes += entry.size
        while len(entries) > 1 and (
            len(entries) > self.max_versions or self._bytes > self.max_bytes
        ):
            old = entries.popleft()
            self._bytes -= old.size
            self._base = old.version

    def since(self, version: int) -> list[HistoryEntry]:
        """Entries for versions ``version + 1 .. head``.

        Raises :class:`~statesync.errors.HistoryTruncatedError` if ``version`` is older than
        :attr:`base_version`, :class:`~statesync.errors.VersionError` if it is in the future.
        """
        if version < self._base:
            raise HistoryTruncatedError(
                f"version {version} is older than the retained history (from {self._base})",
                expected=self._base,
                actual=version,
            )
        if version > self.head_version:
            raise VersionError(
                f"version {version} is newer than the head {self.head_version}",
                expected=self.head_version,
                actual=version,
            )
        wanted = self.head_version - version
        if wanted == 0:
            return []
        # Copy only the tail asked for (usually a few entries), not the whole deque.
        out = list(islice(reversed(self._entries), wanted))
        out.reverse()
        return out

    def entry(self, version: int) -> HistoryEntry:
        """The entry that created ``version``."""
        i = version - self._base - 1
        if not 0 <= i < len(self._entries):
            raise HistoryTruncatedError(f"no entry for version {version}", actual=version)
        return self._entries[i]

    def truncate_after(self, version: int) -> list[HistoryEntry]:
        """Drop and return (newest first) the entries after ``version`` (for rollback)."""
        dropped: list[HistoryEntry] = []
        while self._entries and self._entries[-1].version > version:
            e = self._entries.pop()
            self._bytes -= e.size
            dropped.append(e)
        return dropped
