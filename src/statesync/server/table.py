"""``TableActor``: the single writer in front of one table (the Durable Object equivalent).

Theory of operation
-------------------
A :class:`~statesync.synchronizer.StateSynchronizer` must never run two ``submit`` calls at
once, and an action may be answered only once it is durable. The actor owns the synchronizer
and is the only code that touches it: everything that changes the table goes through one
:class:`asyncio.Queue` and one task, the *loop*::

    act() / join() / leave() / set_connected() / rollback()      subscribe() / resume() / resync()
            │ (job + future)                                            │ (wake-up job)
            ▼                                                           ▼
      ┌──────────────────────────── queue ────────────────────────────────┐
      └───────────────────────────────┬───────────────────────────────────┘
                                      ▼
      loop: take everything waiting (up to max_batch)
            → one ``await sync.submit(batch)``       (group commit: one store append)
            → resolve each job's future with its outcome (only now: the batch is durable)
            → fenced / submit raised?  reload the table from the store
            → flush: bring every subscriber up to date (now, or on the next tick)

**Flushing.** Subscribers are grouped by ``(viewer, version, epoch)``: each group gets one
update, so a thousand spectators at the same version cost one squashed delta, and the very
same update object is handed to each of their ``send`` callbacks (the connection layer may
encode it once). The groups at one ``(version, epoch)`` are served by one
:meth:`~statesync.synchronizer.StateSynchronizer.sync_views` call, in which the players whose
private section the change leaves alone share one filtered delta. A
subscriber always gets its *own* view (a player id, or ``None`` for a spectator, never the
full state): hidden information stays on the server. Subscribers already at the table's
version and epoch are skipped.

**Shared encoding.** A subscriber made with a :class:`~statesync.fanout.SharedCursor` (a
protocol-version-2 connection) takes the table's shared stream: the public operations of
an update are encoded once per flush, as one chunk of a
:class:`~statesync.fanout.SharedStream`, and such subscribers get a
:class:`~statesync.fanout.SplitUpdate` (the chunk, their private operations, and the whole
update for a connection that turns out not to be in step). Only the group of subscribers at
the stream's version gets chunks. The stream starts a new generation (a chunk every receiver
decodes from a fresh decoder) when at least as many subscribers at its version are behind as
in step, or when some are behind and it has run for :data:`~statesync.fanout.RESET_AFTER`
chunks; a subscriber behind gets its whole update on its own stream meanwhile.

**Back-pressure.** ``send`` never blocks; it returns False when the connection's outbox is
full. The subscriber is then *lagging*: it keeps its last delivered version and gets nothing
until the connection layer calls :meth:`Subscription.resume`, after which one flush sends it a
single update squashed from that version (or a snapshot, as ``sync`` decides). A slow reader
costs nothing while it lags, and never receives a gap.

**Timing.** With ``tick_rate=None`` (turn-based) the actor flushes right after every batch.
With a ``tick_rate``, actions are still committed and answered as they arrive, but updates are
coalesced and flushed once per tick, measured with the ``clock`` given (ticks missed while the
loop was busy are skipped, not replayed in a burst, and counted). When the game itself is
real-time (``game.tick_rate > 0``), each tick also submits the system action ``$tick`` in
that tick's batch.

**Failures.** A store failure is ambiguous: the write may have committed before the error
(a lost acknowledgement). So before answering a batch the store failed on, the actor reloads
the table from the store -- the source of truth -- and answers each of those actions from the
log: accepted at the version the log holds it at, or ``store/unavailable`` (now known *not*
to have taken effect; the client may retry). While the store cannot be read, those answers
wait (the reload is retried with a growing delay, and later actions queue behind); an actor
told to stop meanwhile leaves them unanswered rather than guess, and the client re-sends them
after reconnecting. The same reload serves a *fenced* synchronizer (another process wrote the
table) and one whose ``submit`` raised (its memory can no longer be trusted).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from statesync import reasons
from statesync.actions import Accepted, PlayerAction, Rejected
from statesync.errors import TableExistsError, TableNotFoundError, WireError
from statesync.fanout import SharedChunk, SharedCursor, SharedStream, SplitUpdate, split_view
from statesync.snapshot import StateDelta
from statesync.synchronizer import (
    CONNECT,
    DISCONNECT,
    JOIN,
    LEAVE,
    SYSTEM_CLIENT,
    TICK,
    StateSynchronizer,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from statesync.actions import Outcome
    from statesync.delta import Delta
    from statesync.game import Game
    from statesync.snapshot import StateSnapshot
    from statesync.storage import Store
    from statesync.value import Value

__all__ = ["Subscription", "TableActor"]

log = logging.getLogger(__name__)

_ACT, _ROLLBACK, _WAKE, _STOP = "act", "rollback", "wake", "stop"
_SYSTEM = frozenset({JOIN, LEAVE, CONNECT, DISCONNECT})


class _Reply:
    """A job's answer handed to a callback (:meth:`TableActor.act_nowait`), with the part of
    the future interface the loop uses. The callback runs in the actor's loop: what it
    raises is logged, never let into the loop."""

    __slots__ = ("_answered", "_callback")

    def __init__(self, callback: Callable[[Outcome | BaseException], object]) -> None:
        self._callback = callback
        self._answered = False

    def done(self) -> bool:
        return self._answered

    def set_result(self, outcome: Any) -> None:  # an Outcome: only act jobs carry a _Reply
        self._answer(outcome)

    def set_exception(self, error: BaseException) -> None:
        self._answer(error)

    def _answer(self, value: Outcome | BaseException) -> None:
        self._answered = True
        try:
            self._callback(value)
        except Exception:
            log.exception("statesync table actor: an act_nowait callback failed")


@dataclass(slots=True)
class _Job:
    """One entry of the actor's queue: ``kind`` is ``"act"``, a ``$`` system type,
    ``"rollback"``, ``"wake"`` (flush soon) or ``"stop"``."""

    kind: str
    action: PlayerAction | None = None
    player: str = ""
    version: int = 0
    future: asyncio.Future[Any] | _Reply | None = None


class _Inbox:
    """The actor's job queue: a deque and its one consumer's wake-up. (An
    :class:`asyncio.Queue` does the same with more machinery per job: a getter deque, a
    loop check per call, a future per wait.)"""

    __slots__ = ("_jobs", "_waiter")

    def __init__(self) -> None:
        self._jobs: deque[_Job] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, job: _Job) -> None:
        self._jobs.append(job)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Return once a job is waiting (at once if one is)."""
        while not self._jobs:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def take(self, limit: int | None) -> list[_Job]:
        """Up to ``limit`` (``None``: all) waiting jobs, oldest first."""
        jobs = self._jobs
        if limit is None or len(jobs) <= limit:
            out = list(jobs)
            jobs.clear()
            return out
        return [jobs.popleft() for _ in range(limit)]


