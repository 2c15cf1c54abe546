"""The tables a server process holds in memory, and who is connected to each.

:class:`TableRegistry` maps a table id to its running :class:`~statesync.server.table.TableActor`.
The first connection to a table loads it from the store (or creates it) and starts its actor;
a lock per table id makes concurrent first connections share one actor instead of racing
two writers onto the store. :meth:`TableRegistry.close` waits for opens in progress, refuses
later ones, and stops every actor (each answers its queued actions and flushes its
subscribers first).

An actor stays loaded while anyone uses its table. :meth:`TableRegistry.unload_idle` (the
server calls it every second) stops and forgets a table that has had no subscriber, no seated
connection and no open in progress for ``idle_unload`` seconds: a server that has seen many
tables keeps only the busy ones in memory. The next connection loads it again from the store.

The registry also counts each seated player's live connections per table (:meth:`attach` /
:meth:`detach`), so a player with two tabs open, or whose new connection overtakes the
old one's close, is marked disconnected only when the last connection goes.

A seat stays as it is for ``reconnect_grace`` seconds (10 by default) after its player's last
connection drops: a player back in time finds it untouched, and nothing is written (no
``$disconnect``, no ``$connect``, no version), so a network blip or a reconnect storm costs
the table nothing and a game that acts on a disconnect (hold'em folds a player whose turn it
is) does not act on a blip. A player who said goodbye (``Bye``) is marked disconnected at
once. :meth:`TableRegistry.release_absent` (the server calls it every second) marks
disconnected those not back in time. The same holds across a restart or a crash, which leave
seats marked connected with nobody behind them: when a table is loaded, every seat its state
marks connected is treated as just dropped.

:class:`TimedStore` wraps the caller's store to feed the ``store_latency_seconds`` histogram
with the duration of every :meth:`~statesync.storage.Store.append` (one group-committed batch
of actions), which is exactly "time to make a batch durable" and costs one clock read per
batch. The other methods are passed through untimed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from statesync import reasons
from statesync.actions import Rejected
from statesync.server.table import TableActor

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from statesync.game import Game
    from statesync.records import Checkpoint, LogRecord, TableMeta
    from statesync.server.metrics import Metrics
    from statesync.storage import RetentionPolicy, Store, StoredTable, TableInfo

__all__ = ["RegistryClosedError", "TableRegistry", "TimedStore"]

log = logging.getLogger(__name__)


class RegistryClosedError(RuntimeError):
    """The registry is closing (the server shuts down): no table can be opened."""


class TableRegistry:
    """Get-or-open one :class:`TableActor` per table id (see the module docstring).

    ``tables`` is the live mapping of loaded actors (shared with :class:`Server.tables
    <statesync.server.ws.Server>`).
    """

    def __init__(
        self,
        game: Game,
        store: Store,
        *,
        game_ref: str = "",
        tick_rate: float | None = None,
        clock: Callable[[], float] = time.time,
        metrics: Metrics,
        idle_unload: float | None = 300.0,
        reconnect_grace: float = 10.0,
    ) -> None:
        if idle_unload is not None and not idle_unload > 0:
            raise ValueError("idle_unload must be positive (or None: never unload)")
        if not reconnect_grace >= 0:
            raise ValueError("reconnect_grace must be >= 0 (0: no grace)")
        self.idle_unload = idle_unload
        self.reconnect_grace = reconnect_grace
        self.game = game
        self.store = store
        self.game_ref = game_ref
        self.tick_rate = tick_rate
        self.clock = clock
        self.metrics = metrics
        self.tables: dict[str, TableActor] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._presence: dict[tuple[str, str], int] = {}
        self._seated: dict[str, int] = {}  # live seated connections per table
        self._used: dict[str, float] = {}
        self._away: dict[tuple[str, str], float] = {}  # (table, player): when to release
        self._closed = False

    async def get(self, table_id: str) -> TableActor:
        """The running actor of ``table_id``, loading or creating the table on first use.

        Raises :class:`RegistryClosedError` once :meth:`close` started, and what
        :meth:`TableActor.open` raises (a store error, a damaged table)."""
        self._used[table_id] = self.clock()
        actor = self.tables.get(table_id)
        if actor is not None:
            return actor
        if self._closed:
            raise RegistryClosedError("the server is shutting down")
        lock = self._locks.setdefault(table_id, asyncio.Lock())
        async with lock:
            if self._closed:
                raise RegistryClosedError("the server is shutting down")
            actor = self.tables.get(table_id)
            if actor is None:
                actor = await TableActor.open(
                    self.game,
                    self.store,
                    table_id,
                    game_ref=self.game_ref,
                    tick_rate=self.tick_rate,
                    clock=self.clock,
                )
                actor.start()
                self.tables[table_id] = actor
                self._presume_away(table_id, actor)
                self.metrics.set("tables", len(self.tables))
            self._used[table_id] = self.clock()
            return actor

    def _presume_away(self, table_id: str, actor: TableActor) -> None:
        """Start the grace of the seats a just-loaded table marks connected."""
        deadline = self.clock() + self.reconnect_grace
        for player, seat in actor.sync.state["seats"].items():
            if seat["connected"]:
                self._away[table_id, player] = deadline
        self._count_away()

    def _count_away(self) -> None:
        self.metrics.set("seats_away", len(self._away))

    def away(self, table_id: str, player: str) -> bool:
        """``player``'s last connection to ``table_id`` dropped (without a ``Bye``). Returns
        True when the seat is to be marked disconnected now (no grace), else starts the
        grace: :meth:`release_absent` marks it once the grace is over, unless they are back."""
        if self.reconnect_grace == 0:
            return True
        self._away[table_id, player] = self.clock() + self.reconnect_grace
        self._count_away()
        return False

    async def release_absent(self, now: float | None = None) -> list[tuple[str, str]]:
        """Mark disconnected every player whose grace is over at ``now`` (default: the clock)
        and who is not back; returns the ``(table, player)`` pairs so marked."""
        now = self.clock() if now is None else now
        jobs = []
        for key, deadline in list(self._away.items()):
            if deadline > now:
                continue
            del self._away[key]
            actor = self.tables.get(key[0])
            if actor is not None:
                jobs.append(self._release(key[0], actor, key[1]))
        self._count_away()
        released = await asyncio.gather(*jobs)
        return [pair for pair in released if pair is not None]

    async def _release(
        self, table_id: str, actor: TableActor, player: str
    ) -> tuple[str, str] | None:
        # Checked and queued in one step: a connection that attaches later queues its
        # $connect behind this $disconnect, so the seat ends up connected.
        if (table_id, player) in self._presence:
            return None
        try:
            outcome = await actor.set_connected(player, False)
        except RuntimeError:  # the actor is stopping: the seat stays as it is
            return None
        if isinstance(outcome, Rejected) and outcome.code == reasons.STORE_UNAVAILABLE:
            # Not recorded: try again on the next call (the server's next tick).
            self._away[table_id, player] = self.clock()
            self._count_away()
            return None
        if not outcome.ok:  # e.g. no longer seated: nothing to release
            return None
        log.info("table %r: %r is not back: marked disconnected", table_id, player)
        self.metrics.inc("seats_released_total")
        return table_id, player

    def _busy(self, table_id: str, actor: TableActor, *, locked_by_us: bool = False) -> bool:
        """Someone uses the table: a subscriber, a seated connection, or an open under way."""
        lock = self._locks.get(table_id)
        opening = lock is not None and lock.locked() and not locked_by_us
        return bool(actor.subscriptions or opening or table_id in self._seated)

    async def unload_idle(self, now: float | None = None) -> list[str]:
        """Stop and forget every table unused for ``idle_unload`` seconds at ``now`` (default:
        the clock); returns their ids. Each actor answers its queued actions first. Does
        nothing when ``idle_unload`` is ``None`` or the registry is closing."""
        if self.idle_unload is None or self._closed:
            return []
        now = self.clock() if now is None else now
        unloaded = []
        for table_id, actor in list(self.tables.items()):
            if self._busy(table_id, actor):
                self._used[table_id] = now
                continue
            if now - self._used.get(table_id, now) < self.idle_unload:
                continue
            lock = self._locks.setdefault(table_id, asyncio.Lock())
            async with lock:  # no open of this table can start meanwhile
                busy = self._busy(table_id, actor, locked_by_us=True)
                if self.tables.get(table_id) is not actor or busy:
                    continue
                del self.tables[table_id]
                self._used.pop(table_id, None)
                for key in [k for k in self._away if k[0] == table_id]:
                    del self._away[key]  # nobody is connected: the next load starts over
                self._count_away()
                self.metrics.set("tables", len(self.tables))
                try:
                    await actor.stop()
                except Exception:  # pragma: no cover - an actor that crashed: already logged
                    log.exception("table %r failed while unloading", table_id)
                unloaded.append(table_id)
        return unloaded

    def attach(self, table_id: str, player: str) -> bool:
        """Count a new connection of ``player``; True if the seat is to be marked connected:
        this is their only connection, and not a return within the grace to a seat still
        marked connected (that seat stays as it is, and no version is written)."""
        key = (table_id, player)
        count = self._presence[key] = self._presence.get(key, 0) + 1
        self._seated[table_id] = self._seated.get(table_id, 0) + 1
        if self._away.pop(key, None) is None:
            return count == 1
        self._count_away()
        actor = self.tables.get(table_id)
        seat = actor.sync.state["seats"].get(player) if actor is not None else None
        return count == 1 and not (seat is not None and seat["connected"])

    def detach(self, table_id: str, player: str) -> bool:
        """Count a closed connection of ``player``; True if it was their last one."""
        key = (table_id, player)
        if key in self._presence:
            seated = self._seated.pop(table_id) - 1
            if seated:
                self._seated[table_id] = seated
        left = self._presence.get(key, 0) - 1
        if left > 0:
            self._presence[key] = left
            return False
        self._presence.pop(key, None)
        return True

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    async def close(self) -> None:
        """Refuse new opens, wait for those in progress, then stop every actor (concurrently;
        each answers its queued actions and flushes first). The store is not closed.
        Re-raises the first error of an actor that crashed, after stopping all of them."""
        self._closed = True
        self._away.clear()
        self._count_away()
        for lock in list(self._locks.values()):
            async with lock:  # an open in progress finishes and registers its actor
                pass
        actors = list(self.tables.values())
        results = await asyncio.gather(*(a.stop() for a in actors), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result


class TimedStore:
    """A :class:`~statesync.storage.Store` that observes the duration of every ``append``
    in ``metrics`` (``store_latency_seconds``) and otherwise delegates to ``inner``.

    ``clock`` should be monotonic (default :func:`time.perf_counter`)."""

    def __init__(
        self, inner: Store, metrics: Metrics, *, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.inner = inner
        self.metrics = metrics
        self._clock = clock

    async def create_table(self, meta: TableMeta, checkpoint: Checkpoint) -> None:
        """See :meth:`Store.create_table <statesync.storage.Store.create_table>`."""
        await self.inner.create_table(meta, checkpoint)

    async def append(
        self,
        table_id: str,
        epoch: int,
        records: Sequence[LogRecord],
        checkpoint: Checkpoint | None = None,
    ) -> None:
        """Append through the inner store and record how long it took to be durable."""
        start = self._clock()
        try:
            await self.inner.append(table_id, epoch, records, checkpoint)
        finally:
            self.metrics.observe("store_latency_seconds", max(0.0, self._clock() - start))

    async def reset(self, table_id: str, epoch: int, checkpoint: Checkpoint) -> None:
        """See :meth:`Store.reset <statesync.storage.Store.reset>`."""
        await self.inner.reset(table_id, epoch, checkpoint)

    async def load(self, table_id: str, *, retain: int = 0) -> StoredTable:
        """See :meth:`Store.load <statesync.storage.Store.load>`."""
        return await self.inner.load(table_id, retain=retain)

    async def read_log(self, table_id: str, start: int, stop: int) -> list[LogRecord]:
        """See :meth:`Store.read_log <statesync.storage.Store.read_log>`."""
        return await self.inner.read_log(table_id, start, stop)

    async def checkpoint_at(self, table_id: str, version: int) -> Checkpoint | None:
        """See :meth:`Store.checkpoint_at <statesync.storage.Store.checkpoint_at>`."""
        return await self.inner.checkpoint_at(table_id, version)

    async def tables(self) -> list[TableInfo]:
        """See :meth:`Store.tables <statesync.storage.Store.tables>`."""
        return await self.inner.tables()

    async def compact(self, table_id: str, policy: RetentionPolicy) -> int:
        """See :meth:`Store.compact <statesync.storage.Store.compact>`."""
        return await self.inner.compact(table_id, policy)

    async def close(self) -> None:
        """Does nothing: the caller owns the inner store and closes it."""
