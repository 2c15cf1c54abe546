"""The storage interface the engine writes through; implementations live in
:mod:`statesync.store` (memory, SQLite, PostgreSQL) and all pass one shared test suite.

Contract, for every implementation:

* **Durable on return.** :meth:`Store.append` returns only after the records are committed;
  an action is acknowledged only after that. Every method is atomic: it fails with nothing
  written.
* **Single writer, enforced by the database.** A table has a *head* version and an *epoch*.
  ``append`` must continue the head exactly (first record = head + 1, consecutive) in the
  table's current epoch; otherwise it raises :class:`~statesync.errors.FencedError`. The check
  is a conditional update plus a unique key on ``(table_id, version)``, so of two processes
  that both believe they own a table only one can write each version; the loser is fenced and
  must reload.
* **Epochs.** :meth:`Store.reset` rewinds a table to a checkpoint and moves it to a new epoch
  (rollback, restore): log records and checkpoints after it are gone, and writers still in
  the old epoch are fenced.
* **Recovery.** :meth:`Store.load` returns a checkpoint and every record after it, so the
  table can be rebuilt and its hash checked against the last record's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from statesync.records import Checkpoint, LogRecord, TableMeta


@dataclass(frozen=True, slots=True)
class StoredTable:
    """What :meth:`Store.load` returns: the meta, a checkpoint, and every record after it
    (consecutive versions up to the head)."""

    meta: TableMeta
    checkpoint: Checkpoint
    records: list[LogRecord]
    epoch: int
    """The table's current epoch."""
    fork_version: int
    """The version the current epoch forked from the previous one (0 in epoch 0)."""

    @property
    def head(self) -> int:
        return self.records[-1].version if self.records else self.checkpoint.version


@dataclass(frozen=True, slots=True)
class TableInfo:
    """One row of :meth:`Store.tables`."""

    table_id: str
    game: str
    epoch: int
    head: int
    created: float
    updated: float
    oldest_version: int
    """The oldest version the store can still rebuild (its oldest checkpoint)."""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """What :meth:`Store.compact` keeps: the newest ``keep_checkpoints`` checkpoints, and the
    log from the oldest of those on, but never fewer than ``keep_versions`` log records.

    >>> RetentionPolicy().keep_checkpoints
    2
    """

    keep_checkpoints: int = 2
    keep_versions: int = 1000

    def __post_init__(self) -> None:
        if self.keep_checkpoints < 1 or self.keep_versions < 0:
            raise ValueError("keep at least one checkpoint and a non-negative log")


class Store(Protocol):
    """Durable storage of tables (see the module docstring for the contract)."""

    async def create_table(self, meta: TableMeta, checkpoint: Checkpoint) -> None:
        """Create a table at ``checkpoint`` (usually version 0). Raises
        :class:`~statesync.errors.TableExistsError` if the id is taken."""
        ...

    async def append(
        self,
        table_id: str,
        epoch: int,
        records: Sequence[LogRecord],
        checkpoint: Checkpoint | None = None,
    ) -> None:
        """Durably append consecutive records continuing the head (and optionally a
        checkpoint at a version they reach), atomically. Raises
        :class:`~statesync.errors.FencedError` if the table's head or epoch differ,
        :class:`~statesync.errors.TableNotFoundError` if there is no such table."""
        ...

    async def reset(self, table_id: str, epoch: int, checkpoint: Checkpoint) -> None:
        """Rewind the table (now in ``epoch``) to ``checkpoint`` and move it to
        ``checkpoint.epoch``, which must be newer: later records and checkpoints are
        dropped. Raises :class:`~statesync.errors.FencedError` if the epoch differs."""
        ...

    async def load(self, table_id: str, *, retain: int = 0) -> StoredTable:
        """The newest checkpoint at least ``retain`` versions behind the head (or the
        oldest one there is) and every record after it."""
        ...

    async def read_log(self, table_id: str, start: int, stop: int) -> list[LogRecord]:
        """The records of versions ``start..stop`` (inclusive) that the store still holds."""
        ...

    async def checkpoint_at(self, table_id: str, version: int) -> Checkpoint | None:
        """The newest checkpoint at or before ``version``, or ``None``."""
        ...

    async def tables(self) -> list[TableInfo]:
        """Every table, sorted by id."""
        ...

    async def compact(self, table_id: str, policy: RetentionPolicy) -> int:
        """Drop checkpoints and log records the policy does not keep; returns how many
        log records were dropped."""
        ...

    async def close(self) -> None:
        """Finish pending writes and release connections."""
        ...
