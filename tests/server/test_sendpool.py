"""Send workers (:mod:`statesync.server.sendpool`): real worker processes, real sockets.

The pool's contract is checked on its own (what a worker reports written is exactly what
reached the socket), then through a real server: spectators served through workers stay in
sync byte for byte, a short write is finished by the server before anything else, and a
worker that dies costs its in-flight connections a reconnect and nothing more.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from statesync.games import TicTacToe
from statesync.protocol.messages import Pong, encode
from statesync.server import send_worker, sendpool
from statesync.server.connection import _binary_frame
from statesync.server.sendpool import NOT_SENT, SHARE, UNKNOWN, SendPool
from statesync.server.table import TableActor
from statesync.server.ws import Server
from statesync.storage import Store
from statesync.store import SQLiteStore
from statesync.testing.games import Tally
from tests.server.test_ws import SIGNER, TIMEOUT, Peer, connection_of, serve, token


class Recorder:
    """A :class:`~statesync.server.sendpool.Taker` that records its answers."""

    def __init__(self) -> None:
        self.answers: list[tuple[bytes, int]] = []
        self.done = asyncio.Event()

    def offload_done(self, frame: bytes, written: int) -> None:
        self.answers.append((frame, written))
        self.done.set()


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """A connected loopback TCP pair: (the non-blocking sender, the receiver)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        receiver = socket.create_connection(listener.getsockname())
        sender, _ = listener.accept()
    sender.setblocking(False)
    return sender, receiver


def fill(sock: socket.socket) -> bytes:
    """Write to ``sock`` until its buffers are full; returns what was written."""
    sent = bytearray()
    chunk = b"f" * 65536
    while True:
        try:
            sent += chunk[: sock.send(chunk)]
        except BlockingIOError:
            return bytes(sent)


def read_exactly(sock: socket.socket, n: int) -> bytes:
    sock.settimeout(TIMEOUT)
    data = bytearray()
    while len(data) < n:
        part = sock.recv(n - len(data))
        assert part, "the connection closed early"
        data += part
    return bytes(data)


def take_as(pool: SendPool, who: str, taker: Recorder, fd: int, frame: bytes) -> bool:
    """``pool.take`` on the turn of ``who``: the ``"worker"`` (one worker) or the server
    itself (``"local"``). With one worker, turns go worker (SHARE times), then server; this
    sets the next one."""
    assert pool.workers == 1
    pool._turn = {"worker": SHARE, "local": SHARE - 1}[who]
    return pool.take(taker, fd, frame)


@pytest.fixture
async def pool() -> AsyncIterator[SendPool]:
    p = SendPool(1, min_audience=1)
    await p.start()
    yield p
    await p.close()


def test_a_pool_needs_a_worker_and_a_sane_batch() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        SendPool(0)
    with pytest.raises(ValueError, match="batch"):
        SendPool(1, batch=0)
    with pytest.raises(ValueError, match="batch"):
        SendPool(1, batch=1000)


async def test_every_socket_gets_the_frame_once(pool: SendPool) -> None:
    pairs = [tcp_pair() for _ in range(2 * (SHARE + 1))]
    frame = _binary_frame(b"spectate" * 10)
    takers = [Recorder() for _ in pairs]
    for t, (sender, _) in zip(takers, pairs, strict=True):
        assert pool.take(t, sender.fileno(), frame)
        assert t.answers == []  # never from within take
    for t in takers:
        await asyncio.wait_for(t.done.wait(), TIMEOUT)
        assert t.answers == [(frame, len(frame))]
    for sender, receiver in pairs:
        assert read_exactly(receiver, len(frame)) == frame
        receiver.setblocking(False)
        with pytest.raises(BlockingIOError):
            receiver.recv(1)  # once, not twice
        sender.close()
        receiver.close()
    assert pool.stats["taken"] == 2 * SHARE  # SHARE of every SHARE + 1 to the worker,
    assert pool.stats["local"] == 2  # one written by the server itself


async def test_a_frame_too_large_for_a_command_is_left_to_the_caller(pool: SendPool) -> None:
    sender, receiver = tcp_pair()
    assert not pool.take(Recorder(), sender.fileno(), b"x" * (send_worker.MAX_COMMAND + 1))
    sender.close()
    receiver.close()


