"""A fault-injecting :class:`~statesync.storage.Store` wrapper, for tests and simulations.

>>> import asyncio
>>> from statesync.store.memory import MemoryStore
>>> store = FaultyStore(MemoryStore())
>>> store.fail_next(1)
>>> store.pending_failures
1
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from statesync.errors import StoreError
from statesync.rng import Rng

if TYPE_CHECKING:
    from collections.abc import Sequence

    from statesync.records import Checkpoint, LogRecord, TableMeta
    from statesync.storage import RetentionPolicy, Store, StoredTable, TableInfo


class InjectedFault(StoreError):
    """The failure a :class:`FaultyStore` raises."""

    code = "store/injected_fault"


class FaultyStore:
    """Wraps a store and makes its writes fail on demand.

    * :meth:`fail_next` -- the next ``n`` writes fail (before reaching the inner store);
    * :attr:`down` -- while true, every read and write fails;
    * ``fail_rate`` -- each write fails with this probability (seeded, reproducible);
    * :meth:`lose_next_ack` -- the next write *commits* but reports a failure (the
      ambiguous case a network error after COMMIT produces).
    """

    def __init__(self, inner: Store, *, fail_rate: float = 0.0, seed: int = 0) -> None:
        self.inner = inner
        self.fail_rate = fail_rate
        self.down = False
        self.pending_failures = 0
        self.lost_acks = 0
        self.injected = 0
        self._rng = Rng(seed)

    def fail_next(self, n: int = 1) -> None:
        """Make the next ``n`` writes fail."""
        self.pending_failures += n

    def lose_next_ack(self, n: int = 1) -> None:
        """Make the next ``n`` writes commit, then raise as if the connection dropped."""
        self.lost_acks += n

    def _before(self, write: bool) -> None:
        fail = self.down
        if write and not fail and self.pending_failures > 0:
            self.pending_failures -= 1
            fail = True
        if write and not fail and self.fail_rate > 0 and self._rng.random() < self.fail_rate:
            fail = True
        if fail:
            self.injected += 1
            raise InjectedFault("injected store failure")

    def _after(self) -> None:
        if self.lost_acks > 0:
            self.lost_acks -= 1
            self.injected += 1
            raise InjectedFault("injected failure after commit")

    async def create_table(self, meta: TableMeta, checkpoint: Checkpoint) -> None:
        self._before(True)
        await self.inner.create_table(meta, checkpoint)
        self._after()

    async def append(
        self,
        table_id: str,
        epoch: int,
        records: Sequence[LogRecord],
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self._before(True)
        await self.inner.append(table_id, epoch, records, checkpoint)
        self._after()

    async def reset(self, table_id: str, epoch: int, checkpoint: Checkpoint) -> None:
        self._before(True)
        await self.inner.reset(table_id, epoch, checkpoint)
        self._after()

    async def load(self, table_id: str, *, retain: int = 0) -> StoredTable:
        self._before(False)
        return await self.inner.load(table_id, retain=retain)

    async def read_log(self, table_id: str, start: int, stop: int) -> list[LogRecord]:
        self._before(False)
        return await self.inner.read_log(table_id, start, stop)

    async def checkpoint_at(self, table_id: str, version: int) -> Checkpoint | None:
        self._before(False)
        return await self.inner.checkpoint_at(table_id, version)

    async def tables(self) -> list[TableInfo]:
        self._before(False)
        return await self.inner.tables()

    async def compact(self, table_id: str, policy: RetentionPolicy) -> int:
        self._before(True)
        return await self.inner.compact(table_id, policy)

    async def close(self) -> None:
        await self.inner.close()
