"""The storage interface the engine writes through (implementations live in
:mod:`statesync.store`, an in-memory one in :mod:`statesync.testing`).

An action is acknowledged only after :meth:`Store.append` returns: the entries are durable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from statesync.history import HistoryEntry
    from statesync.snapshot import StateSnapshot


class Store(Protocol):
    """Durable storage for tables. Both methods raise on failure; nothing is half-written."""

    async def append(self, table_id: str, epoch: int, entries: Sequence[HistoryEntry]) -> None:
        """Durably append the entries (consecutive versions) of one table, atomically.

        Must fail if any of those versions already exists for the table (single writer)."""
        ...

    async def save_snapshot(self, table_id: str, snapshot: StateSnapshot) -> None:
        """Durably store a full snapshot of one table."""
        ...
