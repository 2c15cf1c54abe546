"""One WebSocket connection: the glue between a socket, a sans-I/O
:class:`~statesync.protocol.server_session.ServerSession` and a table's
:class:`~statesync.server.table.TableActor`.

Theory of operation
-------------------
Each connection has one writer task; receiving needs no task (the
:class:`MessageConnection` hands each message over as it is parsed, in the socket's read
callback), and neither do actions (the table actor calls back with each answer). Only the
handshake's table lookup runs as a task of its own, with later messages held until it is
done::

    input (as parsed)                             output (one FIFO: frames, then the outbox)
      message -> session.receive() -> events         every frame the session produced (Welcome,
        Opened          -> open/seat/subscribe       Pong, Error...) is sent before the outbox
        ActionReceived  -> actor.act_nowait() ---.   is drained one item at a time:
        ResyncRequested -> sub.resync()          |     update -> session.update()  (encode)
        Closing         -> close                 |     result -> session.result()
                                                 '->   and what that produced is sent next.
    actor flush -> send(update) -> outbox  -------->

**Sending.** Whoever queues something (the actor's ``send``, an answered action, the reader)
sends it on the spot while the socket's write buffer is below its high-water mark, with no
task switch and no wait: an update offered while nothing is queued is encoded and written
at once (:meth:`Connection._send_now`); anything else goes through the outbox, drained in
order. Frames are written to the transport whole (the WebSocket header is two to ten bytes,
built here; websockets frames them itself on a connection with an extension). A frame is
only ever written after everything queued before it, so frames leave in exactly the order the
session produced them. When the buffer is full, what is left stays queued and the *writer*
task takes over: it sends the next frame with ``await ws.send()``, which waits until the
buffer drains, and carries on. The writer also closes the connection (after a fatal error, a
``Bye``, or on shutdown). Updates and results share the outbox, so a result and the update
holding its effect may arrive in either order (the protocol allows it), but two updates, or
two results, are never reordered.

**Send workers.** On a server with a :class:`~statesync.server.sendpool.SendPool`, an update
the table hands to many connections at once (its ``audience``: a thousand spectators) may be
written by a worker process instead (:meth:`Connection._send_now`). Until the worker
answers, nothing else is written to that socket: the connection's own frames and outbox wait,
and so do the library's pongs and close frames (:meth:`MessageConnection.hold_writes`).
:meth:`Connection.offload_done` writes whatever part of the frame the worker could not, then
the rest in order.

**Back-pressure.** The actor's ``send`` callback never blocks: it queues the update (sending
it at once if the socket takes it) and returns False when
:attr:`Limits.send_queue_max <statesync.protocol.limits.Limits>` updates are already queued.
The actor then marks the subscription *lagging* and stops sending; once the outbox has
drained to half, the connection calls :meth:`Subscription.resume`, and the actor sends one
update squashed from the last version queued (or a snapshot). A slow reader fills the socket
buffer, then the outbox, and lags instead of growing memory. Results are never refused (the
action rate limit bounds them).

**No gaps.** An update is passed to the session only if it starts at the version the
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
from typing import TYPE_CHECKING, Any, cast

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, State

from statesync import reasons
from statesync.actions import Rejected
from statesync.errors import HashMismatchError, StoreCorruptError, StoreError, WireError
from statesync.fanout import SplitUpdate
from statesync.protocol import codes
from statesync.protocol.messages import Error, ProtocolError, Result, decode_server
from statesync.protocol.server_session import (
    CLOSED,
    MAX_BAD_MESSAGES,
    OPEN,
    ActionReceived,
    Closing,
    HeartbeatDue,
    Opened,
    ResyncRequested,
    ServerSession,
)
from statesync.server.registry import RegistryClosedError
from statesync.server.sendpool import NOT_SENT, UNKNOWN
from statesync.snapshot import StateDelta, StateSnapshot

if TYPE_CHECKING:
    from collections.abc import Callable

    from websockets.protocol import Event as WsEvent

    from statesync.actions import Outcome, PlayerAction
    from statesync.protocol.limits import Limits
    from statesync.protocol.server_session import Event
    from statesync.server.auth import Claims, TokenSigner
    from statesync.server.metrics import Metrics
    from statesync.server.registry import TableRegistry
    from statesync.server.sendpool import SendPool
    from statesync.server.table import Subscription, TableActor

__all__ = ["Connection", "MessageConnection"]

_DATA_OPCODES = frozenset({Opcode.TEXT, Opcode.BINARY, Opcode.CONT})
_MAX_HELD = 64
"""Messages held while a handshake's table lookup is in progress before the socket stops
being read (a client should send nothing between ``Hello`` and ``Welcome``)."""

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

    # Slots: a flush reads this object once per connection, mostly from a cold cache;
    # its fields inline take fewer cache lines than an instance dict (docs/benchmarks.md,
    # "Session 7").
    __slots__ = (
        "_actor",
        "_attached",
        "_awaiting_snapshot",
        "_claims",
        "_clock",
        "_close_code",
        "_close_reason",
        "_fd",
        "_frames",
        "_held",
        "_high_water",
        "_in_flight",
        "_input_stopped",
        "_leave",
        "_offload_waiter",
        "_offloaded",
        "_opening",
        "_outbox",
        "_peer_gone",
        "_pool",
        "_probe",
        "_protocol",
        "_queued_updates",
        "_raw",
        "_seated",
        "_send_queue_max",
        "_sending",
        "_settled",
        "_shutdown",
        "_signer",
        "_sub",
        "_table_pin",
        "_transport",
        "_wake",
        "_ws_open",
        "_ws_watched",
        "closed",
        "limits",
        "metrics",
        "registry",
        "session",
        "ws",
    )

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
        pool: SendPool | None = None,
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
        self._outbox: deque[StateDelta | SplitUpdate | StateSnapshot | _ResultItem] = deque()
        self._queued_updates = 0
        self._sending = False
        self._wake = asyncio.Event()
        self._in_flight = 0
        """Actions handed to the table and not answered yet."""
        self._settled = asyncio.Event()
        """Set while nothing is in flight."""
        self._settled.set()
        self._awaiting_snapshot = False
        self._input_stopped = False
        self._shutdown = False
        self._peer_gone = False
        self._close_code: str | None = None
        self._close_reason = ""
        self._leave = False
        self._attached = False
        self._seated = False
        self._probe: asyncio.Task[None] | None = None
        self._opening: asyncio.Task[None] | None = None
        self._held: list[bytes | str] = []
        self._raw = _frame_writer(ws)
        self._protocol = ws.protocol  # its state, without the connection's property per write
        self._ws_open = True
        """False once the WebSocket has left the OPEN state (:class:`MessageConnection` says
        when); read per delivery instead of the protocol object's state, which is one more
        cold object per connection in a flush."""
        self._ws_watched = isinstance(ws, MessageConnection)
        if isinstance(ws, MessageConnection):
            ws.on_closing(self._ws_closing)
        self._transport = ws.transport
        self._high_water = ws.transport.get_write_buffer_limits()[1]  # set once, at connect
        self._send_queue_max = self.limits.send_queue_max
        self._pool: SendPool | None = None
        self._fd = -1
        self._offloaded = False
        """A send worker is writing a frame to this socket: nothing else may be written to it
        until :meth:`offload_done`."""
        self._offload_waiter: asyncio.Future[None] | None = None
        if pool is not None and self._raw is not None and isinstance(ws, MessageConnection):
            sock = ws.transport.get_extra_info("socket")
            if sock is not None and ws.transport.get_extra_info("sslcontext") is None:
                self._pool, self._fd = pool, sock.fileno()

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Serve the connection until it closes, then detach from the table."""
        ws = self.ws
        writer = asyncio.get_running_loop().create_task(self._write_loop())
        try:
            if isinstance(ws, MessageConnection):
                ws.attach(self._on_message)
                await ws.wait_closed()
            else:
                await self._read_loop()
        except ConnectionClosed:
            pass
        except Exception as e:
            self._fail(e, "reading")
        finally:
            if isinstance(ws, MessageConnection):
                ws.attach(None)
            if self._close_code is None:
                self._peer_gone = True
            self._wake.set()
            if self._probe is not None:
                self._probe.cancel()
            try:
                if self._opening is not None:  # let it finish: then detach undoes it all
                    await asyncio.gather(self._opening, return_exceptions=True)
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
        await self._settled.wait()

    def shutdown(self) -> None:
        """Send what is queued, then a fatal ``server/shutdown`` error, and close."""
        self._input_stopped = True
        self._shutdown = True
        self._wake.set()

    def abort(self) -> None:
        """Drop the TCP connection at once (a peer that does not let us close politely)."""
        self.ws.transport.abort()

    def tick(self, now: float) -> None:
        """Enforce the session's handshake and idle timeouts, and probe a client that has gone
        quiet (call it every second or so)."""
        try:
            events = self.session.tick(now)
            if events:  # nothing to do otherwise: a tick produces frames only when it closes
                self._handle_sync(events)
        except Exception as e:
            self._fail(e, "ticking")

    # ------------------------------------------------------------------ input

    def _verify(self, token: str, now: float) -> tuple[str, str | None]:
        claims = self._signer.verify(token, now=now, table=self._table_pin)
        self._claims = claims
        return claims.table, claims.player

    async def _read_loop(self) -> None:
        """Receive with ``ws.recv()`` (a socket that is not a :class:`MessageConnection`,
        such as the simulator's)."""
        while self._close_code is None:
            data = await self.ws.recv()
            if self._input_stopped or self._close_code is not None:
                continue
            for event in self._receive(data):
                if isinstance(event, Opened):
                    await self._open(event)
                else:
                    self._handle_sync([event])

    def _receive(self, data: bytes | str) -> list[Event]:
        """One message from the client, through the session; returns its events."""
        session = self.session
        now = self._clock()
        if isinstance(data, str):
            session.error(codes.NOT_BINARY, "send binary WebSocket messages")
            session.bad_messages += 1
            if session.bad_messages > MAX_BAD_MESSAGES:
                session.close(codes.TOO_MANY_ERRORS, "too many bad messages")
                self._request_close(codes.TOO_MANY_ERRORS)
            events: list[Event] = []
        else:
            events = session.receive(data, now)
        self._collect(note=True)
        return events

    def _on_message(self, data: bytes | str) -> None:
        """A whole message from the client, handed over by the :class:`MessageConnection`
        as it is parsed. While the handshake's table lookup is in progress, messages wait
        (in order; past :data:`_MAX_HELD` of them the socket stops being read)."""
        if self._input_stopped or self._close_code is not None:
            return
        if self._opening is not None:
            self._held.append(data)
            if len(self._held) == _MAX_HELD:
                self.ws.transport.pause_reading()
            return
        try:
            events = self._receive(data)
            for i, event in enumerate(events):
                if isinstance(event, Opened):
                    loop = asyncio.get_running_loop()
                    self._opening = loop.create_task(self._open_then_go_on(event, events[i + 1 :]))
                    return
                self._handle_sync([event])
        except Exception as e:
            self._fail(e, "reading")

    async def _open_then_go_on(self, event: Opened, rest: list[Event]) -> None:
        """Open the session (async: the table may have to be loaded), then handle what
        arrived meanwhile, in order."""
        try:
            await self._open(event)
            if rest:
                self._handle_sync(rest)
        except Exception as e:
            self._fail(e, "opening")
        finally:
            self._opening = None
        held, self._held = self._held, []
        for data in held:
            self._on_message(data)
        if len(held) >= _MAX_HELD and not self._peer_gone:
            self.ws.transport.resume_reading()

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
            elif isinstance(event, HeartbeatDue):
                self._start_probe()
        self._collect(note=True)

    def _start_probe(self) -> None:
        """Ping the client (it has been silent for a while); its pong counts as hearing from
        it. One probe at a time; a client that never answers reaches the idle timeout."""
        if (self._probe is None or self._probe.done()) and self.ws.state is State.OPEN:
            self._probe = asyncio.get_running_loop().create_task(self._ping())

    async def _ping(self) -> None:
        try:
            pong = await self.ws.ping()
            await pong
        except ConnectionClosed:
            return
        self.session.alive(self._clock())

    async def _open(self, event: Opened) -> None:
        identity = event.identity
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
                mark = self.registry.attach(identity.table, player)
                self._attached = True
                if player not in actor.sync.state["seats"]:
                    outcome = await actor.join(player)
                    if isinstance(outcome, Rejected) and outcome.code != reasons.ALREADY_SEATED:
                        why = f"{outcome.code}: {outcome.message}" if outcome.message else ""
                        self._close_with(codes.NOT_SEATED, why or outcome.code)
                        return
                elif mark:
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
        self.session.welcome(next_seq)
        self._collect()
        if event.version >= 0:
            self.metrics.inc("reconnects_total")
        self._sub = actor.subscribe(
            player, version=version, epoch=event.epoch, send=self._offer, cursor=self.session.cursor
        )

    def _spawn_act(self, action: PlayerAction) -> None:
        """Hand the action to the table; :meth:`_answered` queues the result when it is
        durable (no task per action: the actor calls back from its loop)."""
        self.metrics.inc("actions_total")
        actor = self._actor
        if actor is None:  # pragma: no cover - the session opens only after Opened
            return
        seq = action.seq

        def reply(outcome: Outcome | BaseException) -> None:
            self._answered(seq, outcome)

        self._in_flight += 1
        self._settled.clear()
        try:
            actor.act_nowait(action, reply)
        except Exception as e:
            self._answered(seq, e)

    def _answered(self, seq: int, outcome: Outcome | BaseException) -> None:
        """The table's answer to action ``seq``: queue the result. An exception instead means
        the actor stopped before answering: while the server shuts down the action stays
        unanswered (the client re-sends it after reconnecting, and dedupe makes that safe);
        otherwise it is a failure, and closing the connection gets the client to do the
        same."""
        try:
            if isinstance(outcome, BaseException):
                if not (isinstance(outcome, RuntimeError) and self.registry.closed):
                    self._fail(outcome, "acting")
                return
            if not outcome.ok:
                self.metrics.inc("actions_rejected_total")
            if self._writable():
                self._write_one(self.session.result_message(seq, outcome))  # the common case
            else:
                self._outbox.append(_ResultItem(seq, outcome))
                self._kick()
        except Exception as e:
            self._fail(e, "answering")
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._settled.set()

    # ------------------------------------------------------------------ output

    def _offer(self, update: StateDelta | SplitUpdate | StateSnapshot) -> bool:
        """The subscription's ``send``: queue an update (sent at once if the socket takes it),
        or refuse when the outbox is full."""
        if self._queued_updates >= self._send_queue_max:
            return False
        try:
            if self._send_now(update):
                return True
        except Exception as e:
            self._fail(e, "sending")
            return True
        self._outbox.append(update)
        self._queued_updates += 1
        self._kick()
        return True

    def _send_now(self, update: StateDelta | SplitUpdate | StateSnapshot) -> bool:
        """The common case, without the outbox: the update is a delta from the version the
        client holds, and the connection is :meth:`_writable`. Encode and write it
        at once and return True; False leaves it to the general path (:meth:`_deliver`),
        which also heals a delta too large to encode with a snapshot."""
        session = self.session
        if (
            isinstance(update, StateSnapshot)
            or update.base_version != session.version
            or self._awaiting_snapshot
            or not self._writable()
        ):
            return False
        try:
            message = session.update_message(update)
        except WireError:
            return False
        if message is None:
            return True
        frame = None
        if type(update) is SplitUpdate and update.message is message:
            frame = update.frame  # the viewer's shared message: framed once for all
            if frame is None:
                frame = update.frame = _binary_frame(message)
            pool = self._pool
            if (
                pool is not None
                and update.audience >= pool.min_audience
                and not self._transport.get_write_buffer_size()  # a worker writes the socket
                and pool.take(self, self._fd, frame)  # itself: nothing may be waiting ahead
            ):
                self._offloaded = True
                cast("MessageConnection", self.ws).hold_writes()
                self.metrics.sent(1, len(message))
                return True
        raw = self._raw
        if raw is None:
            self._write_one(message)
            return True
        try:  # _write_one, inline: this runs for every delivery
            raw.write(frame or _binary_frame(message))
        except Exception:
            self._write_failed()
            return True
        self.metrics.sent(1, len(message))
        return True

    def _writable(self) -> bool:
        """Whether a message may be written this instant, ahead of the outbox: nothing is
        queued (frames leave in order), the session and the WebSocket are open, no close was
        requested, and the socket's buffer is below its high-water mark."""
        if self._outbox or self._frames or self._sending or self._offloaded:
            return False
        if self._close_code is not None or self._peer_gone or self.session.state != OPEN:
            return False
        if not (self._ws_open if self._ws_watched else self._protocol.state is State.OPEN):
            return False
        return self._transport.get_write_buffer_size() <= self._high_water

    def _ws_closing(self) -> None:
        """The WebSocket left the OPEN state (a close frame either way, or the TCP connection
        went): nothing more may be written ahead of the outbox."""
        self._ws_open = False

    def _collect(self, *, note: bool = False) -> None:
        """Send what the session produced (``note``: count refusals and errors it contains,
        i.e. the session's answers to client input)."""
        frames = self.session.data_to_send()
        if not frames:
            return
        if note:
            for frame in frames:
                self._note(frame)
        self._frames.extend(frames)
        self._kick()

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

    def _kick(self) -> None:
        """Something was queued: send it now if the socket takes it, else wake the writer."""
        try:
            if self._send_ready():
                return
        except Exception as e:
            self._fail(e, "sending")
        self._wake.set()

    def _send_ready(self) -> bool:
        """Send the queued frames and drain the outbox without waiting, for as long as the
        socket's write buffer is below its high-water mark. Returns False when frames are
        left because the buffer is full (the writer must wait for it), else True.

        The outbox is drained only while the session is open and no close was requested
        (a closing connection sends the frames queued so far, nothing more)."""
        if self._sending:
            return True  # called from within the loop below, which sends what was queued
        if self._offloaded:
            return True  # offload_done calls again once the worker is done
        self._sending = True
        try:
            frames, outbox, session = self._frames, self._outbox, self.session
            while not self._peer_gone:
                if frames:
                    if not self._write(frames):
                        return False
                elif outbox and self._close_code is None and session.state != CLOSED:
                    self._deliver(outbox.popleft())
                else:
                    break
            return True
        finally:
            self._sending = False

    def _write(self, frames: list[bytes]) -> bool:
        """Write ``frames`` to the socket, oldest first, while its write buffer is below the
        high-water mark; returns False if some are left because it is not.

        A WebSocket that is no longer open (a close frame went either way) never takes
        another frame: the frames are dropped, as ``ws.send`` would have refused them, and
        nothing more is encoded, as for a vanished peer. A write that fails drops the
        connection."""
        ws = self.ws
        if ws.state is not State.OPEN:
            frames.clear()
            self._peer_gone = True
            return True
        transport = ws.transport
        high = self._high_water
        count = size = 0
        try:
            for frame in frames:
                if transport.get_write_buffer_size() > high:
                    break
                self._put(frame)
                count += 1
                size += len(frame)
        except Exception:
            self._write_failed()
            frames.clear()
        finally:
            del frames[:count]
            if count:
                self.metrics.sent(count, size)
        return not frames

    def _write_one(self, message: bytes) -> None:
        """Write one message now (the connection is open and its buffer has room)."""
        try:
            self._put(message)
        except Exception:
            self._write_failed()
            return
        self.metrics.sent(1, len(message))

    def _put(self, message: bytes) -> None:
        """Hand one message to the transport as a WebSocket frame (see :func:`_frame_writer`);
        raises what the write raises."""
        raw = self._raw
        if raw is None:
            broadcast((self.ws,), message, raise_exceptions=True)
            return
        raw.write(_binary_frame(message))

    def _write_failed(self) -> None:
        """A write the transport refused: the peer is gone (not an internal error)."""
        log.debug("statesync connection: writing to the socket failed", exc_info=True)
        self._peer_gone = True
        self.ws.transport.abort()

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
        """Send everything queued, waiting for the socket whenever its buffer is full, and
        close the session on shutdown once the outbox is empty."""
        session = self.session
        frames = self._frames
        while not self._peer_gone:
            if self._offloaded:
                await self._offload_settled()
                continue
            if not self._send_ready():
                # The buffer is full: send the next frame the way that waits until it drains.
                frame = frames.pop(0)
                await self.ws.send(frame)
                self.metrics.sent(1, len(frame))
                continue
            if self._shutdown and self._close_code is None:
                session.close(codes.SHUTDOWN, "the server is shutting down")
                self._close_code = codes.SHUTDOWN
                self._frames.extend(session.data_to_send())
                continue
            return

    async def _offload_settled(self) -> None:
        """Wait until the send worker writing to this socket is done."""
        waiter = self._offload_waiter
        if waiter is None:
            waiter = self._offload_waiter = asyncio.get_running_loop().create_future()
        await waiter

    def offload_done(self, frame: bytes, written: int) -> None:
        """The send pool's answer for ``frame`` (see :mod:`statesync.server.sendpool`):
        ``written`` bytes of it went out. The rest is written here, before anything else, so
        frames never interleave; a write that failed, or that a dead worker may have begun,
        drops the connection (the client resumes from the version it holds)."""
        self._offloaded = False
        try:
            if written == UNKNOWN:
                if not self._peer_gone:
                    self._write_failed()
            elif written < len(frame) and not self._peer_gone:
                self._transport.write(frame if written == NOT_SENT else frame[written:])
        except Exception:
            self._write_failed()
        finally:
            cast("MessageConnection", self.ws).hold_writes(False)
            waiter, self._offload_waiter = self._offload_waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        if self._frames or self._outbox:
            self._kick()

    def _deliver(self, item: StateDelta | SplitUpdate | StateSnapshot | _ResultItem) -> None:
        """Have the session encode one outbox item; its frames join :attr:`_frames` (the
        loop that called this sends them next)."""
        session = self.session
        if isinstance(item, _ResultItem):
            session.result(item.seq, item.outcome)
        else:
            self._queued_updates -= 1
            if isinstance(item, StateSnapshot):
                self._awaiting_snapshot = False
                session.snapshot(item)
            elif not self._awaiting_snapshot:
                if item.base_version != session.version:
                    self._need_snapshot()  # would leave a gap: heal with a snapshot
                else:
                    try:
                        session.update(item)
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
        self.session.close(code, reason)
        self._collect(note=True)
        self._request_close(code, reason)

    def _fail(self, error: BaseException, doing: str) -> None:
        log.error("statesync connection failed while %s", doing, exc_info=error)
        self.metrics.inc("bad_messages_total", code=codes.INTERNAL)
        self.session.close(codes.INTERNAL, "internal server error")
        self._collect()
        self._request_close(codes.INTERNAL)

    async def _last_words(self, error: BaseException) -> None:
        """After the writer itself failed: best effort to send the fatal error and close."""
        try:
            self.session.close(codes.INTERNAL, "internal server error")
            for frame in self.session.data_to_send():
                await self.ws.send(frame)
            await self.ws.close(1011, codes.INTERNAL)
        except Exception:
            log.debug("could not close the connection after %r", error)

    async def _detach(self) -> None:
        """Unsubscribe and tell the table the player left, said goodbye or went away (the
        registry's grace: see :mod:`statesync.server.registry`); best effort."""
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
            elif last and (
                self._close_code == codes.BYE  # said goodbye: no grace
                or self.registry.away(identity.table, identity.player)
            ):
                await actor.set_connected(identity.player, False)
        except RuntimeError:
            pass  # the actor is stopping: the seat stays as it is
        except Exception:
            log.exception("statesync connection cleanup failed")
            self.metrics.inc("bad_messages_total", code=codes.INTERNAL)


