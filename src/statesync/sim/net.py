"""The simulated network: WebSocket-like connections between simulated clients and the server.

A :class:`Wire` is one WebSocket connection. Like a real one, each direction is reliable and
in order while the connection lives (TCP retransmits a lost packet: the simulation shows a
loss as a retransmission delay, never as a missing or reordered frame within a connection).
What a real network does *across* connections is simulated as it happens:

* **loss** -- a connection dies (:meth:`Wire.drop`): the frames the server sends after that
  never arrive; the client notices at once, the server only later (a half-open connection);
* **reordering and duplication** -- the frames the client sent just before the drop are still
  in the network and reach the server's old connection *after* the client has reconnected and
  re-sent its unanswered actions on the new one, so the same action arrives twice, in either
  order;
* **partitions** -- a connection stalls in both directions (:meth:`Wire.stall`); frames wait
  and then arrive in order, unless the client gives the connection up first;
* **server crash** -- every connection of the dead process is cut (:meth:`Wire.cut`): frames
  in flight are lost in both directions and the clients see a reset.

Delivery times come from the :class:`Network`'s seeded RNG and the :class:`Link` settings
(latency, jitter, retransmission delay), and every delivery is a timer on the
:class:`~statesync.sim.loop.SimLoop`, so the whole network is reproducible from the seed.

:class:`ServerSocket` is the server's end: it has the ``recv`` / ``send`` / ``close`` /
``transport.abort`` surface of a :mod:`websockets` server connection that
:class:`~statesync.server.connection.Connection` uses, so the real connection code runs on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK
from websockets.frames import Close
from websockets.protocol import State

if TYPE_CHECKING:
    import random
    from collections.abc import Callable

__all__ = ["Endpoint", "Link", "Network", "ServerSocket", "Wire"]

_STEP: Final = 1e-6
"""Minimum spacing of two deliveries in one direction (keeps FIFO order on equal times)."""


@dataclass(frozen=True, slots=True)
class Link:
    """One-way delay settings: ``latency`` plus up to ``jitter`` seconds, and with probability
    ``loss`` a lost packet costs one retransmission (``rto`` seconds more)."""

    latency: float = 0.005
    jitter: float = 0.002
    loss: float = 0.0
    rto: float = 0.2


class Endpoint(Protocol):
    """What the network calls on a client: a frame arrived, or the connection is gone."""

    def on_frame(self, wire: Wire, data: bytes) -> None: ...

    def on_closed(self, wire: Wire, reason: str) -> None: ...


class _Protocol:
    """The part of a ``websockets`` sans-I/O protocol object that
    :func:`websockets.asyncio.server.broadcast` writes through."""

    def __init__(self, socket: ServerSocket) -> None:
        self._socket = socket

    @property
    def state(self) -> State:
        return State.CLOSED if self._socket.closed else State.OPEN

    def send_binary(self, data: bytes) -> None:
        self._socket._written.append(bytes(data))


class _Transport:
    """The part of an asyncio transport the connection layer looks at: an unbounded write
    buffer that is always empty (the network takes each frame at once)."""

    def __init__(self, socket: ServerSocket) -> None:
        self._socket = socket

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (0, 1 << 20)

    def get_write_buffer_size(self) -> int:
        return 0

    def abort(self) -> None:
        self._socket.abort()


class ServerSocket:
    """The server's end of a :class:`Wire`, shaped like a ``websockets`` server connection:
    ``recv``, ``send``, ``ping``, ``close``, ``state``, ``transport`` and what
    :func:`websockets.asyncio.server.broadcast` uses (``protocol``, ``send_data``)."""

    request = None
    """No HTTP request: the connection is not pinned to a table."""
    send_in_progress = None
    logger = logging.getLogger(__name__)

    def __init__(self, wire: Wire) -> None:
        self._wire = wire
        self._inbox: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._written: list[bytes] = []
        self.closed = False
        self.protocol = _Protocol(self)
        self.transport = _Transport(self)

    @property
    def state(self) -> State:
        return State.CLOSED if self.closed else State.OPEN

    def send_data(self) -> None:
        """Hand the frames written through :attr:`protocol` to the network."""
        written, self._written = self._written, []
        for data in written:
            self._wire.to_client(data)

    async def recv(self) -> bytes:
        """The next frame from the client; raises ``ConnectionClosed`` once closed."""
        while not self._inbox:
            if self.closed:
                raise ConnectionClosedError(None, None)
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._inbox.popleft()

    async def send(self, data: bytes) -> None:
        """Send one frame to the client (never blocks: the network buffers it)."""
        if self.closed:
            raise ConnectionClosedOK(Close(1000, ""), None)
        self._wire.to_client(data)

    async def ping(self) -> asyncio.Future[float]:
        """A WebSocket ping that is never answered: simulated clients keep the connection
        alive with protocol ``Ping`` messages only, so a probe cannot save a silent one."""
        if self.closed:
            raise ConnectionClosedError(None, None)
        return asyncio.get_running_loop().create_future()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close: the client sees the close after the frames sent before it."""
        if not self.closed:
            self._closed_here()
            self._wire.close_to_client(f"closed by the server ({code} {reason})")

    def abort(self) -> None:
        """Drop the connection at once."""
        if not self.closed:
            self._closed_here()
            self._wire.reset_to_client("reset by the server")

    # ------------------------------------------------------------------ network side

    def _deliver(self, data: bytes) -> None:
        if self.closed:
            return
        self._inbox.append(data)
        self._wake()

    def _closed_here(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Wire:
    """One connection between a client :class:`Endpoint` and the server (see the module
    docstring). Made by :meth:`Network.open`."""

    def __init__(self, network: Network, number: int, client: Endpoint, link: Link) -> None:
        self.network = network
        self.number = number
        self.client = client
        self.link = link
        self.server = ServerSocket(self)
        self.client_closed = False
        """The client gave the connection up (or was told it closed)."""
        self.cut = False
        """Nothing more is delivered in either direction."""
        self.stalled_until = 0.0
        self._last = {True: 0.0, False: 0.0}  # to_server -> last delivery time

    def __repr__(self) -> str:
        return f"<Wire {self.number}>"

    # ------------------------------------------------------------------ timing

    def _when(self, to_server: bool) -> float:
        net, link = self.network, self.link
        now = net.loop.time()
        delay = link.latency + net.rng.random() * link.jitter
        if link.loss and net.rng.random() < link.loss:
            delay += link.rto
        when = max(now + delay, self.stalled_until + delay, self._last[to_server] + _STEP)
        self._last[to_server] = when
        return when

    # ------------------------------------------------------------------ client -> server

    def to_server(self, data: bytes) -> None:
        """The client sends a frame (ignored once the client dropped the connection)."""
        if self.client_closed or self.cut:
            return
        self.network.sent_to_server += 1
        self.network.loop.call_at(self._when(True), self._arrive_at_server, data)

    def _arrive_at_server(self, data: bytes) -> None:
        if not self.cut:
            self.network.trace(self.number, "c>s", data)
            self.server._deliver(data)

    # ------------------------------------------------------------------ server -> client

    def to_client(self, data: bytes) -> None:
        if self.cut:
            return
        self.network.sent_to_client += 1
        if self.network.observe is not None:
            self.network.observe(self, data)
        self.network.loop.call_at(self._when(False), self._arrive_at_client, data)

    def _arrive_at_client(self, data: bytes) -> None:
        if not self.cut and not self.client_closed:
            self.network.trace(self.number, "s>c", data)
            self.client.on_frame(self, data)

    def close_to_client(self, reason: str) -> None:
        if not self.cut:
            self.network.loop.call_at(self._when(False), self._client_learns, reason)

    def reset_to_client(self, reason: str) -> None:
        """A reset overtakes the data in flight: the client learns at once."""
        self.network.loop.call_at(self.network.loop.time() + self.link.latency, self._reset, reason)

    def _reset(self, reason: str) -> None:
        self.cut = True
        self._client_learns(reason)

    def _client_learns(self, reason: str) -> None:
        if not self.client_closed:
            self.client_closed = True
            self.network.trace(self.number, "x>c", reason.encode())
            self.client.on_closed(self, reason)

    # ------------------------------------------------------------------ faults

    def client_close(self) -> None:
        """The client gives the connection up (it is also told, like any close)."""
        if not self.client_closed:
            self.client_closed = True
            self.network.trace(self.number, "c-x", b"")

    def drop(self, server_notices_after: float) -> None:
        """The connection dies on the client's side: the client is told now, frames to it
        are lost from now on, frames it sent keep travelling, and the server notices after
        ``server_notices_after`` seconds (a half-open connection until then)."""
        self.network.drops += 1
        self._client_learns("connection dropped")
        loop = self.network.loop
        loop.call_at(loop.time() + server_notices_after, self._server_learns)

    def _server_learns(self) -> None:
        if not self.server.closed:
            self.network.trace(self.number, "x>s", b"")
            self.server._closed_here()

    def stall(self, seconds: float) -> None:
        """Partition: nothing moves in either direction for ``seconds``."""
        self.network.partitions += 1
        self.stalled_until = max(self.stalled_until, self.network.loop.time() + seconds)

    def sever(self) -> None:
        """The server process died: frames in flight are lost both ways; the client sees a
        reset shortly (the kernel answers for the dead process)."""
        if self.cut:
            return
        self.cut = True
        self.server.closed = True
        loop = self.network.loop
        loop.call_at(loop.time() + self.link.latency, self._client_learns, "server crashed")


class Network:
    """Makes :class:`Wire` objects and holds the shared RNG, counters and trace.

    ``accept(socket)`` is called (by a timer, one latency after :meth:`open`) with the
    server's end of each new connection; it returns False while no server listens, and the
    client then sees the connection refused. ``observe(wire, frame)`` sees every frame the
    server sends, whether or not it will arrive (the leak oracle). ``trace(number, kind,
    data)`` records every delivery (the run's fingerprint).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        rng: random.Random,
        *,
        accept: Callable[[Wire], bool],
        observe: Callable[[Wire, bytes], None] | None = None,
        trace: Callable[[int, str, bytes], None] | None = None,
    ) -> None:
        self.loop = loop
        self.rng = rng
        self._accept = accept
        self.observe = observe
        self._trace = trace
        self.wires: list[Wire] = []
        self.sent_to_server = 0
        self.sent_to_client = 0
        self.drops = 0
        self.partitions = 0
        self.refused = 0

    def trace(self, number: int, kind: str, data: bytes) -> None:
        if self._trace is not None:
            self._trace(number, kind, data)

    def open(self, client: Endpoint, link: Link) -> Wire:
        """A client connects; the server accepts it half a latency later (or refuses), so
        before the client's first frame arrives."""
        wire = Wire(self, len(self.wires), client, link)
        self.wires.append(wire)
        self.loop.call_at(self.loop.time() + link.latency / 2, self._connect, wire)
        return wire

    def _connect(self, wire: Wire) -> None:
        if wire.client_closed:
            return
        if not self._accept(wire):
            self.refused += 1
            wire.cut = True
            wire._client_learns("connection refused")
