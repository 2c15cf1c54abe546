"""One WebSocket connection: the glue between a socket, a sans-I/O
:class:`~statesync.protocol.server_session.ServerSession` and a table's
:class:`~statesync.server.table.TableActor`.

Theory of operation
-------------------
Each connection runs two long-lived tasks and one short task per action in flight::

    reader (the websockets handler task)          writer (one per connection)
      ws.recv() -> session.receive() -> events       waits on a wake-up event, then sends, in
        Opened          -> open/seat/subscribe       order: every frame the session produced
        ActionReceived  -> task: actor.act()  ----.  (Welcome, Pong, Error...), then drains the
        ResyncRequested -> sub.resync()           |  outbox one item at a time:
        Closing         -> close                  |    update -> session.update()  (encode)
                                                  '->  result -> session.result()
    actor flush -> send(update) -> outbox  -------->   and sends what that produced.

**One sender.** Only the writer calls ``ws.send``; every frame goes through one FIFO list,
so frames leave in exactly the order the session produced them. Updates and results share
the outbox, so a result and the update holding its effect may arrive in either order (the
protocol allows it), but two updates, or two results, are never reordered.

**Back-pressure.** The actor's ``send`` callback never blocks: it appends to the outbox and
returns False when :attr:`Limits.send_queue_max <statesync.protocol.limits.Limits>` updates
are already queued. The actor then marks the subscription *lagging* and stops sending; once
the writer has drained the outbox to half, it calls :meth:`Subscription.resume`, and the
actor sends one update squashed from the last version queued (or a snapshot). ``ws.send``
waits while the socket's buffer is full, so a slow reader fills the outbox and lags instead
of growing memory. Results are never refused (the action rate limit bounds them).

**No gaps.** The writer passes an update to the session only if it starts at the version the
client holds. A delta that does not (after a ``Resync``, or when the delta is too large for
the wire format, which raises :class:`~statesync.errors.WireError`) is dropped and the
subscription asked for a snapshot (:meth:`Subscription.resync`); deltas already queued are
skipped until that snapshot goes out. (Sending ``actor.sync.snapshot()`` on the spot would
leave the actor believing the client holds an older version, and its next delta would not
apply.)

**Identity.** The session verifies the token; the subscription is made for the token's player
(``None``: a spectator), so a connection only ever receives its own view.

**Failures.** Anything unexpected while serving the connection is logged, counted in
``bad_messages_total{code="server/internal"}`` and answered with a fatal ``server/internal``
error; the server itself carries on. A vanished peer is not an error.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from websockets.exceptions import ConnectionClosed

from statesync import reasons
from statesync.actions import Rejected
from statesync.errors import HashMismatchError, StoreCorruptError, StoreError, WireError
from statesync.protocol import codes
from statesync.protocol.messages import Error, ProtocolError, Result, decode_server
from statesync.protocol.server_session import (
    CLOSED,
    MAX_BAD_MESSAGES,
    ActionReceived,
    Closing,
    Opened,
    ResyncRequested,
    ServerSession,
)
from statesync.server.registry import RegistryClosedError
from statesync.snapshot import StateSnapshot

if TYPE_CHECKING:
    from collections.abc import Callable

    from websockets.asyncio.server import ServerConnection

    from statesync.actions import Outcome, PlayerAction
    from statesync.protocol.limits import Limits
    from statesync.protocol.server_session import Event
    from statesync.server.auth import Claims, TokenSigner
    from statesync.server.metrics import Metrics
    from statesync.server.registry import TableRegistry
    from statesync.server.table import Subscription, TableActor
    from statesync.snapshot import StateDelta

__all__ = ["Connection"]

log = logging.getLogger(__name__)

_CLOSE_CODES = {codes.BYE: 1000, codes.SHUTDOWN: 1001, codes.INTERNAL: 1011}
"""WebSocket close code per session close reason; any other (a fatal protocol or auth
error) closes with 1008, policy violation."""


@dataclass(frozen=True, slots=True)
class _ResultItem:
    seq: int
    outcome: Outcome


class Connection:
    """Serves one accepted WebSocket (see the module docstring). :meth:`run` is the whole
    life of the connection and never raises; :class:`~statesync.server.ws.Server` drives
    :meth:`tick` and, on shutdown, :meth:`stop_input`, :meth:`settle` and :meth:`shutdown`.

    ``table_pin``: when set, only tokens for that table are accepted (``auth/wrong_table``).
    """

    def __init__(
        self,
        ws: ServerConnection,
        registry: TableRegistry,
        signer: TokenSigner,
        *,
        limits: Limits,
        metrics: Metrics,
        clock: Callable[[], float],
        table_pin: str | None = None,
    ) -> None:
        self.ws = ws
        self.registry = registry
        self.metrics = metrics
        self.limits = limits
        self._signer = signer
        self._clock = clock
        self._table_pin = table_pin
        self._claims: Claims | None = None
        self.session = ServerSession(self._verify, limits=limits, now=clock())
        self.closed = asyncio.Event()
        """Set when :meth:`run` has finished (socket closed, table told)."""
        self._actor: TableActor | None = None
        self._sub: Subscription | None = None
        self._frames: list[bytes] = []
        self._outbox: deque[StateDelta | StateSnapshot | _ResultItem] = deque()
        self._queued_updates = 0
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._awaiting_snapshot = False
        self._input_stopped = False
        self._shutdown = False
        self._peer_gone = False
        self._close_code: str | None = None
        self._close_reason = ""
        self._leave = False
        self._attached = False
        self._seated = False

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Serve the connection until it closes, then detach from the table."""
        writer = asyncio.get_running_loop().create_task(self._write_loop())
        try:
            await self._read_loop()
        except ConnectionClosed:
            pass
        except Exception as e:
            self._fail(e, "reading")
        finally:
            if self._close_code is None:
                self._peer_gone = True
            self._wake.set()
            try:
                await writer
            finally:
                await self._detach()
                self.closed.set()

    def stop_input(self) -> None:
        """Ignore every message received from now on (shutdown: an action not yet submitted
        stays unanswered, and the client re-sends it after reconnecting)."""
        self._input_stopped = True

    async def settle(self) -> None:
        """Wait until every action in flight has been answered (or failed)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def shutdown(self) -> None:
        """Send what is queued, then a fatal ``server/shutdown`` error, and close."""
        self._input_stopped = True
        self._shutdown = True
        self._wake.set()

    def abort(self) -> None:
        """Drop the TCP connection at once (a peer that does not let us close politely)."""
        self.ws.transport.abort()

    def tick(self, now: float) -> None:
        """Enforce the session's handshake and idle timeouts (call it every second or so).
        Heartbeats are WebSocket pings, sent by the websockets library itself."""
        try:
            self._handle_sync(self.session.tick(now))
        except Exception as e:
            self._fail(e, "ticking")

    # ------------------------------------------------------------------ input

    def _verify(self, token: str, now: float) -> tuple[str, str | None]:
        claims = self._signer.verify(token, now=now, table=self._table_pin)
        self._claims = claims
        return claims.table, claims.player

    async def _read_loop(self) -> None:
        session = self.session
        while self._close_code is None:
            data = await self.ws.recv()
            if self._input_stopped or self._close_code is not None:
                continue
            now = self._clock()
            if isinstance(data, str):
                session.error(codes.NOT_BINARY, "send binary WebSocket messages", now=now)
                session.bad_messages += 1
                if session.bad_messages > MAX_BAD_MESSAGES:
                    session.close(codes.TOO_MANY_ERRORS, "too many bad messages", now=now)
                    self._request_close(codes.TOO_MANY_ERRORS)
                events: list[Event] = []
            else:
                events = session.receive(data, now)
            self._collect(note=True)
            for event in events:
                if isinstance(event, Opened):
                    await self._open(event)
                else:
                    self._handle_sync([event])

    def _handle_sync(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, ActionReceived):
                self._spawn_act(event.action)
            elif isinstance(event, ResyncRequested):
                self.metrics.inc("desyncs_detected_total")
                self.metrics.inc("resyncs_total")
                if self._sub is not None:
                    self._awaiting_snapshot = True
                    self._sub.resync()
            elif isinstance(event, Closing):
                self._request_close(event.code, event.reason, leave=event.leave)
            # HeartbeatDue: websockets already pings every heartbeat_interval.
        self._collect(note=True)

    async def _open(self, event: Opened) -> None:
        identity = event.identity
        now = self._clock
        claims = self._claims
        if claims is not None and claims.client is not None and claims.client != identity.client_id:
            self._close_with(codes.WRONG_CLIENT, "the token is for another client id")
            return
        try:
            actor = await self.registry.get(identity.table)
        except RegistryClosedError:
            self._close_with(codes.SHUTDOWN, "the server is shutting down")
            return
        except (StoreError, HashMismatchError) as e:  # store failed or table damaged: no bug
            damaged = isinstance(e, StoreCorruptError | HashMismatchError)
            (log.error if damaged else log.warning)("cannot load table %r: %s", identity.table, e)
            self.metrics.inc("bad_messages_total", code=codes.UNAVAILABLE)
            self._close_with(codes.UNAVAILABLE, "the table cannot be loaded now")
            return
        if self._closing():
            return
        player = identity.player
        version = event.version
        sync = actor.sync
        if (
            event.hash
            and (version, event.epoch) == (sync.version, sync.epoch)
            and event.hash != sync.view_hash(player)
        ):
            version = -1  # the view held is damaged: start over from a snapshot
        try:
            if player is not None:
                first = self.registry.attach(identity.table, player)
                self._attached = True
                if player not in actor.sync.state["seats"]:
                    outcome = await actor.join(player)
                    if isinstance(outcome, Rejected) and outcome.code != reasons.ALREADY_SEATED:
                        why = f"{outcome.code}: {outcome.message}" if outcome.message else ""
                        self._close_with(codes.NOT_SEATED, why or outcome.code)
                        return
                elif first:
                    await actor.set_connected(player, True)  # refusals change nothing
                self._seated = True
        except RuntimeError:  # the actor stopped meanwhile
            if not self.registry.closed:
                raise
            self._close_with(codes.SHUTDOWN, "the server is shutting down")
            return
        if self._closing():
            return
        self._actor = actor
        next_seq = actor.sync.dedupe.last_seq(identity.client_id) + 1
        self.session.welcome(next_seq, now=now())
        self._collect()
        if event.version >= 0:
            self.metrics.inc("reconnects_total")
        self._sub = actor.subscribe(player, version=version, epoch=event.epoch, send=self._offer)

    def _spawn_act(self, action: PlayerAction) -> None:
        self.metrics.inc("actions_total")
        task = asyncio.get_running_loop().create_task(self._act(action))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _act(self, action: PlayerAction) -> None:
        actor = self._actor
        if actor is None:  # pragma: no cover - the session opens only after Opened
            return
        try:
            outcome = await actor.act(action)
        except RuntimeError as e:
            if not (actor.running and not self.registry.closed):
                return  # stopping: unanswered, the client re-sends it after reconnecting
            self._fail(e, "acting")
            return
        except Exception as e:
            self._fail(e, "acting")
            return
        if not outcome.ok:
            self.metrics.inc("actions_rejected_total")
        self._outbox.append(_ResultItem(action.seq, outcome))
        self._wake.set()

    # ------------------------------------------------------------------ output

    def _offer(self, update: StateDelta | StateSnapshot) -> bool:
        """The subscription's ``send``: queue an update, or refuse when the outbox is full."""
        if self._queued_updates >= self.limits.send_queue_max:
            return False
        self._outbox.append(update)
        self._queued_updates += 1
        self._wake.set()
        return True

    def _collect(self, *, note: bool = False) -> None:
        """Move what the session produced to the send queue (``note``: count refusals and
        errors it contains, i.e. the session's answers to client input)."""
        frames = self.session.data_to_send()
        if not frames:
            return
        if note:
            for frame in frames:
                self._note(frame)
        self._frames.extend(frames)
        self._wake.set()

    def _note(self, frame: bytes) -> None:
        try:
            message = decode_server(frame)
        except ProtocolError:  # pragma: no cover - the session encodes valid messages
            return
        if isinstance(message, Error):
            self.metrics.inc("bad_messages_total", code=message.code)
        elif isinstance(message, Result) and not message.ok:
            self.metrics.inc("actions_total")  # refused by the session itself (rate, spectator)
            self.metrics.inc("actions_rejected_total")

    async def _write_loop(self) -> None:
        wake = self._wake
        try:
            while True:
                await wake.wait()
                wake.clear()
                await self._pump()
                if self._peer_gone or self._close_code is not None:
                    break
                # _pump returned without awaiting after its last check, so whatever set the
                # event meanwhile has been served: do not go round once more for nothing.
                wake.clear()
            if not self._peer_gone:
                code = self._close_code or codes.INTERNAL
                await self.ws.close(_CLOSE_CODES.get(code, 1008), code)
        except ConnectionClosed:
            pass
        except Exception as e:
            log.exception("statesync connection writer failed")
            self.metrics.inc("bad_messages_total", code=codes.INTERNAL)
            self._close_code = codes.INTERNAL
            await self._last_words(e)

    async def _pump(self) -> None:
        """Send frames and drain the outbox until both are empty."""
        session = self.session
        send = self.ws.send
        inc = self.metrics.inc
        outbox = self._outbox
        while not self._peer_gone:
            frames = self._frames
            if frames:
                self._frames = []
                for frame in frames:
                    await send(frame)
                    inc("messages_sent_total")
                    inc("bytes_sent_total", len(frame))
                continue
            if outbox and self._close_code is None:
                self._deliver(outbox.popleft())
                continue
            if self._shutdown and self._close_code is None:
                session.close(codes.SHUTDOWN, "the server is shutting down", now=self._clock())
                self._close_code = codes.SHUTDOWN
                self._collect()
                continue
            return

    def _deliver(self, item: StateDelta | StateSnapshot | _ResultItem) -> None:
        """Have the session encode one outbox item; its frames join :attr:`_frames` (the
        writer sends them next, so nothing here needs to wake it)."""
        session, now = self.session, self._clock()
        if isinstance(item, _ResultItem):
            session.result(item.seq, item.outcome, now=now)
        else:
            self._queued_updates -= 1
            if isinstance(item, StateSnapshot):
                self._awaiting_snapshot = False
                session.snapshot(item, now=now)
            elif not self._awaiting_snapshot:
                if item.base_version != session.version:
                    self._need_snapshot()  # would leave a gap: heal with a snapshot
                else:
                    try:
                        session.update(item, now=now)
                    except WireError:
                        self.metrics.inc("resyncs_total")
                        self._need_snapshot()
            sub = self._sub
            if (
                sub is not None
                and sub.lagging
                and self._queued_updates <= self.limits.send_queue_max // 2
            ):
                sub.resume()
        frames = session.data_to_send()
        if frames:
            self._frames.extend(frames)

    def _need_snapshot(self) -> None:
        self._awaiting_snapshot = True
        if self._sub is not None:
            self._sub.resync()

    # ------------------------------------------------------------------ closing

    def _closing(self) -> bool:
        return self._close_code is not None or self.session.state == CLOSED

    def _request_close(self, code: str, reason: str = "", *, leave: bool = False) -> None:
        """Close after sending the frames queued so far; the outbox is dropped."""
        if self._close_code is None:
            self._close_code, self._close_reason = code, reason
        self._leave = self._leave or leave
        self._wake.set()

    def _close_with(self, code: str, reason: str) -> None:
        """Tell the client why (a fatal error), then close."""
        self.session.close(code, reason, now=self._clock())
        self._collect(note=True)
        self._request_close(code, reason)

    def _fail(self, error: BaseException, doing: str) -> None:
        log.error("statesync connection failed while %s", doing, exc_info=error)
        self.metrics.inc("bad_messages_total", code=codes.INTERNAL)
        self.session.close(codes.INTERNAL, "internal server error", now=self._clock())
        self._collect()
        self._request_close(codes.INTERNAL)

    async def _last_words(self, error: BaseException) -> None:
        """After the writer itself failed: best effort to send the fatal error and close."""
        try:
            self.session.close(codes.INTERNAL, "internal server error", now=self._clock())
            for frame in self.session.data_to_send():
                await self.ws.send(frame)
            await self.ws.close(1011, codes.INTERNAL)
        except Exception:
            log.debug("could not close the connection after %r", error)

    async def _detach(self) -> None:
        """Unsubscribe and tell the table the player left or went away (best effort)."""
        try:
            await self.settle()
            if self._sub is not None:
                self._sub.close()
            identity, actor = self.session.identity, self._actor
            if identity is None or identity.player is None or not self._attached:
                return
            last = self.registry.detach(identity.table, identity.player)
            if actor is None or not self._seated:
                return
            if self._leave:
                await actor.leave(identity.player)
            elif last:
                await actor.set_connected(identity.player, False)
        except RuntimeError:
            pass  # the actor is stopping: the seat stays as it is
        except Exception:
            log.exception("statesync connection cleanup failed")
            self.metrics.inc("bad_messages_total", code=codes.INTERNAL)
