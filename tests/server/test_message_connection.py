"""MessageConnection tells the connection layer the moment its WebSocket leaves OPEN.

The connection layer writes data frames to the transport itself and, per delivery, reads a
flag instead of the protocol's state; these tests hold the flag to the protocol. A raw TCP
client drives a real websockets server over loopback, so each frame arrives exactly when the
test sends it and the TCP connection stays up after a close frame (the server then waits
for the client to close it: ``close_timeout``, longer than any wait here)."""

from __future__ import annotations

import asyncio
import base64
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from websockets.asyncio.server import serve
from websockets.protocol import State

from statesync.protocol.limits import Limits
from statesync.server.connection import Connection, MessageConnection
from statesync.server.metrics import Metrics

KEY = base64.b64encode(b"0123456789abcdef").decode()


def masked(opcode: int, payload: bytes) -> bytes:
    """One final client frame (RFC 6455, 5.2), masked with a zero key (payload < 126 B)."""
    return bytes((0x80 | opcode, 0x80 | len(payload))) + b"\0\0\0\0" + payload


CLOSE = masked(0x8, struct.pack("!H", 1000))


class Watched:
    """The server side of one connection: the MessageConnection, and what its ``on_closing``
    callback saw (the protocol's state at the call)."""

    def __init__(self) -> None:
        self.ws: MessageConnection | None = None
        self.calls: list[State] = []
        self.lost_at_call: list[bool] = []  # whether connection_lost had run at each call
        self.messages: list[bytes | str] = []
        self.log: list[str] = []
        self.ready = asyncio.Event()
        self.called = asyncio.Event()
        self.done = asyncio.Event()

    async def handler(self, ws: MessageConnection) -> None:  # type: ignore[override]
        self.ws = ws

        def closing() -> None:
            self.calls.append(ws.protocol.state)
            self.lost_at_call.append(ws.connection_lost_waiter.done())
            self.log.append("closing")
            self.called.set()

        def message(data: bytes | str) -> None:
            self.messages.append(data)
            self.log.append("message")

        ws.on_closing(closing)
        ws.attach(message)
        self.ready.set()
        await self.done.wait()


@asynccontextmanager
async def server_and_client() -> AsyncIterator[
    tuple[Watched, asyncio.StreamReader, asyncio.StreamWriter]
]:
    watched = Watched()
    async with serve(
        watched.handler,  # type: ignore[arg-type]
        "127.0.0.1",
        0,
        create_connection=MessageConnection,
        ping_interval=None,
        close_timeout=30,
        compression=None,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            (
                "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        await asyncio.wait_for(watched.ready.wait(), 5)
        try:
            yield watched, reader, writer
        finally:
            watched.done.set()
            writer.close()


async def test_a_close_frame_is_reported_as_it_arrives() -> None:
    async with server_and_client() as (watched, reader, writer):
        assert watched.ws is not None
        writer.write(masked(0x2, b"hello") + CLOSE)  # a message and the close in one read
        await asyncio.wait_for(watched.called.wait(), 5)
        assert watched.messages == [b"hello"]
        assert watched.calls == [State.CLOSING]  # once, with the TCP connection still up
        # Told before the message read with the close is handled: whatever that message
        # leads to, nothing is written after the close frame.
        assert watched.log == ["closing", "message"]
        assert watched.ws.protocol.state is State.CLOSING
        reply = await asyncio.wait_for(reader.readexactly(4), 5)
        assert reply[0] == 0x88  # the server's close frame


async def test_data_frames_do_not_report_closing() -> None:
    async with server_and_client() as (watched, _reader, writer):
        for i in range(3):
            writer.write(masked(0x2, bytes([i])))
        await writer.drain()
        for _ in range(50):
            if len(watched.messages) == 3:
                break
            await asyncio.sleep(0.01)
        assert watched.messages == [b"\0", b"\1", b"\2"]
        assert watched.calls == []


async def test_a_protocol_error_is_reported() -> None:
    async with server_and_client() as (watched, _reader, writer):
        writer.write(b"\x82\x01x")  # unmasked: a client must mask (RFC 6455, 5.1)
        await asyncio.wait_for(watched.called.wait(), 5)
        assert watched.calls == [State.CLOSING]


async def test_end_of_file_is_reported() -> None:
    async with server_and_client() as (watched, _reader, writer):
        writer.write_eof()
        await asyncio.wait_for(watched.called.wait(), 5)
        assert watched.calls == [State.CLOSED]
        assert watched.lost_at_call == [False]  # on the end of file, before the transport went


async def test_a_reset_connection_is_reported() -> None:
    async with server_and_client() as (watched, _reader, writer):
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # with a zero linger time: a reset, no end of file
        await asyncio.wait_for(watched.called.wait(), 5)
        assert watched.calls == [State.CLOSED]


async def test_closing_from_the_server_reports_before_the_close_frame() -> None:
    async with server_and_client() as (watched, reader, writer):
        assert watched.ws is not None
        closing = asyncio.ensure_future(watched.ws.close(1000, "bye"))
        await asyncio.wait_for(watched.called.wait(), 5)
        assert watched.calls == [State.OPEN]  # nothing may be written after the close frame
        assert (await asyncio.wait_for(reader.readexactly(2), 5))[0] == 0x88
        writer.write(CLOSE)
        writer.close()
        await asyncio.wait_for(closing, 5)
        assert watched.calls == [State.OPEN]  # once only


async def test_a_late_watcher_is_told_at_once() -> None:
    async with server_and_client() as (watched, _reader, writer):
        assert watched.ws is not None
        writer.write(CLOSE)
        await asyncio.wait_for(watched.called.wait(), 5)
        late: list[State] = []
        watched.ws.on_closing(lambda: late.append(watched.ws.protocol.state))  # type: ignore[union-attr]
        assert late == [State.CLOSING]


async def test_the_connection_layer_stops_writing_once_the_peer_closes() -> None:
    async with server_and_client() as (watched, _reader, writer):
        ws = watched.ws
        assert ws is not None
        conn = Connection(
            ws,
            None,  # type: ignore[arg-type]  # registry and signer: not used before Hello
            None,  # type: ignore[arg-type]
            limits=Limits(),
            metrics=Metrics(),
            clock=lambda: 0.0,
        )
        assert conn._ws_open
        writer.write(CLOSE)
        for _ in range(500):
            if not conn._ws_open:
                break
            await asyncio.sleep(0.01)
        assert not conn._ws_open
        assert ws.protocol.state is State.CLOSING  # told on the close frame, not at the end
        assert not conn._writable()
