"""A small WebSocket server for the client tests: one ServerSession per connection in front
of one StateSynchronizer (like the in-memory Harness of tests/protocol/test_sessions.py),
with knobs to kill connections, refuse new ones, hold actions, drop or corrupt a message."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from statesync.errors import ActionRejected
from statesync.games.tictactoe import TicTacToe
from statesync.protocol import codes
from statesync.protocol.messages import (
    ClientMessage,
    ProtocolError,
    ServerMessage,
    Update,
    decode_client,
    decode_server,
    encode,
)
from statesync.protocol.server_session import (
    CLOSED,
    OPEN,
    ActionReceived,
    Closing,
    Opened,
    ResyncRequested,
    ServerSession,
)
from statesync.synchronizer import StateSynchronizer

TOKENS = {"tok-ann": ("t1", "ann"), "tok-bob": ("t1", "bob"), "tok-spec": ("t1", None)}


@dataclass(eq=False)
class Link:
    ws: ServerConnection
    session: ServerSession
    outbox: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    gone: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def client_id(self) -> str | None:
        return self.session.identity.client_id if self.session.identity else None


class FakeServer:
    def __init__(self) -> None:
        self.table = StateSynchronizer(TicTacToe(), players=("ann", "bob"), seed=3)
        self.tokens = dict(TOKENS)
        self.links: list[Link] = []
        self.accepting = True
        self.deaf = False
        """Ignore every message received (a server that hangs with its sockets open)."""
        self.connections = 0
        """Connections accepted (WebSocket handshakes completed)."""
        self.received: list[tuple[str | None, ClientMessage]] = []
        self.closings: list[tuple[str | None, Closing]] = []
        self.actions_gate = asyncio.Event()
        self.actions_gate.set()
        self.dropped = asyncio.Event()
        self._drop: Callable[[Link, ServerMessage], bool] | None = None
        self._corrupt: set[str] = set()
        self._server: Server | None = None
        self.url = ""

    # ------------------------------------------------------------------ control

    async def start(self) -> None:
        self._server = await serve(
            self.handler, "127.0.0.1", 0, process_request=self.process_request
        )
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/ws"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def drop_next(self, predicate: Callable[[Link, ServerMessage], bool]) -> None:
        """Lose the next server message matching ``predicate`` (sets ``dropped``)."""
        self.dropped.clear()
        self._drop = predicate

    def corrupt_next_update(self, client_id: str) -> None:
        """Send the next Update to ``client_id`` with a wrong hash."""
        self._corrupt.add(client_id)

    async def kill(self, client_id: str | None = None, *, how: str = "shutdown") -> None:
        """Close the matching connections from the server's side: ``shutdown`` sends the
        fatal server/shutdown error first, ``abort`` drops the TCP connection."""
        victims = [k for k in self.links if client_id is None or k.client_id == client_id]
        for link in victims:
            if how == "abort":
                link.ws.transport.abort()
            else:
                link.session.close(codes.SHUTDOWN, "going down")
                self.flush(link)
                link.outbox.put_nowait(None)
        async with asyncio.timeout(5):
            for link in victims:
                await link.gone.wait()

    # ------------------------------------------------------------------ serving

    def verify(self, token: str, now: float) -> tuple[str, str | None]:
        if token not in self.tokens:
            raise ActionRejected("auth/bad_signature", "unknown token")
        return self.tokens[token]

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if not self.accepting:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "down\n")
        self.connections += 1
        return None

    async def handler(self, ws: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        link = Link(ws, ServerSession(self.verify, now=loop.time()))
        self.links.append(link)
        writer = asyncio.create_task(self.write(link))
        try:
            async for data in ws:
                assert isinstance(data, bytes)
                if self.deaf:
                    continue
                try:
                    self.received.append((link.client_id, decode_client(data)))
                except ProtocolError:
                    pass
                for event in link.session.receive(data, loop.time()):
                    await self.handle(link, event)
                self.flush(link)
                if link.session.state == CLOSED:
                    link.outbox.put_nowait(None)
                    break
        except ConnectionClosed:
            pass
        finally:
            self.links.remove(link)
            link.outbox.put_nowait(None)
            await writer
            link.gone.set()

    async def write(self, link: Link) -> None:
        try:
            while (data := await link.outbox.get()) is not None:
                await link.ws.send(data)
            await link.ws.close()
        except ConnectionClosed:
            pass

    async def handle(self, link: Link, event: Any) -> None:
        session = link.session
        if isinstance(event, Opened):
            identity = event.identity
            session.welcome(self.table.dedupe.last_seq(identity.client_id) + 1)
            session.update(
                self.table.sync(event.version, player_id=identity.player, epoch=event.epoch)
            )
        elif isinstance(event, ActionReceived):
            await self.actions_gate.wait()
            [outcome] = self.table.submit_nowait([event.action])
            session.result(event.action.seq, outcome)
            self.broadcast()
        elif isinstance(event, ResyncRequested):
            assert session.identity is not None
            session.snapshot(self.table.snapshot(session.identity.player))
        elif isinstance(event, Closing):
            self.closings.append((link.client_id, event))

    def broadcast(self) -> None:
        for link in self.links:
            session = link.session
            if session.state != OPEN or session.identity is None:
                continue
            update = self.table.sync(
                session.version, player_id=session.identity.player, epoch=session.epoch
            )
            session.update(update)
            self.flush(link)

    def flush(self, link: Link) -> None:
        for data in link.session.data_to_send():
            message = decode_server(data)
            if self._drop is not None and self._drop(link, message):
                self._drop = None
                self.dropped.set()
                continue
            if isinstance(message, Update) and link.client_id in self._corrupt:
                self._corrupt.discard(link.client_id)
                bad = bytes(b ^ 0xFF for b in message.hash)
                data = encode(
                    Update(message.base_version, message.version, message.epoch, bad, message.delta)
                )
            link.outbox.put_nowait(data)