class Subscription:
    """One connected client or spectator receiving updates of one table.

    Created by :meth:`TableActor.subscribe`. :attr:`version` and :attr:`epoch` are what the
    subscriber holds (the last update its ``send`` accepted); :attr:`viewer` is whose view it
    gets (``None``: a spectator, public state only).
    """

    __slots__ = (
        "_actor",
        "_send",
        "_snapshot",
        "closed",
        "cursor",
        "epoch",
        "lagging",
        "version",
        "viewer",
    )

    def __init__(
        self,
        actor: TableActor,
        viewer: str | None,
        version: int,
        epoch: int | None,
        send: Callable[[StateDelta | SplitUpdate | StateSnapshot], bool],
        cursor: SharedCursor | None = None,
    ) -> None:
        self._actor = actor
        self._send = send
        self._snapshot = False
        self.cursor = cursor
        """The connection's place in the table's shared stream, or ``None``: it gets plain
        updates, never a :class:`~statesync.fanout.SplitUpdate`."""
        self.viewer = viewer
        """The player id whose view this subscriber gets, or ``None`` for a spectator."""
        self.version = version
        """The version the subscriber holds (-1: nothing yet)."""
        self.epoch = epoch
        """The epoch of :attr:`version` (``None`` until the first update, if not given)."""
        self.lagging = False
        """True after ``send`` returned False; nothing is sent until :meth:`resume`."""
        self.closed = False
        """True after :meth:`close`."""

    def resume(self) -> None:
        """The connection's outbox has drained: send one squashed update from :attr:`version`
        on the next flush. Does nothing unless the subscriber is lagging."""
        if self.lagging and not self.closed:
            self.lagging = False
            self._actor._wake()

    def resync(self) -> None:
        """Send a snapshot of the subscriber's view on the next flush (the client found a hash
        mismatch). Clears :attr:`lagging` too: the client asked, so it has room."""
        if not self.closed:
            self._snapshot = True
            self.lagging = False
            self._actor._wake()

    def close(self) -> None:
        """Unsubscribe; nothing more is sent. Idempotent."""
        if not self.closed:
            self.closed = True
            self._actor._subs.pop(self, None)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "lagging" if self.lagging else "live"
        return f"<Subscription {self.viewer!r} v{self.version} e{self.epoch} {state}>"