@pytest.mark.parametrize("who", ["worker", "local"])
async def test_a_full_socket_is_reported_with_what_was_written(pool: SendPool, who: str) -> None:
    """A write that does not fit says how much did; that much, and no more, is on the wire,
    so the connection can write the rest and the stream is whole."""
    sender, receiver = tcp_pair()
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    before = fill(sender)
    frame = _binary_frame(bytes(range(256)) * 200)  # 51,204 bytes: more than fits
    taker = Recorder()
    assert take_as(pool, who, taker, sender.fileno(), frame)
    await asyncio.wait_for(taker.done.wait(), TIMEOUT)
    ((_, written),) = taker.answers
    assert 0 <= written < len(frame)
    assert pool.stats["short"] == 1
    reading = asyncio.get_running_loop().run_in_executor(
        None, read_exactly, receiver, len(before) + len(frame)
    )
    rest = memoryview(frame)[written:]
    while rest:  # what Connection.offload_done hands its transport
        try:
            rest = rest[sender.send(rest) :]
        except BlockingIOError:
            await asyncio.sleep(0.001)
    data = await reading
    assert data == before + frame
    sender.close()
    receiver.close()


@pytest.mark.parametrize("who", ["worker", "local"])
async def test_a_closed_peer_is_reported_as_failed(pool: SendPool, who: str) -> None:
    sender, receiver = tcp_pair()
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    receiver.close()  # RST: the next write fails
    await asyncio.sleep(0.05)
    taker = Recorder()
    frame = _binary_frame(b"x")
    assert take_as(pool, who, taker, sender.fileno(), frame)
    await asyncio.wait_for(taker.done.wait(), TIMEOUT)
    assert taker.answers == [(frame, UNKNOWN)]
    sender.close()


async def test_a_dead_worker_ends_its_takes_and_takes_no_more() -> None:
    p = SendPool(1, min_audience=1)
    await p.start()
    (pid,) = p.pids
    os.kill(pid, signal.SIGSTOP)  # sent commands wait in its socket
    pairs = [tcp_pair() for _ in range(4)]
    frame = _binary_frame(b"late")
    takers = [Recorder() for _ in pairs]
    for t, (s, _) in zip(takers, pairs, strict=True):
        assert take_as(p, "worker", t, s.fileno(), frame)
    await asyncio.sleep(0)  # the batch goes out
    os.kill(pid, signal.SIGKILL)
    for t in takers:
        await asyncio.wait_for(t.done.wait(), TIMEOUT)
        assert t.answers == [(frame, UNKNOWN)]  # it may have written: unknown
    assert p.alive == 0
    assert not take_as(p, "worker", Recorder(), pairs[0][0].fileno(), frame)
    await p.close()
    for s, r in pairs:
        s.close()
        r.close()


