"""``Table``: one client's live replica of one table, kept in sync over a WebSocket.

Theory of operation
-------------------
All protocol logic is in the sans-I/O :class:`~statesync.protocol.client_session.ClientSession`;
this module only moves its bytes. One background task owns the socket::

    connect -> send Hello -> for every binary message: session.receive(message)
                                                       send session.data_to_send()
                                                       dispatch the events
    connection lost / non-fatal failure -> sleep(backoff.next()) -> connect again
    fatal auth/... or protocol/unsupported_version -> stop: fail act(), updates(), wait_for()

``act()`` queues the action in the session (which sends it now if the session is open, or
re-sends it after the next ``Welcome`` with its original ``seq``) and awaits a future that
the matching ``Result`` resolves, so a call in flight simply keeps waiting across reconnects
and the table's dedupe makes it take effect once. An accepted result is handed back only once
the authoritative view has reached the version it created (or a snapshot arrived), so after
``await table.act(...)`` returns ok, :attr:`Table.authoritative` shows the action.

Hash checks and self-healing resync are the session's: a bad update queues a ``Resync``,
which is sent like everything else the session queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
import weakref
from typing import TYPE_CHECKING, Any, Final

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidURI, WebSocketException
from websockets.proxy import get_proxy
from websockets.uri import parse_uri

from statesync.client.backoff import Backoff
from statesync.client.errors import ClientClosedError, ConnectTimeoutError, ServerRefusedError
from statesync.client.updates import Updates
from statesync.protocol import codes
from statesync.protocol.client_session import (
    OPEN,
    ActionResult,
    ClientSession,
    Desynced,
    ServerError,
    StateChanged,
    Welcomed,
)
from statesync.value import check_value

if TYPE_CHECKING:
    from collections.abc import Callable, Generator
    from types import TracebackType

    from websockets.asyncio.client import ClientConnection

    from statesync.game import Game

logger = logging.getLogger(__name__)

TERMINAL_CODES: Final = frozenset({codes.UNSUPPORTED_VERSION, codes.BAD_CLIENT_ID})
"""Fatal server error codes that retrying cannot fix (besides every ``auth/...`` code)."""
MAX_MESSAGE_BYTES: Final = 2**24
"""Largest message accepted from the server (a snapshot of a big table)."""


def is_terminal(code: str) -> bool:
    """Whether a fatal server error with ``code`` ends the client for good (no reconnect).

    >>> is_terminal("auth/expired"), is_terminal("server/shutdown")
    (True, False)
    """
    return code.startswith("auth/") or code in TERMINAL_CODES


class Table:
    """A live, self-healing replica of one table; usually made by :func:`connect`.

    Reading is synchronous and always consistent: :attr:`state` (predicted when the game's
    rules were given), :attr:`authoritative`, :attr:`version`. Changes are announced to
    :meth:`on_change` callbacks, :meth:`updates` iterators and :meth:`wait_for` waiters.
    Example (plain code, it needs a server)::

        async with statesync.client.connect("ws://localhost:8765/ws", token) as table:
            print(table.player, table.version, table.state["game"])
            outcome = await table.act("place", {"cell": 4})
            if not outcome.ok:
                print("refused:", outcome.code)
            async for version in table.updates():
                print(version, table.state["game"])
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        client_id: str | None = None,
        game: Game | None = None,
        backoff: Backoff | None = None,
        open_timeout: float = 10.0,
        heartbeat: float | None = 10.0,
    ) -> None:
        client_id = uuid.uuid4().hex if client_id is None else client_id
        if not 1 <= len(client_id) <= 128 or client_id.startswith("$"):
            raise ValueError("client_id must be 1-128 characters, not starting with '$'")
        self.url = url
        self.client_id = client_id
        """Names this client instance; kept across reconnects so the table can dedupe."""
        self.open_timeout = open_timeout
        self.heartbeat = heartbeat
        """Seconds without sending, or without receiving, before a protocol ``Ping``; a Ping
        that nothing answers for as long drops the connection (which then reconnects).
        ``None``: never ping (the server closes a connection silent for its idle timeout)."""
        self.backoff = backoff if backoff is not None else Backoff()
        self._session = ClientSession(token, client_id, game=game)
        self._reconnects = 0
        self._welcomes = 0
        self._ws: ClientConnection | None = None
        self._offline = asyncio.Event()  # set while there is no connection
        self._offline.set()
        self._send_lock = asyncio.Lock()
        self._last_sent = 0.0
        self._last_received = 0.0
        self._ping_sent: float | None = None  # when the unanswered Ping went out
        self._nonce = 0
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._futures: dict[int, asyncio.Future[ActionResult]] = {}
        self._held: list[ActionResult] = []
        self._listeners: list[Callable[[int], object]] = []
        self._subscribers: weakref.WeakSet[Updates] = weakref.WeakSet()
        self._changed = asyncio.Event()
        self._closing = False
        self._failure: ClientClosedError | None = None
        self._end: BaseException | None = None  # what updates() iterators end with
        self._last_error: BaseException | None = None

    # ------------------------------------------------------------------ reading

    @property
    def state(self) -> dict[str, Any] | None:
        """The view to show: the authoritative view plus this client's unanswered actions
        when the game was given (prediction), else the authoritative view. ``None`` before
        the first snapshot. Read-only."""
        return self._session.state

    @property
    def authoritative(self) -> dict[str, Any] | None:
        """The last view the server confirmed (read-only)."""
        return self._session.authoritative

    @property
    def version(self) -> int:
        """The authoritative version held (-1 before the first snapshot)."""
        return self._session.version

    @property
    def player(self) -> str | None:
        """This client's player id from the token (``None``: a spectator)."""
        return self._session.player

    @property
    def table_id(self) -> str | None:
        """The table's id, from the server's ``Welcome``."""
        return self._session.table

    @property
    def connected(self) -> bool:
        """Whether the session is open right now (between ``Welcome`` and a disconnect)."""
        return self._session.phase == OPEN and self._ws is not None

    @property
    def closed(self) -> bool:
        """Whether the client stopped (closed by the user, or refused by the server)."""
        return self._failure is not None

    @property
    def pending(self) -> int:
        """Actions sent (or waiting to be sent) that have no answer yet."""
        return len(self._session.pending)

    @property
    def stats(self) -> dict[str, int]:
        """Counters: ``desyncs``, ``resyncs``, ``snapshots``, ``updates``, ``bytes``
        (received) and ``reconnects`` (connections re-opened after the first). A copy."""
        return {**self._session.stats, "reconnects": self._reconnects}

    # ------------------------------------------------------------------ acting

    async def act(self, type: str, payload: Any = None) -> ActionResult:
        """Ask the table for an action and wait for its outcome (``ok``, ``version``,
        ``code``, ``message``, ``duplicate``). A refusal is an outcome, not an exception.
        Connection losses do not fail the call: the action is re-sent after reconnecting
        and takes effect at most once. Raises :class:`ClientClosedError` only when the
        client is closed (by :meth:`close`, or the server refused the session), and
        :class:`~statesync.errors.InvalidValueError` for a payload that is not a state value.
        Cancelling the call stops the wait, not the action."""
        self._raise_if_closed()
        check_value(payload)
        seq = self._session.act(type, payload)
        future: asyncio.Future[ActionResult] = asyncio.get_running_loop().create_future()
        self._futures[seq] = future
        logger.debug("act seq=%d %s", seq, type)
        try:
            await self._flush_quietly()
            return await future
        finally:
            self._futures.pop(seq, None)

    # ------------------------------------------------------------------ watching

    def on_change(self, callback: Callable[[int], object]) -> Callable[[], None]:
        """Call ``callback(version)`` after every authoritative change; returns a function
        that unsubscribes. Exceptions in the callback are logged, not raised."""
        self._listeners.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return unsubscribe

    def updates(self, maxsize: int = 16) -> Updates:
        """An async iterator of the authoritative versions reached from now on. A consumer
        that lags loses the oldest, never the newest (at most ``maxsize`` are buffered).
        It ends when the client is closed by the user and raises if the server refused the
        session. ``close()`` it (or drop it) when done."""
        updates = Updates(maxsize, on_close=self._subscribers.discard)
        if self._failure is not None:
            updates.end(self._end)
        else:
            self._subscribers.add(updates)
        return updates

    async def wait_for(
        self,
        predicate: Callable[[dict[str, Any]], object],
        timeout: float | None = None,  # noqa: ASYNC109 - the documented API
    ) -> dict[str, Any]:
        """Wait until ``predicate(authoritative view)`` holds; returns that view. Raises
        :class:`TimeoutError` after ``timeout`` seconds, :class:`ClientClosedError` if the
        client closes first."""

        async def wait() -> dict[str, Any]:
            while True:
                changed = self._changed
                state = self.authoritative
                if state is not None and predicate(state):
                    return state
                self._raise_if_closed()
                await changed.wait()

        return await asyncio.wait_for(wait(), timeout)

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Start the background connection and wait for the first snapshot; raises
        :class:`ConnectTimeoutError` after ``open_timeout``, :class:`ServerRefusedError` if
        the server refuses the session. :func:`connect` calls it."""
        if self._task is not None:
            raise RuntimeError("the table is already open")
        self._raise_if_closed()
        ready = self._ready = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(), name=f"statesync-client-{self.client_id}")
        try:
            await asyncio.wait_for(asyncio.shield(ready), self.open_timeout)
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if ready.cancelled() and (me is None or not me.cancelling()):
                raise ClientClosedError("the client was closed while connecting") from None
            await self.close()
            raise
        except TimeoutError:
            cause = self._last_error
            await self.close()
            raise ConnectTimeoutError(
                f"no snapshot from {self.url} within {self.open_timeout} s"
                + (f" (last error: {cause!r})" if cause is not None else "")
            ) from cause
        except BaseException:
            await self.close()
            raise

    async def close(self, leave: bool = False) -> None:
        """Say goodbye to the server (``leave``: also give up the seat) and stop. Unanswered
        :meth:`act` calls raise :class:`ClientClosedError`; :meth:`updates` iterators end.
        Idempotent."""
        if self._closing:
            return
        self._closing = True
        ws = self._ws
        if ws is not None and self._session.phase == OPEN:
            with contextlib.suppress(WebSocketException, OSError):
                async with self._send_lock:
                    await ws.send(self._session.bye(leave=leave))
                await ws.close()
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._fail(ClientClosedError("the client was closed"), by_user=True)

    async def drop(self) -> None:
        """Simulate a network failure (for demos and tests): abort the current connection
        without a goodbye and return once the client noticed. It reconnects by itself."""
        ws = self._ws
        if ws is not None:
            ws.transport.abort()
            await self._offline.wait()

    async def __aenter__(self) -> Table:
        if self._task is None:
            await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return (
            f"<Table {self.table_id!r} player={self.player!r} version={self.version} "
            f"{'connected' if self.connected else 'closed' if self.closed else 'offline'}>"
        )

    # ------------------------------------------------------------------ the connection

    async def _run(self) -> None:
        try:
            while not self._closing and self._failure is None:
                try:
                    await self._connection()
                except InvalidURI as e:
                    self._fail(ClientClosedError(f"bad server URL: {e}"), cause=e)
                    return
                except (WebSocketException, OSError) as e:  # TimeoutError is an OSError
                    self._last_error = e
                    logger.info("connection to %s lost or refused: %r", self.url, e)
                if self._closing or self._failure is not None:
                    return
                delay = self.backoff.next()
                logger.debug("reconnecting to %s in %.3f s", self.url, delay)
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug: stop rather than spin
            logger.exception("statesync client stopped")
            self._fail(ClientClosedError(f"the client stopped: {e!r}"), cause=e)

    @functools.cached_property
    def _proxy(self) -> str | None:
        """The proxy the system configures for the URL (``None``: connect directly), looked
        up on the first connection only: websockets would scan the whole environment again
        on every reconnect. Raises :class:`InvalidURI` for a bad URL."""
        return get_proxy(parse_uri(self.url))

    async def _connection(self) -> None:
        async with ws_connect(
            self.url,
            proxy=self._proxy,
            open_timeout=self.open_timeout,
            max_size=MAX_MESSAGE_BYTES,
            ping_interval=None,  # liveness is the protocol's Ping (see _heartbeat)
        ) as ws:
            heartbeat: asyncio.Task[None] | None = None
            loop = asyncio.get_running_loop()
            try:
                async with self._send_lock:
                    self._ws = ws
                    self._offline.clear()
                    # The Hello awaits an answer as a Ping does (see _heartbeat).
                    self._last_received = self._ping_sent = loop.time()
                    await self._send(ws, self._session.connect())
                if self.heartbeat is not None:
                    heartbeat = asyncio.create_task(self._heartbeat(ws, self.heartbeat))
                async for data in ws:
                    self._last_received, self._ping_sent = loop.time(), None
                    if isinstance(data, str):
                        logger.warning("ignoring a text message from the server")
                        continue
                    self._dispatch(self._session.receive(data))
                    if self._failure is not None:
                        return
                    await self._flush(ws)  # resent actions, a Resync, ...
                self._last_error = None
                logger.info("connection to %s closed: %s", self.url, ws.close_reason or "-")
            finally:
                if heartbeat is not None:
                    heartbeat.cancel()
                    await asyncio.gather(heartbeat, return_exceptions=True)
                self._ws = None
                self._session.disconnected()
                self._offline.set()

    async def _heartbeat(self, ws: ClientConnection, interval: float) -> None:
        """Keep the connection alive, and make sure the server is: send a ``Ping`` when
        nothing was sent, or nothing received, for ``interval`` seconds (the server closes a
        connection it hears nothing from, and answers a Ping at once). If nothing at all
        arrives within ``interval`` of a Ping (or of the ``Hello``), the server or the path
        to it is gone: drop the connection, and the client reconnects as after any other
        loss."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(WebSocketException, OSError):
            while True:
                if self._ping_sent is not None:
                    due = self._ping_sent + interval
                else:
                    due = min(self._last_sent, self._last_received) + interval
                now = loop.time()
                if now < due:
                    await asyncio.sleep(due - now)
                    continue
                if self._ping_sent is not None:
                    logger.info("no answer from %s for %.1f s: reconnecting", self.url, interval)
                    ws.transport.abort()
                    return
                if self._session.phase != OPEN:  # answered, but not open yet
                    await asyncio.sleep(interval)
                    continue
                self._nonce += 1
                async with self._send_lock:
                    self._ping_sent = loop.time()  # cleared by whatever arrives next
                    await self._send(ws, self._session.ping(self._nonce))

    async def _send(self, ws: ClientConnection, data: bytes) -> None:
        self._last_sent = asyncio.get_running_loop().time()
        await ws.send(data)

    async def _flush(self, ws: ClientConnection | None = None) -> None:
        """Send what the session queued, in order (nothing is lost by dropping it while
        offline: the session re-sends unanswered actions after the next ``Welcome``)."""
        async with self._send_lock:
            ws = ws or self._ws
            out = self._session.data_to_send()
            if ws is None or ws is not self._ws:
                return
            for data in out:
                await self._send(ws, data)

    async def _flush_quietly(self) -> None:
        with contextlib.suppress(WebSocketException, OSError):  # the reader reconnects
            await self._flush()

    # ------------------------------------------------------------------ events

    def _dispatch(self, events: list[Any]) -> None:
        for event in events:
            if isinstance(event, StateChanged):
                self._state_changed(event)
            elif isinstance(event, ActionResult):
                if event.ok and event.version > self.version:
                    self._held.append(event)  # until the view shows it
                else:
                    self._resolve(event)
            elif isinstance(event, Welcomed):
                self._welcomes += 1
                if self._welcomes > 1:
                    self._reconnects += 1
                self.backoff.reset()
                logger.info(
                    "welcomed to table %s as %s (resent %d actions)",
                    event.table,
                    event.player,
                    event.resent,
                )
            elif isinstance(event, Desynced):
                logger.warning(
                    "desync at version %d (%s); requested a snapshot", event.version, event.reason
                )
            elif isinstance(event, ServerError):
                self._server_error(event)

    def _state_changed(self, event: StateChanged) -> None:
        held, self._held = self._held, []
        for result in held:
            if event.snapshot or result.version <= self.version:
                self._resolve(result)
            else:
                self._held.append(result)
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)
        for callback in list(self._listeners):
            try:
                callback(event.version)
            except Exception:
                logger.exception("on_change callback %r failed", callback)
        for updates in list(self._subscribers):
            updates.put(event.version)
        self._changed.set()
        self._changed = asyncio.Event()

    def _resolve(self, result: ActionResult) -> None:
        future = self._futures.pop(result.seq, None)
        if future is not None and not future.done():
            future.set_result(result)

    def _server_error(self, event: ServerError) -> None:
        if event.fatal and is_terminal(event.code):
            logger.error("server refused the session: %s %s", event.code, event.message)
            self._fail(ServerRefusedError(event.code, event.message))
        elif event.fatal:
            logger.info("server closed the session: %s %s", event.code, event.message)
        else:
            logger.warning("server error: %s %s", event.code, event.message)

    # ------------------------------------------------------------------ stopping

    def _raise_if_closed(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closing:
            raise ClientClosedError("the client was closed")

    def _fail(
        self, error: ClientClosedError, *, by_user: bool = False, cause: BaseException | None = None
    ) -> None:
        if self._failure is not None:
            return
        if cause is not None:
            error.__cause__ = cause
        self._failure = error
        self._end = None if by_user else error
        held, self._held = self._held, []
        for result in held:  # the outcome is known: hand it over
            self._resolve(result)
        for future in self._futures.values():
            if not future.done():
                future.set_exception(error)
        self._futures.clear()
        ready = self._ready
        if ready is not None and not ready.done():
            if by_user:
                ready.cancel()
            else:
                ready.set_exception(error)
        for updates in list(self._subscribers):
            updates.end(self._end)
        self._subscribers.clear()
        self._changed.set()


class _Connecting:
    """What :func:`connect` returns: ``async with`` it, or ``await`` it."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def __await__(self) -> Generator[Any, None, Table]:
        return self._open().__await__()

    async def _open(self) -> Table:
        await self._table.open()
        return self._table

    async def __aenter__(self) -> Table:
        return await self._open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._table.close()


def connect(
    url: str,
    token: str,
    *,
    client_id: str | None = None,
    game: Game | None = None,
    backoff: Backoff | None = None,
    open_timeout: float = 10.0,
    heartbeat: float | None = 10.0,
) -> _Connecting:
    """Connect to a table at ``url`` (``ws://HOST:PORT/ws``) with ``token``; returns once
    the first snapshot arrived. Use it as ``async with`` (closes on exit) or ``await`` it
    (then call :meth:`Table.close`). ``client_id`` defaults to a random one, kept for the
    life of the table; ``game`` enables prediction; ``backoff`` paces reconnects;
    ``heartbeat`` is the quiet time before a protocol ``Ping``, and how long an unanswered
    Ping may wait before the connection is dropped and made again (``None``: never ping)::

        async with connect("ws://localhost:8765/ws", token, game=TicTacToe()) as table:
            await table.act("place", {"cell": 4})

        table = await connect("ws://localhost:8765/ws", token)
        try:
            await table.wait_for(lambda state: state["game"]["status"] != "playing")
        finally:
            await table.close(leave=True)
    """
    return _Connecting(
        Table(
            url,
            token,
            client_id=client_id,
            game=game,
            backoff=backoff,
            open_timeout=open_timeout,
            heartbeat=heartbeat,
        )
    )