class TableActor:
    """The single writer of one table: serializes actions, commits them in batches, answers
    each once it is durable, and keeps every subscriber up to date (see the module docstring).

    Create it with :meth:`open`, then :meth:`start` it; :meth:`stop` drains it. The current
    synchronizer is :attr:`sync` (replaced when the table is reloaded: do not keep it).
    """

    def __init__(
        self,
        sync: StateSynchronizer,
        store: Store,
        *,
        tick_rate: float | None = None,
        clock: Callable[[], float] = time.time,
        history_versions: int = 1000,
        max_batch: int = 256,
    ) -> None:
        """Wrap an existing synchronizer (usually via :meth:`open`). Raises
        :class:`ValueError` for a non-positive ``tick_rate`` or ``max_batch``."""
        if tick_rate is not None and not tick_rate > 0:
            raise ValueError("tick_rate must be positive (or None for turn-based tables)")
        if max_batch < 1:
            raise ValueError("max_batch must be positive")
        self._sync = sync
        self._store = store
        self._clock = clock
        self._history_versions = history_versions
        self._max_batch = max_batch
        self._interval = None if tick_rate is None else 1.0 / tick_rate
        self._next_tick = 0.0
        self._ticks_game = sync.game.tick_rate > 0
        self._queue = _Inbox()
        self._subs: dict[Subscription, None] = {}  # insertion-ordered set
        self._stream = SharedStream()
        self._task: asyncio.Task[None] | None = None
        self._inflight: list[_Job] = []
        self._closing = False
        self._stale = False
        self._wake_queued = False
        self.stats: dict[str, int] = dict.fromkeys(
            (
                "actions",
                "rejected",
                "batches",
                "flushes",
                "syncs",
                "reloads",
                "reload_failures",
                "lagging",
                "errors",
                "send_errors",
                "ticks",
                "ticks_skipped",
                "store_waits",
                "recovered",
            ),
            0,
        )
        """Counters: ``actions`` submitted (system ones included), ``rejected`` outcomes,
        ``batches`` (``submit`` calls), ``flushes``, ``syncs`` (``sync()`` calls), ``reloads``
        and ``reload_failures``, ``lagging`` events, ``errors`` (exceptions escaping
        ``submit``), ``send_errors`` (a ``send`` raised; that subscriber was closed),
        ``ticks`` and ``ticks_skipped``, ``store_waits`` (retries of a reload while the store
        was down) and ``recovered`` (actions the store failed on that turned out committed)."""

    @classmethod
    async def open(
        cls,
        game: Game,
        store: Store,
        table_id: str,
        *,
        create_players: Sequence[str] = (),
        seed: int = 0,
        config: Value = None,
        game_ref: str = "",
        tick_rate: float | None = None,
        clock: Callable[[], float] = time.time,
        history_versions: int = 1000,
        max_batch: int = 256,
    ) -> TableActor:
        """Load ``table_id`` from ``store``, or create it (with ``create_players``, ``seed``,
        ``config`` and ``game_ref``) if it does not exist. The actor is not started.

        Raises what :meth:`StateSynchronizer.load` raises for a damaged table
        (:class:`~statesync.errors.HashMismatchError`, ``StoreCorruptError``) and any
        :class:`~statesync.errors.StoreError` of the store.
        """
        kw: dict[str, Any] = {"clock": clock, "history_versions": history_versions}
        try:
            sync = await StateSynchronizer.load(store, table_id, game, **kw)
        except TableNotFoundError:
            try:
                sync = await StateSynchronizer.create(
                    game,
                    store,
                    table_id,
                    players=create_players,
                    config=config,
                    seed=seed,
                    game_ref=game_ref,
                    **kw,
                )
            except TableExistsError:  # another process created it meanwhile
                sync = await StateSynchronizer.load(store, table_id, game, **kw)
        return cls(
            sync,
            store,
            tick_rate=tick_rate,
            clock=clock,
            history_versions=history_versions,
            max_batch=max_batch,
        )

    # ------------------------------------------------------------------ lifecycle

    @property
    def sync(self) -> StateSynchronizer:
        """The table's current synchronizer. Read from it freely; never submit to it or roll
        it back directly while the actor runs (use :meth:`act` and :meth:`rollback`)."""
        return self._sync

    @property
    def running(self) -> bool:
        """True between :meth:`start` and the end of :meth:`stop`."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Launch the actor's task on the running event loop. Raises :class:`RuntimeError` if
        it was already started."""
        if self._task is not None:
            raise RuntimeError("TableActor.start() called twice")
        if self._interval is not None:
            self._next_tick = self._clock() + self._interval
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Apply and answer every action queued so far, flush every subscriber, and stop.

        Later :meth:`act` calls raise :class:`RuntimeError`. Re-raises an error that crashed
        the loop (a bug; the pending callers were failed with it)."""
        if not self._closing:
            self._closing = True
            self._queue.put(_Job(_STOP))
        if self._task is None:
            self.start()
        assert self._task is not None
        await asyncio.shield(self._task)

    # ------------------------------------------------------------------ acting

    async def act(self, action: PlayerAction) -> Outcome:
        """Queue a player's action; returns its outcome once the batch holding it is durable.

        ``action.player_id`` and ``client_id`` must come from the authenticated session.
        Raises :class:`ValueError` for an action posing as the engine (``$system``) and
        :class:`RuntimeError` once :meth:`stop` was called.
        """
        if action.client_id == SYSTEM_CLIENT:
            raise ValueError(f"client_id {SYSTEM_CLIENT!r} is reserved for the engine")
        return await self._call(_Job(_ACT, action=action))  # type: ignore[no-any-return]

    def act_nowait(
        self, action: PlayerAction, reply: Callable[[Outcome | BaseException], object]
    ) -> None:
        """:meth:`act` without a coroutine: queue the action and return; ``reply`` is called
        from the actor's loop with the outcome once the batch holding it is durable, or with
        the :class:`RuntimeError` that :meth:`act` would raise if the actor stops first.
        Raises as :meth:`act` does when the action cannot be queued at all."""
        if action.client_id == SYSTEM_CLIENT:
            raise ValueError(f"client_id {SYSTEM_CLIENT!r} is reserved for the engine")
        if self._closing or (self._task is not None and self._task.done()):
            raise RuntimeError("the table actor is stopping or stopped")
        self._queue.put(_Job(_ACT, action=action, future=_Reply(reply)))

    async def join(self, player: str) -> Outcome:
        """Seat ``player`` (the game may refuse), serialized with the players' actions."""
        return await self._call(_Job(JOIN, player=player))  # type: ignore[no-any-return]

    async def leave(self, player: str) -> Outcome:
        """Remove ``player``'s seat and private state, serialized with the players' actions."""
        return await self._call(_Job(LEAVE, player=player))  # type: ignore[no-any-return]

    async def set_connected(self, player: str, connected: bool) -> Outcome:
        """Record that ``player``'s connection dropped or came back (serialized likewise)."""
        kind = CONNECT if connected else DISCONNECT
        return await self._call(_Job(kind, player=player))  # type: ignore[no-any-return]

    async def rollback(self, to_version: int) -> None:
        """Rewind the table to a retained version and start a new epoch, between two batches
        (:meth:`StateSynchronizer.rollback`, whose errors it raises). Subscribers past
        ``to_version`` get a snapshot on the next flush."""
        await self._call(_Job(_ROLLBACK, version=to_version))

    async def _call(self, job: _Job) -> Any:
        if self._closing or (self._task is not None and self._task.done()):
            raise RuntimeError("the table actor is stopping or stopped")
        job.future = asyncio.get_running_loop().create_future()
        self._queue.put(job)
        return await job.future

    # ------------------------------------------------------------------ subscribing

    def subscribe(
        self,
        viewer: str | None,
        *,
        version: int = -1,
        epoch: int | None = None,
        send: Callable[[StateDelta | SplitUpdate | StateSnapshot], bool],
        cursor: SharedCursor | None = None,
    ) -> Subscription:
        """Start sending ``viewer``'s view of the table to ``send`` (``viewer=None``: a
        spectator). ``version``/``epoch`` are what the client holds (-1: nothing, so the first
        update is a snapshot); it is brought up to date on the next flush. With a ``cursor``
        (the connection's place in the table's shared stream), deltas may come as
        :class:`~statesync.fanout.SplitUpdate`."""
        sub = Subscription(self, viewer, version, epoch, send, cursor)
        self._subs[sub] = None
        self._wake()
        return sub

    @property
    def subscriptions(self) -> list[Subscription]:
        """The open subscriptions, in the order they were made."""
        return list(self._subs)

    async def drain(self) -> None:
        """Wait until every job queued before this call has been processed and, on a
        turn-based table, flushed to the subscribers (a barrier, mostly for tests).
        Raises :class:`RuntimeError` once :meth:`stop` was called."""
        await self._call(_Job(_WAKE))

    def _wake(self) -> None:
        """Ask the loop for a flush (it comes after the current batch, or on the next tick).
        One queued wake-up is enough however many subscribers asked."""
        if not self._closing and not self._wake_queued:
            self._wake_queued = True
            self._queue.put(_Job(_WAKE))

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        try:
            stopping = False
            while not stopping:
                self._inflight = jobs = await self._take()
                self._wake_queued = False  # the flush below serves whoever asked so far
                stopping = any(j.kind == _STOP for j in jobs)
                tick = self._tick_due()
                await self._process(jobs, tick)
                if not self._stale and (self._interval is None or tick or stopping):
                    self._flush()
                for job in jobs:
                    if job.kind == _WAKE and job.future is not None and not job.future.done():
                        job.future.set_result(None)
        except BaseException as e:
            self._fail_pending(e)
            raise
        self._inflight = []
        self._fail_pending(RuntimeError("the table actor stopped"))

    async def _take(self) -> list[_Job]:
        """Wait for a job (or the next tick), then take whatever else is waiting."""
        if self._interval is None:
            await self._queue.wait()
        else:
            delay = self._next_tick - self._clock()
            try:
                async with asyncio.timeout(max(0.0, delay)):
                    await self._queue.wait()
            except TimeoutError:
                pass
        return self._queue.take(self._max_batch)

    def _tick_due(self) -> bool:
        if self._interval is None:
            return False
        now = self._clock()
        if now < self._next_tick:
            return False
        nxt = self._next_tick + self._interval
        if nxt <= now:  # the loop fell behind: skip the missed ticks rather than burst
            skipped = int((now - nxt) // self._interval) + 1
            self.stats["ticks_skipped"] += skipped
            nxt += skipped * self._interval
        self._next_tick = nxt
        self.stats["ticks"] += 1
        return True

    async def _process(self, jobs: list[_Job], tick: bool) -> None:
        """Submit runs of consecutive actions as one batch each; run rollbacks between."""
        batch: list[_Job] = []
        for job in jobs:
            if job.kind == _ACT or job.kind in _SYSTEM:
                batch.append(job)
            elif job.kind == _ROLLBACK:
                await self._submit(batch)
                batch = []
                await self._rollback(job)
        if tick and self._ticks_game:
            batch.append(_Job(TICK))
        await self._submit(batch)

    async def _submit(self, jobs: list[_Job]) -> None:
        if not jobs:
            return
        if self._stale:
            await self._reload()
        sync = self._sync
        start, epoch = sync.version, sync.epoch
        actions = list(self._actions(jobs, start))
        self.stats["batches"] += 1
        self.stats["actions"] += len(actions)
        if self._stale:  # the reload failed: the table in memory cannot be trusted
            outcomes = _refuse(actions, "the table is being reloaded", sync.version)
        else:
            try:
                outcomes = await sync.submit(actions)
            except Exception as e:  # its memory cannot be trusted: settled below, from the store
                self.stats["errors"] += 1
                outcomes = _refuse(actions, f"submit raised {type(e).__name__}", sync.version)
        if any(_unknown(o) for o in outcomes):
            # The store failed, and perhaps after committing (a lost acknowledgement): the
            # store, not this memory, says what became of the batch. Learn it before
            # answering, so that no action is ever answered "not applied" and yet applied.
            self._stale = True
            resolved: list[Outcome | None] = await self._settle_unknown(
                actions, outcomes, start, epoch
            )
        else:
            resolved = list(outcomes)
        for job, outcome in zip(jobs, resolved, strict=True):
            if job.future is None or job.future.done():
                continue
            if outcome is None:  # stopping before the store could tell: leave it unanswered
                job.future.set_exception(RuntimeError("the table actor stopped"))
                continue
            if not outcome.ok:
                self.stats["rejected"] += 1
            job.future.set_result(outcome)

    async def _settle_unknown(
        self, actions: list[PlayerAction], outcomes: list[Outcome], start: int, epoch: int
    ) -> list[Outcome | None]:
        """Reload the table (retrying while the store is down), then answer each action the
        store failed on from the log: accepted at the version it holds if it committed (in
        this batch, or earlier: a re-sent action the reloaded dedupe memory knows), else
        ``store/unavailable`` (now known not to be applied; the client may retry). ``None``
        for an action whose fate is still unknown when the actor is told to stop."""
        delay = 0.05
        while True:
            await self._reload()
            if not self._stale:
                try:
                    committed = await self._committed_since(start, epoch)
                    break
                except Exception:  # the store failed again: cannot tell yet
                    self._stale = True
            if self._closing:
                return [None if _unknown(o) else o for o in outcomes]
            self.stats["store_waits"] += 1
            await asyncio.sleep(delay)
            delay = min(2 * delay, 1.0)
        sync = self._sync
        resolved: list[Outcome | None] = []
        for action, outcome in zip(actions, outcomes, strict=True):
            if not _unknown(outcome):
                resolved.append(outcome)
            elif (version := committed.get((action.client_id, action.seq))) is not None:
                self.stats["recovered"] += 1
                resolved.append(Accepted(action, version))
            elif isinstance(known := sync.dedupe.lookup(action.client_id, action.seq), Accepted):
                # A re-sent action applied before this batch: the failed batch refused it
                # with the rest, but its outcome was never in doubt.
                resolved.append(Accepted(action, known.version, duplicate=True))
            else:
                resolved.append(
                    Rejected(
                        action,
                        reasons.STORE_UNAVAILABLE,
                        "the store failed; the action was not applied",
                        version=sync.version,
                    )
                )
        return resolved

    async def _committed_since(self, start: int, epoch: int) -> dict[tuple[str, int], int]:
        """``(client_id, seq) -> version`` of every action the store holds after ``start`` in
        ``epoch`` (the reloaded table is the store's view)."""
        sync = self._sync
        if sync.epoch != epoch or sync.version <= start:
            return {}
        records = await self._store.read_log(sync.table_id, start + 1, sync.version)
        return {
            (r.action.client_id, r.action.seq): r.version for r in records if r.action is not None
        }

    @staticmethod
    def _actions(jobs: Iterable[_Job], version: int) -> Iterable[PlayerAction]:
        """The batch's actions; system ones get consecutive seqs so they keep arrival order."""
        seq = version
        for job in jobs:
            if job.action is not None:
                yield job.action
            else:
                seq += 1
                yield PlayerAction(job.player, SYSTEM_CLIENT, seq, version, job.kind, None)

    async def _rollback(self, job: _Job) -> None:
        assert job.future is not None
        try:
            await self._sync.rollback(job.version)
        except Exception as e:
            if not job.future.done():
                job.future.set_exception(e)
            return
        if not job.future.done():
            job.future.set_result(None)

    async def _reload(self) -> None:
        """Replace the synchronizer with the table as the store has it."""
        sync = self._sync
        try:
            self._sync = await StateSynchronizer.load(
                self._store,
                sync.table_id,
                sync.game,
                clock=self._clock,
                history_versions=self._history_versions,
            )
        except Exception:
            self.stats["reload_failures"] += 1
            return
        self._stale = False
        self.stats["reloads"] += 1

    def _fail_pending(self, error: BaseException) -> None:
        err = error if isinstance(error, Exception) else RuntimeError("the table actor stopped")
        jobs, self._inflight = self._inflight, []
        jobs.extend(self._queue.take(None))
        for job in jobs:
            if job.future is not None and not job.future.done():
                job.future.set_exception(err)

    # ------------------------------------------------------------------ flushing

    def _flush(self) -> None:
        """Bring every live subscriber up to date: one update per (viewer, version, epoch)
        group, the same update object for every member of a group, and one
        :meth:`~statesync.synchronizer.StateSynchronizer.sync_views` call per (version,
        epoch) for all the viewers at it. The group at the shared stream's version (or, when
        nobody is in step with the stream, the largest group) gets the public part as one
        chunk of it (:meth:`_share`)."""
        self.stats["flushes"] += 1
        sync = self._sync
        stream = self._stream
        at = (stream.version, stream.epoch)
        in_step = 0
        behind: dict[tuple[int, int | None], int] = {}  # per group: takers not in step
        groups: _Groups = {}
        key: tuple[int, int | None]
        for sub in self._subs:
            c = sub.cursor
            step = (
                c is not None and sub.version == at[0] and sub.epoch == at[1] and stream.in_step(c)
            )
            if step:
                in_step += 1
            if sub.lagging:
                continue
            if sub._snapshot:
                key = (-1, None)  # -1 is below any history: sync() snapshots
            elif sub.version == sync.version and sub.epoch == sync.epoch:
                continue
            else:
                key = (sub.version, sub.epoch)
            by_viewer = groups.get(key)  # not setdefault: that builds a dict and a list per sub
            if by_viewer is None:
                by_viewer = groups[key] = {}
            subs = by_viewer.get(sub.viewer)
            if subs is None:
                by_viewer[sub.viewer] = [sub]
            else:
                subs.append(sub)
            if c is not None and not step:
                behind[key] = behind.get(key, 0) + 1
        target = self._target(groups, behind, in_step)
        for group, by_viewer in groups.items():
            viewers = list(by_viewer)
            self.stats["syncs"] += len(viewers)
            updates = sync.sync_views(group[0], viewers, epoch=group[1])
            split = None
            if group == target:
                split = self._share(by_viewer, updates, in_step, behind.get(group, 0))
            for viewer, update in zip(viewers, updates, strict=True):
                members = by_viewer[viewer]
                mine = split.get(viewer) if split is not None else None
                shared: StateDelta | SplitUpdate | StateSnapshot = update
                if mine is not None:
                    mine.audience = len(members)
                    shared = mine
                for sub in members:
                    if not sub.closed:  # an earlier send may have closed it
                        self._deliver(sub, shared if sub.cursor is not None else update)

    def _target(
        self, groups: _Groups, behind: dict[tuple[int, int | None], int], in_step: int
    ) -> tuple[int, int | None] | None:
        """The group the shared stream serves in this flush: the one at its version, or,
        when no subscriber is in step with it, the group with the most subscribers that
        take it (``behind``, as none is in step; the stream then starts a new generation
        there)."""
        stream = self._stream
        at = (stream.version, stream.epoch)
        if at in groups:
            return at
        if in_step:
            return None  # they are at the table's version: the next change is theirs
        best, most = None, 0
        for group, n in behind.items():
            if group[0] >= 0 and n > most:  # not the snapshots
                best, most = group, n
        return best

    def _share(
        self,
        by_viewer: dict[str | None, list[Subscription]],
        updates: list[StateDelta | StateSnapshot],
        in_step: int,
        behind: int,
    ) -> dict[str | None, SplitUpdate] | None:
        """Encode the public part of this group's updates as the shared stream's next chunk
        (starting a new generation first when :meth:`SharedStream.wants_reset`, given the
        ``in_step`` subscribers and the group's ``behind`` ones), and pair it with each
        viewer's private part; ``None`` when there is nothing to share: no public operation,
        an operation that spans sections, or only snapshots."""
        stream = self._stream
        public: Delta | None = None
        privates: dict[str | None, tuple[StateDelta, Delta]] = {}
        last: Delta | None = None
        parts: tuple[Delta, Delta] | None = None
        for viewer, update in zip(by_viewer, updates, strict=True):
            if type(update) is not StateDelta:
                continue  # a snapshot
            if update.delta is not last:  # viewers the change leaves alone share one delta
                last = update.delta
                parts = split_view(last)
            if parts is None:
                public = None
                break
            if public is None:
                public = parts[0]
            elif parts[0] is not public and parts[0].ops != public.ops:
                public = None  # cannot happen for one range; never share a guess
                break
            privates[viewer] = (update, parts[1])
        if not privates:
            return None
        first = next(iter(privates.values()))[0]
        base, version, epoch = first.base_version, first.version, first.epoch
        at_stream = (base, epoch) == (stream.version, stream.epoch)
        if public is None or not public.ops:
            if at_stream:
                stream.skip(version, epoch)  # in step still: their decoders saw nothing
            return None
        if not at_stream or stream.wants_reset(in_step, behind):
            stream.reset(base, epoch)
        try:
            chunk: SharedChunk = stream.encode(public, version)
        except WireError:
            return None  # too large to share: every connection sends its own (or a snapshot)
        return {
            viewer: SplitUpdate(update, chunk, private, bytes.fromhex(update.hash))
            for viewer, (update, private) in privates.items()
        }

    def _deliver(self, sub: Subscription, update: StateDelta | SplitUpdate | StateSnapshot) -> None:
        try:
            accepted = sub._send(update)
        except Exception:
            self.stats["send_errors"] += 1
            sub.close()
            return
        if accepted:
            sub.version, sub.epoch, sub._snapshot = update.version, update.epoch, False
        else:
            sub.lagging = True
            self.stats["lagging"] += 1


_Groups = dict[tuple[int, "int | None"], dict["str | None", list[Subscription]]]
"""Subscribers to update in one flush: by the (version, epoch) they hold, then by viewer."""


def _unknown(outcome: Outcome) -> bool:
    """A refusal because the store failed: whether the action committed is not yet known."""
    return isinstance(outcome, Rejected) and outcome.code == reasons.STORE_UNAVAILABLE


def _refuse(actions: Sequence[PlayerAction], why: str, version: int) -> list[Outcome]:
    return [Rejected(a, reasons.STORE_UNAVAILABLE, why, version=version) for a in actions]
