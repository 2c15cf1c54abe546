"""An in-memory :class:`~statesync.storage.Store`: the reference implementation for tests.

It keeps the encoded bytes, not the objects, so that it round-trips records exactly as a
database would and shares nothing with the tables that write to it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from statesync.errors import TableExistsError, TableNotFoundError
from statesync.records import Checkpoint, LogRecord, TableMeta, decode_action, decode_delta
from statesync.storage import RetentionPolicy, StoredTable, TableInfo
from statesync.store.rows import check_consecutive, check_fence

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass
class _Row:
    version: int
    epoch: int
    action: bytes
    delta: bytes
    hash: str
    timestamp: float

    def record(self) -> LogRecord:
        return LogRecord(
            self.version,
            self.epoch,
            decode_action(self.action),
            decode_delta(self.delta),
            self.hash,
            self.timestamp,
        )


@dataclass
class _Table:
    meta: bytes
    epoch: int
    head: int
    created: float
    updated: float
    fork: int = 0
    log: list[_Row] = field(default_factory=list)
    checkpoints: dict[int, bytes] = field(default_factory=dict)


class MemoryStore:
    """Tables in a dict; nothing survives the process.

    >>> import asyncio
    >>> store = MemoryStore()
    >>> asyncio.run(store.tables())
    []
    """

    def __init__(self) -> None:
        self._tables: dict[str, _Table] = {}

    def _get(self, table_id: str) -> _Table:
        t = self._tables.get(table_id)
        if t is None:
            raise TableNotFoundError(f"no table {table_id!r}")
        return t

    async def create_table(self, meta: TableMeta, checkpoint: Checkpoint) -> None:
        if meta.table_id in self._tables:
            raise TableExistsError(f"table {meta.table_id!r} already exists")
        t = _Table(
            meta.encode(),
            checkpoint.epoch,
            checkpoint.version,
            meta.created,
            checkpoint.timestamp,
        )
        t.checkpoints[checkpoint.version] = checkpoint.encode()
        self._tables[meta.table_id] = t

    async def append(
        self,
        table_id: str,
        epoch: int,
        records: Sequence[LogRecord],
        checkpoint: Checkpoint | None = None,
    ) -> None:
        t = self._get(table_id)
        check_consecutive(table_id, records)
        check_fence(table_id, t.epoch, t.head, epoch, records[0].version if records else None)
        last = t.head + len(records)
        if checkpoint is not None and not t.head <= checkpoint.version <= last:
            raise ValueError(f"checkpoint {checkpoint.version} is outside {t.head}..{last}")
        rows = [
            _Row(r.version, epoch, r.encode_action(), r.encode_delta(), r.hash, r.timestamp)
            for r in records
        ]
        blob = checkpoint.encode() if checkpoint is not None else None
        # Everything is encoded: nothing below can fail half-way.
        t.log.extend(rows)
        if rows:
            t.head = last
            t.updated = rows[-1].timestamp
        if checkpoint is not None and blob is not None:
            t.checkpoints[checkpoint.version] = blob

    async def reset(self, table_id: str, epoch: int, checkpoint: Checkpoint) -> None:
        t = self._get(table_id)
        check_fence(table_id, t.epoch, t.head, epoch, None)
        if checkpoint.epoch <= epoch or checkpoint.version > t.head:
            raise ValueError("reset needs a newer epoch and a version at or before the head")
        blob = checkpoint.encode()
        t.log = [r for r in t.log if r.version <= checkpoint.version]
        t.checkpoints = {v: c for v, c in t.checkpoints.items() if v < checkpoint.version}
        t.checkpoints[checkpoint.version] = blob
        t.epoch = checkpoint.epoch
        t.fork = checkpoint.version
        t.head = checkpoint.version
        t.updated = checkpoint.timestamp

    async def load(self, table_id: str, *, retain: int = 0) -> StoredTable:
        t = self._get(table_id)
        versions = sorted(t.checkpoints)
        i = bisect.bisect_right(versions, t.head - retain) - 1
        base = versions[max(i, 0)]
        checkpoint = Checkpoint.decode(t.checkpoints[base])
        records = [r.record() for r in t.log if r.version > base]
        return StoredTable(TableMeta.decode(t.meta), checkpoint, records, t.epoch, t.fork)

    async def read_log(self, table_id: str, start: int, stop: int) -> list[LogRecord]:
        t = self._get(table_id)
        return [r.record() for r in t.log if start <= r.version <= stop]

    async def checkpoint_at(self, table_id: str, version: int) -> Checkpoint | None:
        t = self._get(table_id)
        older = [v for v in t.checkpoints if v <= version]
        return Checkpoint.decode(t.checkpoints[max(older)]) if older else None

    async def tables(self) -> list[TableInfo]:
        out = []
        for table_id in sorted(self._tables):
            t = self._tables[table_id]
            out.append(
                TableInfo(
                    table_id,
                    TableMeta.decode(t.meta).game,
                    t.epoch,
                    t.head,
                    t.created,
                    t.updated,
                    min(t.checkpoints),
                )
            )
        return out

    async def compact(self, table_id: str, policy: RetentionPolicy) -> int:
        t = self._get(table_id)
        versions = sorted(t.checkpoints)
        keep = versions[-policy.keep_checkpoints :]
        floor = min(keep[0], t.head - policy.keep_versions)
        t.checkpoints = {v: t.checkpoints[v] for v in versions if v >= keep[0]}
        before = len(t.log)
        t.log = [r for r in t.log if r.version > floor]
        return before - len(t.log)

    async def close(self) -> None:
        return None
