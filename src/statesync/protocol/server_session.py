"""The server end of one connection, as a state machine: bytes in, events and bytes out.

States: ``HANDSHAKE`` (waiting for :class:`~statesync.protocol.messages.Hello`) -> ``OPEN``
-> ``CLOSED``. The connection layer feeds every received binary message to
:meth:`ServerSession.receive`, acts on the returned events, calls :meth:`welcome`,
:meth:`snapshot`, :meth:`update` and :meth:`result` as the table answers, and sends what
:meth:`data_to_send` returns. :meth:`tick` enforces the handshake and idle timeouts and asks
for a probe of a client that has gone quiet. Nothing here does I/O or reads a clock: ``now``
is passed in.

Identity comes from the token alone (``verify``): the player id of every action is the
token's, and the client id is fixed at the handshake, so a message body cannot forge either.
Bad input never changes table state: a malformed, unknown or oversized message is answered
with an :class:`~statesync.protocol.messages.Error` (and counted in :attr:`bad_messages`);
the session closes only after too many of them, or for a fatal handshake problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from statesync.actions import Accepted, PlayerAction
from statesync.errors import StateSyncError
from statesync.fanout import SharedCursor, SplitUpdate
from statesync.protocol import codes
from statesync.protocol.limits import Limits, TokenBucket
from statesync.protocol.messages import (
    SUPPORTED_VERSIONS,
    Act,
    Bye,
    Error,
    Hello,
    Ping,
    Pong,
    ProtocolError,
    Result,
    Resync,
    Snapshot,
    Update,
    Welcome,
    decode_client,
    encode,
    encode_shared_update,
)
from statesync.snapshot import StateSnapshot
from statesync.wire import WireEncoder

if TYPE_CHECKING:
    from collections.abc import Callable

    from statesync.actions import Outcome
    from statesync.snapshot import StateDelta

HANDSHAKE: Final = "handshake"
OPEN: Final = "open"
CLOSED: Final = "closed"
MAX_BAD_MESSAGES: Final = 20
"""Bad messages tolerated on one connection before it is closed."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is on the other end, from the token: ``player`` ``None`` is a spectator."""

    table: str
    player: str | None
    client_id: str


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Opened:
    """The handshake succeeded: attach the client to ``identity.table``; it holds
    ``version`` (-1: nothing) of ``epoch`` with view hash ``hash`` (hex, or "")."""

    identity: Identity
    version: int
    epoch: int
    hash: str


@dataclass(frozen=True, slots=True)
class ActionReceived:
    """Submit ``action`` to the table (identity already filled in from the token)."""

    action: PlayerAction


@dataclass(frozen=True, slots=True)
class ResyncRequested:
    """The client needs a snapshot (its hash check failed at ``version``)."""

    version: int


@dataclass(frozen=True, slots=True)
class Closing:
    """Send what is queued, then close the connection. ``leave``: the player gave up the
    seat (:class:`~statesync.protocol.messages.Bye` with ``leave``)."""

    code: str
    reason: str = ""
    leave: bool = False


_NEVER: Final = float("inf")


@dataclass(frozen=True, slots=True)
class HeartbeatDue:
    """Nothing was received for ``heartbeat_interval`` (and no probe went out in that time):
    the connection layer probes the peer with a WebSocket ping and reports the pong with
    :meth:`ServerSession.alive`. A client that keeps sending (an SDK client sends a ``Ping``
    whenever it has sent nothing for a while) is never probed."""


Event = Opened | ActionReceived | ResyncRequested | Closing | HeartbeatDue