class MessageConnection(ServerConnection):
    """The websockets server connection :class:`~statesync.server.ws.Server` uses: it hands
    every whole data message to the callback given to :meth:`attach` as soon as the frame is
    parsed, instead of queueing it for ``recv()`` -- no queue, no future and no task switch
    per message. (Data frames never reach the library's own queue, so ``recv()`` is not
    used on it.) Messages that arrive before a callback is attached wait in order, and a
    fragmented message is put back together first; the library has already checked the
    fragments' order and the total size against ``max_size``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_message: Callable[[bytes | str], None] | None = None
        self._early: list[bytes | str] = []
        self._fragments: list[bytes] = []
        self._text = False
        self._on_closing: Callable[[], None] | None = None
        self._holding = False

    def hold_writes(self, hold: bool = True) -> None:
        """While held, what the library itself writes (pongs, close frames) stays in its
        protocol's buffer; releasing (``hold=False``) writes it. The server holds a
        connection's writes while a send worker writes to its socket
        (:mod:`statesync.server.sendpool`), so no two writers interleave."""
        self._holding = hold
        if not hold:
            self.send_data()

    def send_data(self) -> None:
        if not self._holding:
            super().send_data()

    def on_closing(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, as soon as the protocol leaves the OPEN state (at once if
        it has). The state changes only where this class looks: received data (a close
        frame, or a protocol error), end of file, the lost connection, and :meth:`close`
        (this server runs no keepalive pings and never calls ``recv``)."""
        self._on_closing = callback
        self._check_open()

    def _check_open(self) -> None:
        if self.protocol.state is not State.OPEN:
            self._closing()

    def _closing(self) -> None:
        """Call the ``on_closing`` callback, if it has not been called yet."""
        callback, self._on_closing = self._on_closing, None
        if callback is not None:
            callback()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._check_open()

    def eof_received(self) -> None:
        super().eof_received()
        self._check_open()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._check_open()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self._closing()  # before the close frame goes out, as nothing may follow it
        await super().close(code, reason)

    def attach(self, on_message: Callable[[bytes | str], None] | None) -> None:
        """Deliver messages to ``on_message`` from now on (those that arrived before
        first, in order); ``None`` drops them."""
        self._on_message = on_message
        early, self._early = self._early, []
        if on_message is not None:
            for message in early:
                on_message(message)

    def process_event(self, event: WsEvent) -> None:
        self._check_open()  # a close frame may have come in the same read as this event
        if not isinstance(event, Frame) or event.opcode not in _DATA_OPCODES:
            super().process_event(event)  # the handshake request, control frames
            return
        if event.opcode is not Opcode.CONT:
            self._text = event.opcode is Opcode.TEXT
        if not event.fin:
            self._fragments.append(bytes(event.data))
            return
        data = bytes(event.data)
        if self._fragments:
            self._fragments.append(data)
            data = b"".join(self._fragments)
            self._fragments = []
        message: bytes | str = data
        if self._text:
            try:
                message = data.decode()
            except UnicodeDecodeError:  # the session refuses text messages all the same
                message = data.decode(errors="replace")
        if self._on_message is None:
            self._early.append(message)
        else:
            self._on_message(message)


def _frame_writer(ws: ServerConnection) -> asyncio.WriteTransport | None:
    """The transport to write whole WebSocket frames to directly, or ``None`` to have
    websockets frame each message (a connection with a negotiated extension, or a stand-in
    such as the simulator's socket). Data frames do not change the library's protocol state,
    so writing them ourselves while it is ``OPEN`` (we never fragment) is what it would do,
    minus building a ``Frame`` object per message."""
    protocol = ws.protocol
    if isinstance(protocol, Protocol) and not protocol.extensions:
        return ws.transport
    return None


def _binary_frame(message: bytes) -> bytes:
    """``message`` as one final, unmasked binary frame (RFC 6455, section 5.2), the way a
    server sends it: opcode byte ``0x82``, then the length in 7, 7+16 or 7+64 bits."""
    n = len(message)
    if n < 126:
        return bytes((0x82, n)) + message
    if n < 65536:
        return b"\x82\x7e" + n.to_bytes(2, "big") + message
    return b"\x82\x7f" + n.to_bytes(8, "big") + message