async def test_a_command_that_cannot_be_sent_is_not_written(
    pool: SendPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    (lane,) = pool._lanes

    def full(*args: object) -> None:
        raise BlockingIOError

    monkeypatch.setattr(lane, "sock", type("Full", (), {"sendmsg": full})())
    sender, receiver = tcp_pair()
    taker = Recorder()
    frame = _binary_frame(b"y")
    assert take_as(pool, "worker", taker, sender.fileno(), frame)
    await asyncio.wait_for(taker.done.wait(), TIMEOUT)
    assert taker.answers == [(frame, NOT_SENT)]
    assert pool.alive == 1  # a full queue is not a dead worker
    monkeypatch.undo()
    sender.close()
    receiver.close()


async def test_a_worker_outlives_the_signals_sent_to_a_process_group(pool: SendPool) -> None:
    """Ctrl-C, ``timeout`` and service managers signal the whole group; the server's
    graceful stop still needs its workers, which end when the server closes their socket."""
    (pid,) = pool.pids
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        os.kill(pid, sig)
    sender, receiver = tcp_pair()
    taker = Recorder()
    frame = _binary_frame(b"still here")
    assert take_as(pool, "worker", taker, sender.fileno(), frame)
    await asyncio.wait_for(taker.done.wait(), TIMEOUT)
    assert taker.answers == [(frame, len(frame))]
    assert pool.alive == 1
    sender.close()
    receiver.close()


async def test_a_stuck_worker_is_killed_and_its_takes_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = SendPool(1, min_audience=1)
    await p.start()
    (pid,) = p.pids
    os.kill(pid, signal.SIGSTOP)  # stuck: alive, answering nothing
    sender, receiver = tcp_pair()
    taker = Recorder()
    frame = _binary_frame(b"stuck")
    assert take_as(p, "worker", taker, sender.fileno(), frame)
    await asyncio.sleep(0.01)
    p.check()  # not yet STUCK_AFTER seconds: nothing happens
    await asyncio.sleep(0.05)
    assert p.alive == 1 and taker.answers == []
    monkeypatch.setattr(sendpool, "STUCK_AFTER", 0.0)
    p.check()
    await asyncio.wait_for(taker.done.wait(), TIMEOUT)
    assert taker.answers == [(frame, UNKNOWN)]
    assert p.alive == 0
    await p.close()
    sender.close()
    receiver.close()


async def test_a_server_that_cannot_listen_stops_its_workers(store: Store) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        server = Server(TicTacToe(), store, SIGNER, send_workers=1)
        with pytest.raises(OSError, match="in use"):
            await server.start(port=taken.getsockname()[1])
    assert server.pool is not None
    assert all(lane.process.returncode is not None for lane in server.pool._lanes)


async def test_close_stops_the_workers() -> None:
    p = SendPool(2)
    await p.start()
    processes = [lane.process for lane in p._lanes]
    await p.close()
    assert all(proc.returncode is not None for proc in processes)


# ---------------------------------------------------------------------- through a server


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await SQLiteStore.open(tmp_path / "pool.db")
    yield s
    await s.close()


async def pooled(store: Store) -> Server:
    server = await serve(TicTacToe(), store, send_workers=1)
    assert server.pool is not None
    server.pool.min_audience = 2  # share out even a handful of spectators
    return server


async def seat(
    server: Server, table: str, watchers: int
) -> tuple[Peer, Peer, list[Peer], TableActor]:
    """Players ``ann`` and ``bob`` and ``watchers`` spectators (``w-0``...), connected to
    ``table`` in that order, the spectators in sync; and the table's actor."""
    ann = Peer(server, token(table, "ann"), "ann-1")
    bob = Peer(server, token(table, "bob"), "bob-1")
    spectators = [Peer(server, token(table, None), f"w-{i}") for i in range(watchers)]
    for peer in (ann, bob, *spectators):
        await peer.connect()
    actor = server.tables[table]
    for peer in spectators:
        await peer.synced(actor)
    return ann, bob, spectators, actor


async def test_spectators_served_through_a_worker_stay_in_sync(store: Store) -> None:
    server = await pooled(store)
    assert server.pool is not None
    ann, bob, watchers, actor = await seat(server, "t", 6)
    for peer, cell in ((ann, 0), (bob, 4), (ann, 8), (bob, 2), (ann, 6)):
        await peer.synced(actor)
        assert (await peer.result(await peer.act("place", {"cell": cell}))).ok
    for peer in (ann, bob, *watchers):
        await peer.synced(actor)  # the view byte for byte, its hash, no desync
    assert server.pool.stats["taken"] >= 5  # the workers wrote some of every update
    assert server.metrics.value("send_workers") == 1
    assert server.metrics.value("send_worker_writes_total") == server.pool.stats["taken"]
    assert server.metrics.value("send_worker_failures_total") == 0
    frames = [f for peer in (ann, bob, *watchers) for f in peer.raw]
    assert server.metrics.value("messages_sent_total") == len(frames)
    assert server.metrics.value("bytes_sent_total") == sum(map(len, frames))
    for peer in (ann, bob, *watchers):
        await peer.close()
    processes = [lane.process for lane in server.pool._lanes]
    await server.stop()
    assert all(proc.returncode is not None for proc in processes)


async def test_a_short_write_is_finished_first_then_what_waited(store: Store) -> None:
    """While a worker holds a socket, the connection's own updates and the WebSocket
    library's answers wait; when the worker says it wrote part of its frame, the rest goes
    first, then the rest in order, so the client reads whole frames."""
    server = await pooled(store)
    ann, bob, (watcher,), actor = await seat(server, "h", 1)
    conn = connection_of(server, "w-0")
    frame = _binary_frame(encode(Pong(7)))
    # As if a worker had taken the socket and written 3 bytes of ``frame`` so far.
    conn._offloaded = True
    conn.ws.hold_writes()  # type: ignore[attr-defined]
    os.write(conn._fd, frame[:3])
    assert (await ann.result(await ann.act("place", {"cell": 0}))).ok  # an update waits
    await actor.drain()
    assert conn._outbox  # queued behind the worker, not written
    assert watcher.ws is not None
    pong = await watcher.ws.ping(b"hi")  # the library's pong waits too
    await asyncio.sleep(0.05)
    assert not pong.done()
    seen = len(watcher.raw)
    conn.offload_done(frame, 3)
    await asyncio.wait_for(pong, TIMEOUT)
    await watcher.synced(actor)  # whole frames, in order, the update applied
    assert watcher.raw[seen] == encode(Pong(7))
    assert len(watcher.raw) > seen + 1  # then the update that waited
    for peer in (ann, bob, watcher):
        await peer.close()
    await server.stop()


async def test_a_socket_with_bytes_waiting_in_its_buffer_is_not_shared_out(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker writes to the socket itself, past the transport's buffer: a frame handed to
    it while older bytes wait there would overtake them."""
    server = await pooled(store)
    assert server.pool is not None
    ann, bob, watchers, actor = await seat(server, "b", 4)
    busy = connection_of(server, "w-0")
    monkeypatch.setattr(busy._transport, "get_write_buffer_size", lambda: 1)  # below high water
    offered = []
    real_take = server.pool.take

    def take(conn: Any, fd: int, frame: bytes) -> bool:
        offered.append(conn)
        return real_take(conn, fd, frame)

    monkeypatch.setattr(server.pool, "take", take)
    assert (await ann.result(await ann.act("place", {"cell": 0}))).ok
    for peer in (ann, bob, *watchers):
        await peer.synced(actor)
    assert busy not in offered
    assert len(offered) == len(watchers) - 1
    for peer in (ann, bob, *watchers):
        await peer.close()
    await server.stop()


async def test_a_dead_worker_costs_its_connections_a_reconnect(store: Store) -> None:
    server = await pooled(store)
    assert server.pool is not None
    ann, bob, watchers, actor = await seat(server, "d", 6)
    (pid,) = server.pool.pids
    os.kill(pid, signal.SIGSTOP)
    assert (await ann.result(await ann.act("place", {"cell": 0}))).ok
    await actor.drain()
    await asyncio.sleep(0.05)
    held = {
        c.session.identity.client_id
        for c in server.connections
        if c._offloaded and c.session.identity is not None
    }
    assert held  # the stopped worker holds some spectators' update
    os.kill(pid, signal.SIGKILL)
    for peer in watchers:
        if peer.session.client_id in held:
            await peer.drain_until_closed()
            await peer.close()
            await peer.connect()  # resumes from the version it holds
        await peer.synced(actor)
    assert server.pool.alive == 0
    assert server.metrics.value("send_workers") == 0
    assert server.metrics.value("send_worker_failures_total") == 1
    assert (await bob.result(await bob.act("place", {"cell": 4}))).ok
    for peer in (ann, bob, *watchers):
        await peer.synced(actor)  # the server writes everything itself now
        await peer.close()
    await server.stop()


async def test_library_writes_wait_while_held(store: Store) -> None:
    server = await serve(TicTacToe(), store)
    async with connect(f"ws://127.0.0.1:{server.port}/ws", compression=None) as client:
        await asyncio.sleep(0.01)
        (conn,) = server.connections
        conn.ws.hold_writes()  # type: ignore[attr-defined]
        pong = await client.ping(b"held")
        await asyncio.sleep(0.05)
        assert not pong.done()
        conn.ws.hold_writes(False)  # type: ignore[attr-defined]
        await asyncio.wait_for(pong, TIMEOUT)
    await server.stop()


def test_serve_refuses_a_negative_worker_count(tmp_path: Path) -> None:
    from statesync.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--db", str(tmp_path / "x.db"), "--send-workers", "-1"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_spectators_stay_in_sync_through_drops_stalls_and_a_stopped_worker(
    store: Store, seed: int
) -> None:
    """A seeded mix: players act; spectators drop and resume, or stop reading for a while;
    the worker is stopped and continued. Every client ends on the table's view, byte for
    byte, with no desync."""
    rng = random.Random(seed)
    server = await serve(Tally(), store, send_workers=1)
    pool = server.pool
    assert pool is not None
    pool.min_audience = 3
    ann, bob, watchers, actor = await seat(server, "r", 8)
    (pid,) = pool.pids

    async def act() -> None:
        player = rng.choice((ann, bob))
        assert (await player.result(await player.act("add"))).ok

    for _ in range(40):
        roll = rng.random()
        if roll < 0.5:
            await act()
        elif roll < 0.65:
            peer = rng.choice(watchers)
            assert peer.ws is not None
            peer.ws.transport.abort()  # the connection drops (a closing handshake would wait
            peer.session.disconnected()  # for a client whose reading is paused)
            await peer.connect()  # resumes from the version it holds
        elif roll < 0.75:
            os.kill(pid, signal.SIGSTOP)  # its sockets wait, and so do their updates
            for _ in range(rng.randint(1, 3)):
                await act()
            os.kill(pid, signal.SIGCONT)
        else:
            await rng.choice(watchers).synced(actor)  # the others read nothing meanwhile
    for peer in (ann, bob, *watchers):
        await peer.synced(actor)
    assert pool.stats["taken"] > 0
    assert pool.alive == 1
    for peer in (ann, bob, *watchers):
        await peer.close()
    await server.stop()