class ServerSession:
    """One connection's protocol state on the server.

    ``verify(token, now)`` returns the token's ``(table, player)`` or raises a
    :class:`~statesync.errors.StateSyncError` (its ``code`` is sent to the client).

    >>> s = ServerSession(lambda token, now: ("t1", "ann"), now=0.0)
    >>> [type(e).__name__ for e in s.receive(encode(Hello([1], "tok", "ann-1")), now=0.1)]
    ['Opened']
    """

    # Slots: a flush reads this object once per connection, mostly from a cold cache;
    # its fields inline take fewer cache lines than an instance dict (docs/benchmarks.md,
    # "Session 7").
    __slots__ = (
        "_bucket",
        "_encoder",
        "_last_received",
        "_opened_at",
        "_out",
        "_probed",
        "_verify",
        "bad_messages",
        "bytes_sent",
        "cursor",
        "due",
        "epoch",
        "identity",
        "limits",
        "protocol",
        "state",
        "version",
    )

    def __init__(
        self,
        verify: Callable[[str, float], tuple[str, str | None]],
        *,
        limits: Limits | None = None,
        now: float,
    ) -> None:
        self.limits = limits or Limits()
        self.state: str = HANDSHAKE
        self.identity: Identity | None = None
        self.bad_messages = 0
        self.bytes_sent = 0
        self._verify = verify
        self._opened_at = now
        self._last_received = now
        self._probed = now
        self.due = now + min(self.limits.handshake_timeout, self.limits.heartbeat_interval)
        """Before this time :meth:`tick` has nothing to do (it may be earlier than need be,
        never later), so a caller holding many sessions can skip the others."""
        self._bucket = TokenBucket(self.limits.actions_per_second, self.limits.action_burst)
        self._out: list[bytes] = []
        self._encoder = WireEncoder(max_message_size=self.limits.max_message_bytes * 16)
        self.version = -1
        """The version of the view the client holds (after what was sent). Read it; the
        session moves it. (A plain attribute: the server reads it for every delivery.)"""
        self.epoch = 0
        """The epoch of :attr:`version`."""
        self.protocol = 0
        """The protocol version chosen at the handshake (0 before it)."""
        self.cursor: SharedCursor | None = None
        """How far the client's shared decoder got (version 2; ``None`` for version 1, whose
        clients get every update on the connection's own stream)."""

    # ------------------------------------------------------------------ input

    def receive(self, data: bytes, now: float) -> list[Event]:
        """Handle one received message; returns what the connection layer must do."""
        if self.state == CLOSED:
            return []
        self._last_received = now
        if len(data) > self.limits.max_message_bytes:
            return self._bad(codes.TOO_LARGE, f"message of {len(data)} bytes is too large")
        try:
            message = decode_client(data)
        except ProtocolError as e:
            return self._bad(e.code, str(e))
        if self.state == HANDSHAKE:
            if not isinstance(message, Hello):
                return self._fatal(codes.HANDSHAKE_REQUIRED, "the first message must be Hello")
            return self._hello(message, now)
        if isinstance(message, Act):
            return self._act(message, now)
        if isinstance(message, Resync):
            return [ResyncRequested(message.version)]
        if isinstance(message, Ping):
            self._send(Pong(message.nonce))
            return []
        if isinstance(message, Bye):
            self.state = CLOSED
            return [Closing(codes.BYE, "client said goodbye", leave=message.leave)]
        return self._bad(codes.UNEXPECTED, f"{type(message).__name__} is only sent once")

    def _hello(self, m: Hello, now: float) -> list[Event]:
        common = sorted(set(m.versions) & set(SUPPORTED_VERSIONS))
        if not common:
            return self._fatal(
                codes.UNSUPPORTED_VERSION,
                f"server speaks protocol versions {list(SUPPORTED_VERSIONS)}, not {m.versions}",
            )
        if not m.client_id or len(m.client_id) > 128 or m.client_id.startswith("$"):
            return self._fatal(codes.BAD_CLIENT_ID, "client_id must be 1-128 chars, not '$...'")
        try:
            table, player = self._verify(m.token, now)
        except StateSyncError as e:
            return self._fatal(e.code, str(e))
        if len(m.hash) not in (0, 16):
            return self._fatal(codes.MALFORMED, "hash must be 16 bytes or empty")
        self.identity = Identity(table, player, m.client_id)
        self.state = OPEN
        self.protocol = common[-1]
        if self.protocol >= 2:
            self.cursor = SharedCursor()
        self.version, self.epoch = m.version, m.epoch
        return [Opened(self.identity, m.version, m.epoch, m.hash.hex())]

    def _act(self, m: Act, now: float) -> list[Event]:
        identity = self.identity
        assert identity is not None
        if identity.player is None:
            self._send(Result(m.seq, False, self.version, codes.SPECTATOR, "spectators cannot act"))
            return []
        if m.seq < 1:
            return self._bad(codes.MALFORMED, "seq starts at 1")
        if not self._bucket.allow(now):
            self._send(Result(m.seq, False, self.version, codes.RATE_LIMITED, "slow down"))
            return []
        action = PlayerAction(
            identity.player, identity.client_id, m.seq, m.base_version, m.type, m.payload
        )
        return [ActionReceived(action)]

    def _bad(self, code: str, message: str) -> list[Event]:
        self.bad_messages += 1
        if self.state == HANDSHAKE:
            return self._fatal(code, message)
        if self.bad_messages > MAX_BAD_MESSAGES:
            return self._fatal(codes.TOO_MANY_ERRORS, "too many bad messages")
        self._send(Error(code, message))
        return []

    def _fatal(self, code: str, message: str) -> list[Event]:
        self._send(Error(code, message, fatal=True))
        self.state = CLOSED
        return [Closing(code, message)]

    def tick(self, now: float) -> list[Event]:
        """Timeouts and heartbeats; call it every second or so (or only once ``now`` has
        reached :attr:`due`)."""
        if self.state == CLOSED:
            self.due = _NEVER
            return []
        limits = self.limits
        if self.state == HANDSHAKE and now - self._opened_at > limits.handshake_timeout:
            self.due = _NEVER
            return self._fatal(codes.HANDSHAKE_TIMEOUT, "no Hello in time")
        if now - self._last_received > limits.idle_timeout:
            self.due = _NEVER
            return self._fatal(codes.IDLE_TIMEOUT, "nothing received in time")
        interval = limits.heartbeat_interval
        events: list[Event] = []
        if now - self._last_received >= interval and now - self._probed >= interval:
            self._probed = now
            events.append(HeartbeatDue())
        # The next time anything can happen: messages received later only move it later.
        due = min(
            self._last_received + limits.idle_timeout,
            max(self._last_received, self._probed) + interval,
        )
        if self.state == HANDSHAKE:
            due = min(due, self._opened_at + limits.handshake_timeout)
        self.due = due
        return events

    def alive(self, now: float) -> None:
        """The peer answered a probe (a WebSocket pong): that counts as hearing from it for
        the idle timeout."""
        if now > self._last_received:
            self._last_received = now

    def close(self, code: str, reason: str = "") -> None:
        """Close from the server's side (shutdown, table gone), telling the client why."""
        if self.state != CLOSED:
            self._send(Error(code, reason, fatal=True))
            self.state = CLOSED

    # ------------------------------------------------------------------ output

    def welcome(self, next_seq: int) -> None:
        """Answer the handshake (after :class:`Opened` was accepted by the table)."""
        identity = self.identity
        assert identity is not None
        self._send(
            Welcome(
                self.protocol,
                identity.table,
                identity.player,
                identity.client_id,
                next_seq,
            )
        )

    def snapshot(self, snap: StateSnapshot) -> None:
        """Send the client's whole view; resets the connection's delta encoder (and the
        client's shared decoder: out of step with the table's shared stream)."""
        self._encoder.reset()
        if self.cursor is not None:
            self.cursor.clear()
        self.version, self.epoch = snap.version, snap.epoch
        self._send(Snapshot(snap.version, snap.epoch, bytes.fromhex(snap.hash), snap.to_state()))

    def update(self, update: StateDelta | SplitUpdate | StateSnapshot) -> None:
        """Send a delta (encoded with this connection's encoder, its public part as a chunk of
        the table's shared stream when it can) or a snapshot."""
        if isinstance(update, StateSnapshot):
            self.snapshot(update)
            return
        message = self.update_message(update)
        if message is not None:
            self._out.append(message)

    def update_message(self, update: StateDelta | SplitUpdate) -> bytes | None:
        """:meth:`update` for a delta, without the queue: the encoded ``Update`` (or
        ``SharedUpdate``) message, for a connection layer that writes it out at once (the
        session then holds its version), or ``None`` when the client holds that version
        already. Raises :class:`~statesync.errors.WireError` when the delta is too large for
        a delta message (nothing changes: the caller sends a snapshot instead).

        A :class:`~statesync.fanout.SplitUpdate` goes out as a ``SharedUpdate`` when the
        client's shared decoder can take its chunk (in step with the chunk's generation, or
        the chunk starts one), else whole, like a plain delta."""
        if update.version == self.version and update.epoch == self.epoch:
            return None
        if isinstance(update, SplitUpdate):
            chunk, cursor = update.chunk, self.cursor
            if (
                cursor is not None
                and chunk.base_version == self.version
                and chunk.epoch == self.epoch
                and (
                    chunk.index == 0
                    or (cursor.generation == chunk.generation and cursor.next == chunk.index)
                )
            ):
                private = update.private
                data = self._encoder.encode(private) if private.ops else None
                message = update.message if data is None else None
                if message is None:
                    message = encode_shared_update(
                        chunk.base_version,
                        chunk.version,
                        chunk.epoch,
                        update.hash,
                        chunk.data,
                        data,
                        chunk.index == 0,
                    )
                    if data is None:  # the same bytes for every such connection: made once
                        update.message = message
                cursor.generation, cursor.next = chunk.generation, chunk.index + 1
                self.version, self.epoch = chunk.version, chunk.epoch
                self.bytes_sent += len(message)
                return message
            update = update.whole
        data = self._encoder.encode(update.delta)
        self.version, self.epoch = update.version, update.epoch
        return self._encode(
            Update(
                update.base_version, update.version, update.epoch, bytes.fromhex(update.hash), data
            )
        )

    def result(self, seq: int, outcome: Outcome) -> None:
        """Answer the action with ``seq``."""
        self._out.append(self.result_message(seq, outcome))

    def result_message(self, seq: int, outcome: Outcome) -> bytes:
        """:meth:`result` without the queue: the encoded ``Result`` message, for a connection
        layer that writes it out at once."""
        if isinstance(outcome, Accepted):
            message = Result(seq, True, outcome.version, duplicate=outcome.duplicate)
        else:
            message = Result(
                seq, False, outcome.version, outcome.code, outcome.message, outcome.duplicate
            )
        return self._encode(message)

    def error(self, code: str, message: str = "") -> None:
        """Send a non-fatal error."""
        self._send(Error(code, message))

    def data_to_send(self) -> list[bytes]:
        """The messages queued for the client, in order (each one WebSocket message)."""
        out, self._out = self._out, []
        return out

    def _send(self, message: Any) -> None:
        self._out.append(self._encode(message))

    def _encode(self, message: Any) -> bytes:
        data = encode(message)
        self.bytes_sent += len(data)
        return data
