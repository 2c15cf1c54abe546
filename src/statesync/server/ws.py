"""The WebSocket server: the statesync protocol (docs/protocol.md) over ``websockets``.

Endpoints, all on one port:

* ``/ws`` -- the WebSocket endpoint; one protocol message per binary message. An optional
  query ``?table=ID`` pins the connection to one table: a token for another table is refused
  with ``auth/wrong_table`` (a router in front of several servers can use it).
* ``GET /healthz`` -- ``200 ok``.
* ``GET /metrics`` -- the :class:`~statesync.server.metrics.Metrics` in the Prometheus text
  format.
* anything else -- ``404``.

Structure: :class:`Server` owns the listening socket, a
:class:`~statesync.server.registry.TableRegistry` (one
:class:`~statesync.server.table.TableActor` per table, loaded or created by the first
connection that names it) and one :class:`~statesync.server.connection.Connection` per
socket (the reader/writer pair that drives a sans-I/O
:class:`~statesync.protocol.server_session.ServerSession`). A ticker task calls
:meth:`Server.tick` every second to enforce the sessions' handshake and idle timeouts, then
unloads tables nobody has used for ``idle_unload`` seconds (300 by default) and marks
disconnected the players whose connection dropped, or whom a table loaded after a restart still
marked connected, and who were not back within ``reconnect_grace`` seconds (10 by default).

Transport settings derived from :class:`~statesync.protocol.limits.Limits`:

* ``max_size`` is ``4 * max_message_bytes``: bigger frames are refused by the library, which
  closes the connection with 1009; frames between the limit and that are answered with a
  non-fatal ``protocol/too_large`` by the session, so a client learns what went wrong.
* no WebSocket keep-alive of the library's own: liveness is the protocol's. Clients send
  something (a ``Ping`` if nothing else) while they are connected, and a connection the
  server has heard nothing from for ``idle_timeout`` is closed. A client silent for
  ``heartbeat_interval`` is probed with one WebSocket ping (the session's ``HeartbeatDue``),
  and its pong counts as hearing from it. Busy connections cost no pings at all.
* socket reads of at most 64 KiB (asyncio's default of 256 KiB makes every read allocate,
  and give back, a buffer large enough to be mapped and unmapped each time).
* per-message deflate is off: update payloads are already deflated by the wire format
  (wire-format.md), and compression would cost a zlib context per connection.

Metrics: the ``tables`` and ``connections`` gauges; ``actions_total`` and
``actions_rejected_total`` (also for actions the session refuses itself: rate limit,
spectator); ``bytes_sent_total`` and ``messages_sent_total`` (every frame, as encoded);
``bad_messages_total{code}`` (every ``Error`` sent in answer to client input, and
``server/internal`` for failures of the server); ``desyncs_detected_total`` (``Resync``
requests) and ``resyncs_total`` (snapshots sent for them, or because an update did not fit
the wire format); ``reconnects_total`` (``Hello`` with a version held); ``send_workers``,
``send_worker_writes_total`` and ``send_worker_failures_total`` (see
:mod:`statesync.server.sendpool`); and ``store_latency_seconds``, measured by wrapping the
store in a :class:`~statesync.server.registry.TimedStore` that times each ``append`` (one
group-committed batch).

Shutdown (:meth:`Server.stop`) is graceful: stop accepting, stop reading, let every table
answer the actions it has queued and flush its subscribers, send every client what is
queued followed by a fatal ``server/shutdown`` error, close. The store is the caller's: it is
not closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import time
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import serve

from statesync.protocol.limits import Limits
from statesync.server.connection import Connection, MessageConnection
from statesync.server.metrics import CONTENT_TYPE, Metrics
from statesync.server.registry import TableRegistry, TimedStore
from statesync.server.sendpool import SendPool

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from websockets.asyncio.server import Server as WsServer
    from websockets.asyncio.server import ServerConnection
    from websockets.http11 import Request, Response

    from statesync.game import Game
    from statesync.server.auth import TokenSigner
    from statesync.server.table import TableActor
    from statesync.storage import Store

__all__ = ["WS_PATH", "Server"]

log = logging.getLogger(__name__)

WS_PATH: Final = "/ws"
"""The path of the WebSocket endpoint."""
TICK_INTERVAL: Final = 1.0
"""Seconds between two :meth:`Server.tick` calls of the ticker task."""
CLOSE_GRACE: Final = 5.0
"""Seconds :meth:`Server.stop` lets clients take their last messages before dropping them."""


class Server:
    """Serves ``game`` tables from ``store`` to WebSocket clients holding tokens signed by
    ``signer`` (see the module docstring).

    ``game_ref`` (``"module:Class"``) is recorded with tables it creates; ``tick_rate`` is
    handed to every :class:`~statesync.server.table.TableActor` (``None``: flush after every
    batch); ``clock`` is wall-clock seconds (token expiry, session timeouts, table
    timestamps); a table nobody has used for ``idle_unload`` seconds is unloaded from memory
    (``None``: never). A seat whose player's connection dropped stays as it is for
    ``reconnect_grace`` seconds, and so do the seats a table loaded after a restart marks
    connected: a player back in time finds it untouched, the others are marked disconnected
    (0: at once; see :mod:`statesync.server.registry`). ``send_workers`` helper processes
    take a share of the writes when one update goes to many connections (a thousand
    spectators; see :mod:`statesync.server.sendpool`); 0, the default, writes everything from
    this process. :attr:`tables` holds the loaded tables by id. Use it as an async context
    manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        game: Game,
        store: Store,
        signer: TokenSigner,
        *,
        game_ref: str = "",
        limits: Limits | None = None,
        tick_rate: float | None = None,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        idle_unload: float | None = 300.0,
        reconnect_grace: float = 10.0,
        send_workers: int = 0,
    ) -> None:
        self.game = game
        self.store = store
        self.signer = signer
        self.limits = limits or Limits()
        self.clock = clock
        self.metrics = metrics or Metrics()
        self._registry = TableRegistry(
            game,
            TimedStore(store, self.metrics),
            game_ref=game_ref,
            tick_rate=tick_rate,
            clock=clock,
            metrics=self.metrics,
            idle_unload=idle_unload,
            reconnect_grace=reconnect_grace,
        )
        self.tables: dict[str, TableActor] = self._registry.tables
        """The loaded tables by id (the actors run until :meth:`stop`)."""
        self.connections: set[Connection] = set()
        """The open connections."""
        self._ws: WsServer | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._stopping = False
        self._stopped: asyncio.Future[None] | None = None
        self._host = ""
        if send_workers < 0:
            raise ValueError("send_workers must be 0 or more")
        self.pool: SendPool | None = (
            SendPool(send_workers, metrics=self.metrics) if send_workers else None
        )
        """The send workers that share out large fan-outs (``send_workers`` > 0), else None."""

    # ------------------------------------------------------------------ lifecycle

    async def start(
        self, host: str = "127.0.0.1", port: int = 8765, *, backlog: int = 1024
    ) -> None:
        """Listen on ``host:port`` (``port`` 0: an ephemeral port, see :attr:`port`).
        ``backlog`` is the listen queue: large enough for a reconnect storm (asyncio's
        default of 100 makes the kernel drop SYNs when hundreds of clients come back at once,
        and each of those waits a full second to retry). Raises :class:`RuntimeError` if the
        server was started before, and :class:`OSError` if the address cannot be bound or a
        send worker cannot be started (then none is left running)."""
        if self._ws is not None or self._stopping:
            raise RuntimeError("a Server can be started once")
        limits = self.limits
        if self.pool is not None:
            await self.pool.start()
        try:
            self._ws = await serve(
                self._handle,
                host,
                port,
                process_request=self._route,
                max_size=4 * limits.max_message_bytes,
                ping_interval=None,
                create_connection=MessageConnection,
                compression=None,
                logger=log,
                backlog=backlog,
            )
        except BaseException:
            if self.pool is not None:
                await self.pool.close()
            raise
        self._host = host
        self._ticker = asyncio.get_running_loop().create_task(self._tick_loop())

    @property
    def port(self) -> int:
        """The port listened on. Raises :class:`RuntimeError` before :meth:`start`."""
        if self._ws is None or not self._ws.sockets:
            raise RuntimeError("the server is not listening")
        return int(self._ws.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """The WebSocket URL clients connect to (``ws://host:port/ws``)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"ws://{host}:{self.port}{WS_PATH}"

    async def stop(self) -> None:
        """Stop gracefully (see the module docstring); idempotent, and concurrent calls
        all wait for the same shutdown. Does not close the store."""
        if self._stopped is None:
            self._stopped = asyncio.get_running_loop().create_future()
            try:
                await self._shutdown()
            finally:
                self._stopped.set_result(None)
        else:
            await asyncio.shield(self._stopped)

    async def _shutdown(self) -> None:
        self._stopping = True
        ws = self._ws
        if ticker := self._ticker:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        if ws is not None:
            ws.server.close()  # stop accepting; handshakes in progress get a 503
        conns = list(self.connections)
        for conn in conns:
            conn.stop_input()
        await asyncio.sleep(0)  # action tasks spawned just before take their place in line
        try:
            await self._registry.close()  # answers queued actions, flushes subscribers
        except Exception:
            log.exception("a table actor failed while stopping")
        for conn in conns:
            await conn.settle()  # their results are in the outboxes now
        for conn in self.connections:
            conn.shutdown()
        waiting = [asyncio.ensure_future(c.closed.wait()) for c in self.connections]
        if waiting:
            _, late = await asyncio.wait(waiting, timeout=CLOSE_GRACE)
            for task in late:
                task.cancel()
            for conn in self.connections:
                if not conn.closed.is_set():
                    conn.abort()
        if ws is not None:
            ws.close()
            await ws.wait_closed()
        if self.pool is not None:
            await self.pool.close()

    async def __aenter__(self) -> Server:
        """Start on ``127.0.0.1:8765``; prefer ``await start(host, port)`` to choose."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop gracefully."""
        await self.stop()

    # ------------------------------------------------------------------ serving

    def tick(self, now: float | None = None) -> None:
        """Enforce every session's handshake and idle timeouts at ``now`` (default: the
        clock). The server calls it every :data:`TICK_INTERVAL` seconds."""
        now = self.clock() if now is None else now
        for conn in list(self.connections):
            if conn.session.due <= now:  # else its session has nothing to do yet
                conn.tick(now)

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_INTERVAL)
            try:
                self.tick()
                if self.pool is not None:
                    self.pool.check()
                await self._registry.unload_idle()
                await self._registry.release_absent()
            except Exception:  # pragma: no cover - Connection.tick catches its own
                log.exception("statesync server tick failed")

    def _route(self, conn: ServerConnection, request: Request) -> Response | None:
        """Answer plain HTTP requests; let WebSocket upgrades to :data:`WS_PATH` through."""
        path = urlsplit(request.path).path
        if path == "/healthz":
            return conn.respond(http.HTTPStatus.OK, "ok\n")
        if path == "/metrics":
            response = conn.respond(http.HTTPStatus.OK, self.metrics.render())
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = CONTENT_TYPE
            return response
        upgrade = request.headers.get("Upgrade", "")
        if path == WS_PATH and upgrade.lower() == "websocket":
            return None
        return conn.respond(http.HTTPStatus.NOT_FOUND, "not found\n")

    async def _handle(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path if ws.request else "").query)
        pin = query.get("table", [None])[-1] or None
        conn = Connection(
            ws,
            self._registry,
            self.signer,
            limits=self.limits,
            metrics=self.metrics,
            clock=self.clock,
            table_pin=pin,
            pool=self.pool,
        )
        _limit_reads(ws)
        if self._stopping:
            conn.shutdown()
        self.connections.add(conn)
        self.metrics.set("connections", len(self.connections))
        try:
            await conn.run()
        finally:
            self.connections.discard(conn)
            self.metrics.set("connections", len(self.connections))


_READ_SIZE: Final = 65536


def _limit_reads(ws: ServerConnection) -> None:
    """Read at most 64 KiB per ``recv`` call. asyncio's selector transport asks for 256 KiB
    each time; that much is above glibc's mmap threshold, so every read of a few bytes mapped,
    faulted in and unmapped a fresh buffer. (Other event loops' transports have no such
    attribute and are left alone.)"""
    transport = ws.transport
    if getattr(transport, "max_size", 0) > _READ_SIZE:
        with contextlib.suppress(AttributeError):
            transport.max_size = _READ_SIZE  # type: ignore[attr-defined]
