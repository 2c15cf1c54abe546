"""The simulator's store: durable across server crashes, observed, slow and breakable.

Three layers, outermost first::

    ProcessStore   one per server incarnation: store latency (a crash can land between the
                   commit and its acknowledgement) and death (after a crash, nothing the dead
                   process still tries to do reaches the store)
    FaultyStore    injected write failures and lost acknowledgements (statesync.store.faults)
    ObservedStore  a MemoryStore (the data, which survives every crash of the simulated
                   server) that also records the authoritative full state at every committed
                   version, for the leak oracle and the end-of-run checks
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from statesync.delta import patch
from statesync.store.faults import InjectedFault
from statesync.store.memory import MemoryStore

if TYPE_CHECKING:
    import random
    from collections.abc import Sequence

    from statesync.records import Checkpoint, LogRecord, TableMeta
    from statesync.storage import RetentionPolicy, Store, StoredTable, TableInfo

__all__ = ["ObservedStore", "ProcessStore"]


class ObservedStore(MemoryStore):
    """A :class:`~statesync.store.memory.MemoryStore` that also keeps, per table, the full
    state at every version committed in the current epoch (states share structure, so this
    is cheap)."""

    def __init__(self) -> None:
        super().__init__()
        self.states: dict[str, dict[int, dict[str, Any]]] = {}
        self.heads: dict[str, int] = {}

    def state_at(self, table_id: str, version: int) -> dict[str, Any] | None:
        return self.states.get(table_id, {}).get(version)

    def latest(self, table_id: str) -> tuple[int, dict[str, Any]] | None:
        head = self.heads.get(table_id)
        if head is None:
            return None
        return head, self.states[table_id][head]

    def _start(self, checkpoint: Checkpoint, table_id: str) -> None:
        self.states[table_id] = {checkpoint.version: checkpoint.state}
        self.heads[table_id] = checkpoint.version

    async def create_table(self, meta: TableMeta, checkpoint: Checkpoint) -> None:
        await super().create_table(meta, checkpoint)
        self._start(checkpoint, meta.table_id)

    async def append(
        self,
        table_id: str,
        epoch: int,
        records: Sequence[LogRecord],
        checkpoint: Checkpoint | None = None,
    ) -> None:
        await super().append(table_id, epoch, records, checkpoint)
        states = self.states[table_id]
        for record in records:
            states[record.version] = patch(states[record.version - 1], record.delta)  # type: ignore[assignment]
            self.heads[table_id] = record.version

    async def reset(self, table_id: str, epoch: int, checkpoint: Checkpoint) -> None:
        await super().reset(table_id, epoch, checkpoint)
        self._start(checkpoint, table_id)


class ProcessStore:
    """One server process's connection to the store: each write waits up to ``latency``
    seconds before and after it reaches ``inner`` (drawn from ``rng``), and once :attr:`dead`
    every call fails (the process is gone; its leftover tasks cannot write)."""

    def __init__(self, inner: Store, rng: random.Random, latency: float) -> None:
        self.inner = inner
        self.dead = False
        self._rng = rng
        self._latency = latency

    async def _pause(self) -> None:
        if self._latency > 0:
            await asyncio.sleep(self._rng.random() * self._latency)
        if self.dead:
            raise InjectedFault("the server process is dead")

    async def create_table(self, meta: TableMeta, checkpoint: Checkpoint) -> None:
        await self._pause()
        await self.inner.create_table(meta, checkpoint)
        await self._pause()

    async def append(
        self,
        table_id: str,
        epoch: int,
        records: Sequence[LogRecord],
        checkpoint: Checkpoint | None = None,
    ) -> None:
        await self._pause()
        await self.inner.append(table_id, epoch, records, checkpoint)
        await self._pause()

    async def reset(self, table_id: str, epoch: int, checkpoint: Checkpoint) -> None:
        await self._pause()
        await self.inner.reset(table_id, epoch, checkpoint)
        await self._pause()

    async def load(self, table_id: str, *, retain: int = 0) -> StoredTable:
        await self._pause()
        return await self.inner.load(table_id, retain=retain)

    async def read_log(self, table_id: str, start: int, stop: int) -> list[LogRecord]:
        await self._pause()
        return await self.inner.read_log(table_id, start, stop)

    async def checkpoint_at(self, table_id: str, version: int) -> Checkpoint | None:
        await self._pause()
        return await self.inner.checkpoint_at(table_id, version)

    async def tables(self) -> list[TableInfo]:
        await self._pause()
        return await self.inner.tables()

    async def compact(self, table_id: str, policy: RetentionPolicy) -> int:
        await self._pause()
        return await self.inner.compact(table_id, policy)

    async def close(self) -> None:
        """The process closes its connection; the store itself lives on."""
