"""The WebSocket server end to end: real sockets, real SQLite, real protocol sessions.

Clients are ``websockets`` connections driving :class:`ClientSession` (the ``Peer`` helper).
No test asserts timings; every receive has a small timeout so a bug fails fast instead of
hanging.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from statesync.games import Holdem, TicTacToe
from statesync.games.holdem import legal_actions
from statesync.hashing import state_hash
from statesync.protocol import codes
from statesync.protocol.client_session import (
    OPEN,
    ActionResult,
    ClientSession,
    Event,
    ServerError,
)
from statesync.protocol.limits import Limits
from statesync.protocol.messages import (
    Act,
    Error,
    Hello,
    Ping,
    Pong,
    Result,
    SharedUpdate,
    Snapshot,
    Update,
    Welcome,
    decode_server,
    encode,
)
from statesync.protocol.server_session import ServerSession
from statesync.server.auth import TokenSigner
from statesync.server.connection import Connection, _binary_frame
from statesync.server.metrics import CONTENT_TYPE, Metrics
from statesync.server.table import TableActor
from statesync.server.ws import Server
from statesync.storage import Store
from statesync.store import SQLiteStore
from statesync.synchronizer import StateSynchronizer
from statesync.wire import WireDecoder

SIGNER = TokenSigner(b"x" * 32)
TIMEOUT = 5.0
LIMITS = Limits(max_message_bytes=1024)


def token(table: str, player: str | None, *, ttl: float = 600.0, client: str | None = None) -> str:
    return SIGNER.issue(table, player, ttl=ttl, now=time.time(), client=client)


class Peer:
    """A test client: one :class:`ClientSession` over (re)connected WebSockets. Keeps every
    raw frame received, every event, and the results by seq."""

    def __init__(self, server: Server | str, tok: str, client_id: str) -> None:
        self.url = server if isinstance(server, str) else server.url
        self.session = ClientSession(tok, client_id)
        self.ws: ClientConnection | None = None
        self.raw: list[bytes] = []
        self.events: list[Event] = []
        self.results: dict[int, ActionResult] = {}
        self.errors: list[ServerError] = []
        self.checks: list[Callable[[Peer], None]] = []
        """Run after every message received (e.g. hidden-information checks)."""

    async def connect(self) -> None:
        self.ws = await connect(self.url, compression=None, max_size=None)
        await self.ws.send(self.session.connect())
        await self.until(lambda: self.session.phase == OPEN and self.session.replica is not None)

    async def connect_and_sync(self, actor_of: Callable[[], TableActor]) -> None:
        await self.connect()
        await self.synced(actor_of())

    async def recv(self) -> list[Event]:
        assert self.ws is not None
        data = await asyncio.wait_for(self.ws.recv(), TIMEOUT)
        assert isinstance(data, bytes), "the server sends binary messages only"
        self.raw.append(data)
        events = self.session.receive(data)
        for e in events:
            self.events.append(e)
            if isinstance(e, ActionResult):
                self.results[e.seq] = e
            elif isinstance(e, ServerError):
                self.errors.append(e)
        for check in self.checks:
            check(self)
        await self.flush()
        return events

    async def flush(self) -> None:
        assert self.ws is not None
        for frame in self.session.data_to_send():
            await self.ws.send(frame)

    async def until(self, done: Callable[[], bool]) -> None:
        async with asyncio.timeout(TIMEOUT):
            while not done():
                await self.recv()

    async def act(self, type: str, payload: Any = None) -> int:
        seq = self.session.act(type, payload)
        await self.flush()
        return seq

    async def result(self, seq: int) -> ActionResult:
        await self.until(lambda: seq in self.results)
        return self.results[seq]

    async def synced(self, actor: TableActor) -> None:
        """Wait until the view is the table's current one, then check it, byte for byte."""
        await actor.drain()
        await self.until(lambda: self.session.version == actor.sync.version)
        player = self.session.player
        assert self.session.authoritative == actor.sync.view(player)
        assert self.session.replica is not None
        assert self.session.replica.hash == actor.sync.view_hash(player)
        assert self.session.stats["desyncs"] == 0

    async def drain_until_closed(self) -> None:
        """Receive until the server closes the connection."""
        with pytest.raises(ConnectionClosed):
            await self._recv_forever()

    async def _recv_forever(self) -> None:
        async with asyncio.timeout(TIMEOUT):
            while True:
                await self.recv()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        self.session.disconnected()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await SQLiteStore.open(tmp_path / "ws.db")
    yield s
    await s.close()


async def serve(game: Any, store: Store, **kw: Any) -> Server:
    server = Server(game, store, SIGNER, game_ref="", limits=kw.pop("limits", LIMITS), **kw)
    await server.start(port=0)
    return server


@pytest.fixture
async def ttt(store: Store) -> AsyncIterator[Server]:
    server = await serve(TicTacToe(), store)
    yield server
    await server.stop()


async def raw_ws(server: Server, path: str = "/ws") -> ClientConnection:
    return await connect(f"ws://127.0.0.1:{server.port}{path}", compression=None, max_size=None)


async def next_message(ws: ClientConnection) -> Any:
    data = await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert isinstance(data, bytes)
    return decode_server(data)


async def fatal_error(ws: ClientConnection) -> Error:
    """The fatal error that ends the connection (skipping anything before it)."""
    while True:
        m = await next_message(ws)
        if isinstance(m, Error) and m.fatal:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), TIMEOUT)
            return m


def connection_of(server: Server, client_id: str) -> Connection:
    """The server's connection of the client ``client_id``."""
    (conn,) = [
        c
        for c in server.connections
        if c.session.identity and c.session.identity.client_id == client_id
    ]
    return conn


async def two_players(server: Server, table: str) -> tuple[Peer, Peer, TableActor]:
    """``ann`` (client ``ann-1``) and ``bob`` (``bob-1``) connected to ``table``, in that
    order, and the table's actor."""
    ann = Peer(server, token(table, "ann"), "ann-1")
    bob = Peer(server, token(table, "bob"), "bob-1")
    await ann.connect()
    await bob.connect()
    return ann, bob, server.tables[table]


def seated_online(session: ClientSession, player: str) -> bool:
    """Whether ``player``'s seat is marked connected in the view ``session`` holds."""
    view = session.authoritative
    assert isinstance(view, dict)
    return bool(view["seats"][player]["connected"])


# ---------------------------------------------------------------------- handshake


async def test_handshake_welcome_then_snapshot(ttt: Server) -> None:
    ws = await raw_ws(ttt)
    await ws.send(encode(Hello([1], token("t1", "ann"), "ann-1")))
    welcome = await next_message(ws)
    assert welcome == Welcome(1, "t1", "ann", "ann-1", 1)
    snap = await next_message(ws)
    assert isinstance(snap, Snapshot)
    actor = ttt.tables["t1"]
    assert snap.state == actor.sync.view("ann")
    assert snap.hash.hex() == actor.sync.view_hash("ann") == state_hash(snap.state)
    assert set(snap.state["players"]) == {"ann"} and "secret" not in snap.state
    await ws.send(encode(Ping(7)))
    assert await next_message(ws) == Pong(7)
    await ws.close()
    assert ttt.metrics.value("tables") == 1


async def test_messages_sent_before_the_welcome_are_answered_in_order(ttt: Server) -> None:
    """Pipelined after the Hello (no waiting): held while the table is looked up, then
    handled in order, more of them than the server holds before it stops reading."""
    ws = await raw_ws(ttt)
    frames = [encode(Hello([1], token("pipe", "ann"), "ann-1"))]
    frames += [encode(Ping(n)) for n in range(150)]
    frames.append(encode(Act(1, 0, "place", {"cell": 4})))
    ws.transport.write(b"".join(_masked(f) for f in frames))  # in one go: one TCP segment
    assert isinstance(await next_message(ws), Welcome)
    got = [await next_message(ws) for _ in range(152)]  # the snapshot comes with a flush
    assert [m for m in got if isinstance(m, Pong)] == [Pong(n) for n in range(150)]
    assert {type(m) for m in got if not isinstance(m, Pong)} == {Snapshot, Result}
    [result] = [m for m in got if isinstance(m, Result)]
    assert result.seq == 1 and result.code == "tictactoe/waiting_for_players"
    await ws.send(encode(Ping(999)))  # reading resumed after the held messages
    assert await next_message(ws) == Pong(999)
    await ws.close()


async def test_a_fragmented_message_is_put_back_together(ttt: Server) -> None:
    ws = await raw_ws(ttt)
    hello = encode(Hello([1], token("frag", "ann"), "ann-1"))
    await ws.send([hello[:5], hello[5:9], hello[9:]])  # three frames, one message
    assert isinstance(await next_message(ws), Welcome)
    assert isinstance(await next_message(ws), Snapshot)
    ping = encode(Ping(3))
    await ws.send([ping[:1], ping[1:]])
    assert await next_message(ws) == Pong(3)
    await ws.close()


def _masked(message: bytes) -> bytes:
    """``message`` as a client sends it: one masked binary frame."""
    return Frame(Opcode.BINARY, message).serialize(mask=True, extensions=[])


async def test_spectator_sees_no_players_and_cannot_act(ttt: Server) -> None:
    ann = Peer(ttt, token("t2", "ann"), "ann-1")
    await ann.connect()
    watcher = Peer(ttt, token("t2", None), "watch-1")
    await watcher.connect_and_sync(lambda: ttt.tables["t2"])
    assert watcher.session.player is None
    assert watcher.session.authoritative is not None
    assert watcher.session.authoritative["players"] == {}
    seq = await watcher.act("place", {"cell": 0})
    refused = await watcher.result(seq)
    assert (refused.ok, refused.code) == (False, codes.SPECTATOR)
    assert ttt.tables["t2"].sync.version == watcher.session.version  # nothing happened
    await ann.close()
    await watcher.close()


# ---------------------------------------------------------------------- concurrent play


async def test_tictactoe_players_act_concurrently_and_stay_in_sync(ttt: Server) -> None:
    rng = random.Random(5)
    ann = Peer(ttt, token("ttt", "ann"), "ann-1")
    bob = Peer(ttt, token("ttt", "bob"), "bob-1")
    watcher = Peer(ttt, token("ttt", None), "w-1")
    await asyncio.gather(ann.connect(), bob.connect(), watcher.connect())

    async def play(me: Peer, name: str) -> None:
        while True:
            state = me.session.authoritative
            g = state["game"] if state else None
            if g is not None and g["status"] in ("won", "draw"):
                return
            if g is not None and g["status"] == "playing":
                free = [i for i, v in enumerate(g["board"]) if v is None]
                if g["turn"] != name and rng.random() < 0.3:  # out of turn: refused or raced
                    await me.act("place", {"cell": rng.choice(free)})
                if g["turn"] == name:
                    seq = await me.act("place", {"cell": rng.choice(free)})
                    await me.result(seq)
                    continue
            await me.recv()

    async with asyncio.timeout(20):
        await asyncio.gather(play(ann, "ann"), play(bob, "bob"))
    actor = ttt.tables["ttt"]
    for peer in (ann, bob, watcher):
        await peer.synced(actor)
        assert all(
            r.code in ("", "action/not_your_turn", "tictactoe/cell_taken", "action/game_over")
            for r in peer.results.values()
        )
    assert watcher.session.authoritative is not None
    assert watcher.session.authoritative["players"] == {}
    assert actor.sync.state["game"]["status"] in ("won", "draw")
    assert ttt.metrics.value("actions_total") >= actor.sync.state["game"]["moves"]
    for peer in (ann, bob, watcher):
        await peer.close()


async def test_holdem_players_act_concurrently_and_stay_in_sync(store: Store) -> None:
    server = await serve(Holdem(), store)
    rng = random.Random(11)
    names = ["ann", "bob", "cy", "dee"]
    peers = {n: Peer(server, token("h1", n), f"{n}-1") for n in names}
    watcher = Peer(server, token("h1", None), "w-1")

    def only_own_view(peer: Peer) -> None:
        view = peer.session.authoritative
        if view is not None:
            mine = {peer.session.player} if peer.session.player else set()
            assert set(view["players"]) <= mine and "secret" not in view

    for peer in (*peers.values(), watcher):
        peer.checks.append(only_own_view)
        await peer.connect()

    def finished(peer: Peer) -> bool:
        view = peer.session.authoritative
        assert view is not None
        return view["game"]["hand"] > 3 or view["game"]["winner"] is not None

    async def play(name: str) -> None:
        me = peers[name]
        while not finished(me):
            assert me.session.authoritative is not None
            options = legal_actions(me.session.authoritative, name)
            if not options:
                await me.recv()
                continue
            passive = [o for o in options if o[0] in ("check", "call")]
            kind, payload = (
                rng.choice(passive) if passive and rng.random() < 0.7 else (rng.choice(options))
            )
            seq = await me.act(kind, payload)
            await me.result(seq)  # refused only if our view was stale; then we look again

    async with asyncio.timeout(30):
        await asyncio.gather(*(play(n) for n in names))
    actor = server.tables["h1"]
    for peer in (*peers.values(), watcher):
        await peer.synced(actor)
    assert watcher.session.authoritative is not None
    assert watcher.session.authoritative["players"] == {}
    assert sum(1 for p in peers.values() for r in p.results.values() if r.ok) > 4
    for peer in (*peers.values(), watcher):
        await peer.close()
    await server.stop()


def _strings(value: Any) -> set[str]:
    """Every str inside a decoded message or delta (keys and values)."""
    out: set[str] = set()
    if isinstance(value, str):
        out.add(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            out |= _strings(k) | _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            out |= _strings(v)
    elif hasattr(value, "__slots__") or hasattr(value, "__dict__"):
        names = getattr(value, "__slots__", ()) or vars(value)
        for name in names:
            out |= _strings(getattr(value, name, None))
    return out


async def test_hidden_information_never_reaches_another_connection(store: Store) -> None:
    names = ["ann", "bob", "cy"]
    await StateSynchronizer.create(Holdem(), store, "h2", players=names, seed=3)
    server = await serve(Holdem(), store)
    peers = {n: Peer(server, token("h2", n), f"{n}-1") for n in names}
    watcher = Peer(server, token("h2", None), "w-1")
    for peer in (*peers.values(), watcher):
        await peer.connect()
    actor = server.tables["h2"]

    def in_hand_one() -> bool:
        g = actor.sync.state["game"]
        return g["hand"] == 1 and g["round"] != "river"

    async def play(name: str) -> None:  # check or call only, up to the river: no showdown
        me = peers[name]
        while True:
            view = me.session.authoritative
            assert view is not None
            if view["game"]["round"] == "river" or view["game"]["hand"] != 1:
                return
            options = dict(legal_actions(view, name))
            kind = "check" if "check" in options else "call" if "call" in options else None
            if kind is None:
                await me.recv()
                continue
            await me.result(await me.act(kind))

    assert in_hand_one()
    async with asyncio.timeout(20):
        await asyncio.gather(*(play(n) for n in names))
    g = actor.sync.state["game"]
    assert (g["hand"], g["round"], g["result"]) == (1, "river", None)
    for peer in (*peers.values(), watcher):
        await peer.synced(actor)
    hole = {n: actor.sync.state["players"][n]["cards"] for n in names}
    assert all(len(cards) == 2 for cards in hole.values())
    deck = actor.sync.state["secret"]["deck"]
    for viewer, peer in (*peers.items(), ("", watcher)):
        secret = set(deck) | {c for n, cards in hole.items() if n != viewer for c in cards}
        decoder, shared = WireDecoder(), WireDecoder()
        seen: set[str] = set()
        kinds: set[type] = set()
        for frame in peer.raw:
            m = decode_server(frame)
            kinds.add(type(m))
            if isinstance(m, Update):
                seen |= _strings(decoder.decode(m.delta))
            elif isinstance(m, SharedUpdate):
                if m.reset:
                    shared = WireDecoder()
                seen |= _strings(shared.decode(m.shared))
                if m.delta is not None:
                    seen |= _strings(decoder.decode(m.delta))
            else:
                if isinstance(m, Snapshot):
                    decoder, shared = WireDecoder(), WireDecoder()
                seen |= _strings(msgspec.to_builtins(m))
                for card in secret:  # the raw bytes: as MessagePack would carry the string
                    assert b"\xa2" + card.encode() not in frame, (viewer, card)
        assert not (seen & secret), (viewer, seen & secret)
        assert SharedUpdate in kinds  # the shared stream was in use, and checked too
        if viewer:
            assert set(hole[viewer]) <= seen  # own cards did arrive
    for peer in (*peers.values(), watcher):
        await peer.close()
    await server.stop()


# ---------------------------------------------------------------------- reconnecting


@pytest.mark.parametrize("drop", ["close", "abort"])
async def test_reconnect_with_a_pending_action_takes_effect_once(ttt: Server, drop: str) -> None:
    ann, bob, actor = await two_players(ttt, "rc")
    await ann.synced(actor)
    seq = ann.session.act("place", {"cell": 4})
    await ann.flush()
    assert ann.ws is not None
    if drop == "abort":
        ann.ws.transport.abort()
    else:
        await ann.ws.close()
    ann.session.disconnected()
    assert seq in ann.session.pending

    await ann.connect()  # same ClientSession: re-sends the Act with its original seq
    result = await ann.result(seq)
    assert result.ok
    await ann.synced(actor)
    await bob.synced(actor)
    g = actor.sync.state["game"]
    assert g["board"][4] == "X" and g["moves"] == 1 and g["board"].count("X") == 1
    assert ann.session.pending == {}
    if drop == "close":  # the server had read it: the re-send was answered from memory
        assert result.duplicate
    assert ttt.metrics.value("reconnects_total") >= 1
    # the next action continues the seqs
    seq2 = await bob.act("place", {"cell": 0})
    assert (await bob.result(seq2)).ok
    await ann.synced(actor)
    await ann.close()
    await bob.close()


async def test_server_restart_keeps_every_acknowledged_action(tmp_path: Path) -> None:
    path = tmp_path / "restart.db"
    store = await SQLiteStore.open(path)
    server = await serve(TicTacToe(), store)
    ann = Peer(server, token("rs", "ann"), "ann-1")
    bob = Peer(server, token("rs", "bob"), "bob-1")
    await ann.connect()
    await bob.connect()
    acked: list[ActionResult] = []
    for peer, cell in ((ann, 0), (bob, 3), (ann, 1)):
        await peer.synced(server.tables["rs"])
        acked.append(await peer.result(await peer.act("place", {"cell": cell})))
    assert all(r.ok for r in acked)
    old = server.tables["rs"].sync
    old_version, old_hash = old.version, old.hash

    await server.stop()
    for peer in (ann, bob):
        await peer.drain_until_closed()
        assert peer.errors[-1].code == codes.SHUTDOWN and peer.errors[-1].fatal
        peer.session.disconnected()
    await store.close()

    store = await SQLiteStore.open(path)
    server = await serve(TicTacToe(), store)
    try:
        for peer in (ann, bob):
            peer.url = f"ws://127.0.0.1:{server.port}/ws"  # a new port: reconnect there
            await peer.connect()
        actor = server.tables["rs"]
        for peer in (ann, bob):
            await peer.synced(actor)
        assert actor.sync.version >= old_version
        assert state_hash(actor.sync.state_at(old_version)) == old_hash
        board = actor.sync.state["game"]["board"]
        assert (board[0], board[3], board[1]) == ("X", "O", "X")
        assert max(r.version for r in acked) <= old_version
        # play on: ann wins on the top row
        await bob.synced(actor)
        assert (await bob.result(await bob.act("place", {"cell": 4}))).ok
        await ann.synced(actor)
        assert (await ann.result(await ann.act("place", {"cell": 2}))).ok
        for peer in (ann, bob):
            await peer.synced(actor)
        assert actor.sync.state["game"]["winner"] == "ann"
        assert ann.session.stats["desyncs"] == bob.session.stats["desyncs"] == 0
        await ann.close()
        await bob.close()
    finally:
        await server.stop()
        await store.close()


# ---------------------------------------------------------------------- bad input


async def test_bad_input_is_refused_and_nothing_changes(ttt: Server) -> None:
    ann = Peer(ttt, token("bad", "ann"), "ann-1")
    await ann.connect()
    actor = ttt.tables["bad"]
    await ann.synced(actor)
    version, full_hash = actor.sync.version, actor.sync.hash

    # in an open session: errors that are not fatal
    ws = await raw_ws(ttt)
    await ws.send(encode(Hello([1], token("bad", None), "w-1")))
    assert isinstance(await next_message(ws), Welcome)
    assert isinstance(await next_message(ws), Snapshot)
    big = encode(Act(1, 0, "place", {"pad": "x" * (2 * LIMITS.max_message_bytes)}))
    for frame, code in (
        (b"\xc1\xff garbage", codes.MALFORMED),
        ("a text frame", codes.NOT_BINARY),
        (msgspec.msgpack.encode([99, 1]), codes.UNKNOWN_TYPE),
        (big, codes.TOO_LARGE),
        (encode(Hello([1], token("bad", None), "w-1")), codes.UNEXPECTED),
    ):
        await ws.send(frame)
        error = await next_message(ws)
        assert isinstance(error, Error) and (error.code, error.fatal) == (code, False), frame
    await ws.send(encode(Ping(1)))
    assert await next_message(ws) == Pong(1)  # still served
    await ws.send(b"\x00" * (4 * LIMITS.max_message_bytes + 1))  # over max_size: the library
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

    # at the handshake: fatal
    other = TokenSigner(b"y" * 32).issue("bad", "ann", ttl=60, now=time.time())
    expired = SIGNER.issue("bad", "ann", ttl=1, now=time.time() - 10)
    for frame, code, path in (
        (b"garbage", codes.MALFORMED, "/ws"),
        (encode(Ping(1)), codes.HANDSHAKE_REQUIRED, "/ws"),
        (encode(Hello([1], other, "ann-2")), "auth/bad_signature", "/ws"),
        (encode(Hello([1], "not-a-token", "ann-2")), "auth/malformed", "/ws"),
        (encode(Hello([1], expired, "ann-2")), "auth/expired", "/ws"),
        (
            encode(Hello([1], token("elsewhere", "ann"), "ann-2")),
            "auth/wrong_table",
            "/ws?table=bad",
        ),
        (encode(Hello([1], token("bad", "ann", client="x"), "ann-2")), codes.WRONG_CLIENT, "/ws"),
        (encode(Hello([3], token("bad", "ann"), "ann-2")), codes.UNSUPPORTED_VERSION, "/ws"),
        (encode(Hello([1], token("bad", "ann"), "$sys")), codes.BAD_CLIENT_ID, "/ws"),
    ):
        ws = await raw_ws(ttt, path)
        await ws.send(frame)
        error = await fatal_error(ws)
        assert error.code == code, frame

    # a handshake that never comes
    ws = await raw_ws(ttt)
    ttt.tick(time.time() + LIMITS.handshake_timeout + 1)
    assert (await fatal_error(ws)).code == codes.HANDSHAKE_TIMEOUT

    assert (actor.sync.version, actor.sync.hash) == (version, full_hash)
    assert "elsewhere" not in ttt.tables
    metrics = ttt.metrics
    for code in (codes.MALFORMED, codes.NOT_BINARY, codes.TOO_LARGE, "auth/expired"):
        assert metrics.value("bad_messages_total", code=code) >= 1, code
    # the server still serves
    bob = Peer(ttt, token("bad", "bob"), "bob-1")
    await bob.connect()
    await ann.synced(actor)
    assert (await ann.result(await ann.act("place", {"cell": 4}))).ok
    await bob.synced(actor)
    await ann.close()
    await bob.close()


async def test_a_refused_seat_is_a_fatal_not_seated(ttt: Server) -> None:
    peers = [Peer(ttt, token("full", n), f"{n}-1") for n in ("ann", "bob")]
    for p in peers:
        await p.connect()
    ws = await raw_ws(ttt)
    await ws.send(encode(Hello([1], token("full", "cy"), "cy-1")))
    error = await fatal_error(ws)
    assert error.code == codes.NOT_SEATED and "table_full" in error.message
    assert "cy" not in ttt.tables["full"].sync.state["seats"]
    for p in peers:
        await p.close()


# ---------------------------------------------------------------------- HTTP


async def http_get(server: Server, path: str) -> tuple[int, dict[str, str], str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), TIMEOUT)
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.decode().partition("\r\n\r\n")
    status_line, *header_lines = head.split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, body


async def test_healthz_and_metrics_over_plain_http(ttt: Server) -> None:
    ann = Peer(ttt, token("m", "ann"), "ann-1")
    await ann.connect()
    assert await http_get(ttt, "/healthz") == (200, (await http_get(ttt, "/healthz"))[1], "ok\n")
    status, headers, body = await http_get(ttt, "/metrics")
    assert status == 200 and headers["content-type"] == CONTENT_TYPE
    assert "statesync_connections 1\n" in body and "statesync_tables 1\n" in body
    assert (
        "statesync_messages_sent_total" in body and "statesync_store_latency_seconds_count" in body
    )
    assert ttt.metrics.value("bytes_sent_total") > 0
    for path in ("/", "/ws", "/nope", "/metrics/x"):
        assert (await http_get(ttt, path))[0] == 404, path
    await ann.close()


# ---------------------------------------------------------------------- shutdown


class GatedStore:
    """A store whose appends wait for ``gate`` (to hold actions in the table's queue)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()

    async def append(self, *args: Any, **kw: Any) -> None:
        self.entered.set()
        await self.gate.wait()
        await self.inner.append(*args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class WatchedMetrics(Metrics):
    """Metrics that set ``changed`` on every increment."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    def inc(self, name: str, value: float = 1, **labels: str) -> None:
        super().inc(name, value, **labels)
        self.changed.set()


async def test_graceful_stop_answers_queued_actions(store: Store) -> None:
    gated = GatedStore(store)
    metrics = WatchedMetrics()
    server = await serve(TicTacToe(), gated, metrics=metrics)
    ann = Peer(server, token("st", "ann"), "ann-1")
    bob = Peer(server, token("st", "bob"), "bob-1")
    await ann.connect()
    await bob.connect()
    actor = server.tables["st"]
    await ann.synced(actor)
    await bob.synced(actor)

    gated.gate.clear()
    gated.entered.clear()
    seqs = {ann: [await ann.act("place", {"cell": 0})]}
    await asyncio.wait_for(gated.entered.wait(), TIMEOUT)  # the first batch is held
    seqs[bob] = [await bob.act("place", {"cell": 3})]
    seqs[ann].append(await ann.act("place", {"cell": 1}))
    async with asyncio.timeout(TIMEOUT):
        while metrics.value("actions_total") < 3:
            metrics.changed.clear()
            await metrics.changed.wait()

    stopping = asyncio.create_task(server.stop())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not stopping.done()
    gated.gate.set()
    await asyncio.wait_for(stopping, TIMEOUT)

    for peer in (ann, bob):
        await peer.drain_until_closed()
        assert set(peer.results) == set(seqs[peer])  # every queued action was answered
        assert peer.errors[-1].code == codes.SHUTDOWN and peer.errors[-1].fatal
        assert peer.session.version == actor.sync.version  # and the last update arrived
    assert ann.results[seqs[ann][0]].ok
    stored = await StateSynchronizer.load(store, "st", TicTacToe())
    assert (stored.version, stored.hash) == (actor.sync.version, actor.sync.hash)
    assert not actor.running


async def test_stop_is_idempotent_and_context_manager_works(store: Store) -> None:
    server = Server(TicTacToe(), store, SIGNER, limits=LIMITS)
    await server.start(port=0)
    ws = await raw_ws(server)
    await ws.send(encode(Hello([1], token("cm", "ann"), "ann-1")))
    assert isinstance(await next_message(ws), Welcome)
    await asyncio.gather(server.stop(), server.stop())
    assert (await fatal_error(ws)).code == codes.SHUTDOWN
    await server.stop()
    assert store is server.store  # not closed: still usable
    assert [t.table_id for t in await store.tables()] == ["cm"]


async def test_internal_errors_close_the_connection_not_the_server(
    ttt: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = Peer(ttt, token("ie", "ann"), "ann-1")
    await ann.connect()
    actor = ttt.tables["ie"]

    def broken(*args: Any, **kw: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(type(actor), "subscribe", broken)
    ws = await raw_ws(ttt)
    await ws.send(encode(Hello([1], token("ie", None), "w-1")))
    assert isinstance(await next_message(ws), Welcome)
    assert (await fatal_error(ws)).code == codes.INTERNAL
    monkeypatch.undo()
    assert ttt.metrics.value("bad_messages_total", code=codes.INTERNAL) == 1
    bob = Peer(ttt, token("ie", "bob"), "bob-1")
    await bob.connect()
    await ann.synced(actor)
    assert (await ann.result(await ann.act("place", {"cell": 0}))).ok
    await ann.close()
    await bob.close()


async def test_result_messages_are_well_formed(ttt: Server) -> None:
    """A refused action's Result carries the table's version and the reason code."""
    ann, bob, actor = await two_players(ttt, "rf")
    await bob.synced(actor)
    seq = await bob.act("place", {"cell": 0})
    refused = await bob.result(seq)
    assert (refused.ok, refused.code, refused.version) == (
        False,
        "action/not_your_turn",
        actor.sync.version,
    )
    raw = [decode_server(f) for f in bob.raw]
    assert any(isinstance(m, Result) and m.seq == seq for m in raw)
    await ann.close()
    await bob.close()


async def test_a_slow_reader_lags_then_catches_up(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await serve(
        TicTacToe(), store, limits=Limits(max_message_bytes=1024, send_queue_max=2)
    )
    ann = Peer(server, token("slow", "ann"), "ann-1")
    bob = Peer(server, token("slow", "bob"), "bob-1")
    watcher = Peer(server, token("slow", None), "w-1")
    for peer in (ann, bob, watcher):
        await peer.connect()
    actor = server.tables["slow"]
    await watcher.synced(actor)
    conn = connection_of(server, "w-1")
    # A reader that stops reading: the socket's write buffer stays over its high-water mark
    # (so the server queues instead of writing), and a send that waits for it to drain
    # returns only once the gate opens.
    gate = asyncio.Event()
    real_send = conn.ws.send
    transport = conn.ws.transport
    real_size = transport.get_write_buffer_size
    full = transport.get_write_buffer_limits()[1] + 1

    def buffer_size() -> int:
        return real_size() if gate.is_set() else full

    async def stalled_send(message: Any, *args: Any, **kw: Any) -> None:
        await gate.wait()
        await real_send(message, *args, **kw)

    monkeypatch.setattr(transport, "get_write_buffer_size", buffer_size)
    monkeypatch.setattr(conn.ws, "send", stalled_send)
    for peer, cell in ((ann, 0), (bob, 3), (ann, 1), (bob, 4), (ann, 6), (bob, 7)):
        await peer.synced(actor)
        assert (await peer.result(await peer.act("place", {"cell": cell}))).ok
    await actor.drain()
    assert actor.stats["lagging"] >= 1
    (sub,) = [s for s in actor.subscriptions if s.viewer is None]
    assert sub.lagging
    gate.set()
    await watcher.synced(actor)  # one squashed update after the backlog, no gap, no desync
    assert watcher.session.stats["updates"] + watcher.session.stats["snapshots"] < 1 + 6
    for peer in (ann, bob, watcher):
        await peer.close()
    await server.stop()


async def test_sent_frames_are_counted_exactly(ttt: Server) -> None:
    """``messages_sent_total`` and ``bytes_sent_total`` count every frame the clients got."""
    ann, bob, actor = await two_players(ttt, "count")
    for peer, cell in ((ann, 0), (bob, 4), (ann, 8)):
        await peer.synced(actor)
        assert (await peer.result(await peer.act("place", {"cell": cell}))).ok
    await ann.synced(actor)
    await bob.synced(actor)
    frames = ann.raw + bob.raw
    assert ttt.metrics.value("messages_sent_total") == len(frames)
    assert ttt.metrics.value("bytes_sent_total") == sum(map(len, frames))
    await ann.close()
    await bob.close()


async def test_a_failure_while_encoding_closes_only_that_connection(
    ttt: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann, bob, actor = await two_players(ttt, "enc")
    watcher = await raw_ws(ttt)
    await watcher.send(encode(Hello([1], token("enc", None), "w-1")))
    assert isinstance(await next_message(watcher), Welcome)
    assert isinstance(await next_message(watcher), Snapshot)

    session = connection_of(ttt, "w-1").session
    for name in ("update", "update_message"):  # the session has slots: patch its class
        original = getattr(ServerSession, name)

        def broken(self: ServerSession, *args: Any, _original: Any = original) -> Any:
            if self is session:
                raise RuntimeError("boom")
            return _original(self, *args)

        monkeypatch.setattr(ServerSession, name, broken)
    await ann.synced(actor)
    assert (await ann.result(await ann.act("place", {"cell": 0}))).ok
    assert (await fatal_error(watcher)).code == codes.INTERNAL
    assert ttt.metrics.value("bad_messages_total", code=codes.INTERNAL) == 1
    await ann.synced(actor)  # the table and the other connections carry on
    await bob.synced(actor)
    await ann.close()
    await bob.close()


async def test_a_failed_socket_write_drops_only_that_connection(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write the transport refuses is a vanished peer: the connection is dropped, the
    player marked disconnected (at once: no grace here), and no internal error is counted."""
    ttt = await serve(TicTacToe(), store, reconnect_grace=0)
    ann, bob, actor = await two_players(ttt, "wf")
    await bob.synced(actor)
    victim = connection_of(ttt, "bob-1").ws.transport

    def failing(data: Any) -> None:
        raise OSError("the socket is gone")

    monkeypatch.setattr(victim, "write", failing)
    await ann.synced(actor)
    assert (await ann.result(await ann.act("place", {"cell": 0}))).ok
    await bob.drain_until_closed()
    view = ann.session
    await ann.until(lambda: view.authoritative is not None and not seated_online(view, "bob"))
    assert not actor.sync.state["seats"]["bob"]["connected"]
    assert ttt.metrics.value("bad_messages_total", code=codes.INTERNAL) == 0
    await ann.synced(actor)
    await ann.close()
    await ttt.stop()


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_frames_written_directly_are_what_websockets_would_write(size: int) -> None:
    message = bytes(range(256)) * (size // 256) + bytes(size % 256)
    frame = Frame(Opcode.BINARY, message)
    assert _binary_frame(message) == frame.serialize(mask=False, extensions=[])


async def test_a_quiet_client_is_kept_while_it_answers_probes(store: Store) -> None:
    offset = [0.0]
    server = await serve(TicTacToe(), store, clock=lambda: time.time() + offset[0])
    hb, idle = LIMITS.heartbeat_interval, LIMITS.idle_timeout
    try:
        ann = Peer(server, token("quiet", "ann"), "ann-1")
        await ann.connect()
        conn = connection_of(server, "ann-1")
        # Silent for twice the idle timeout, but its WebSocket library answers each probe.
        for _ in range(int(2 * idle / hb) + 1):
            offset[0] += hb
            server.tick()
            assert conn._probe is not None, "a quiet client is probed"
            async with asyncio.timeout(TIMEOUT):
                await conn._probe
        server.tick()
        assert not conn.closed.is_set() and conn.session.state == OPEN
        # Now it stops reading: the probe goes unanswered and the idle timeout closes it.
        assert ann.ws is not None
        ann.ws.transport.pause_reading()
        offset[0] += hb
        server.tick()
        offset[0] += idle
        server.tick()
        ann.ws.transport.resume_reading()
        assert (await fatal_error(ann.ws)).code == codes.IDLE_TIMEOUT
    finally:
        await server.stop()


async def test_bye_with_leave_gives_up_the_seat(ttt: Server) -> None:
    ann = Peer(ttt, token("bye", "ann"), "ann-1")
    await ann.connect()
    actor = ttt.tables["bye"]
    assert ann.ws is not None
    await ann.ws.send(ann.session.bye(leave=True))
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ann.ws.recv(), TIMEOUT)
    async with asyncio.timeout(TIMEOUT):
        while "ann" in actor.sync.state["seats"]:
            await actor.drain()
    assert "ann" not in actor.sync.state["players"]


async def test_a_dropped_player_keeps_the_seat_through_the_grace(store: Store) -> None:
    """No Bye: the seat stays as it is for ``reconnect_grace``; back in time, nothing was
    written; gone for longer, the seat is marked disconnected on a later tick."""
    server = await serve(TicTacToe(), store, reconnect_grace=0.3)
    try:
        ann, bob, actor = await two_players(server, "grace")
        await bob.synced(actor)
        version = actor.sync.version
        for _ in range(2):  # two blips
            await bob.close()
            await bob.connect()
            await bob.synced(actor)
        await ann.synced(actor)
        assert actor.sync.version == version and seated_online(ann.session, "bob")
        await bob.close()
        await ann.until(lambda: not seated_online(ann.session, "bob"))
        assert actor.sync.version == version + 1  # the one $disconnect
        await ann.close()
    finally:
        await server.stop()


async def test_a_player_who_says_goodbye_is_disconnected_at_once(store: Store) -> None:
    server = await serve(TicTacToe(), store, reconnect_grace=3600)
    try:
        ann, bob, actor = await two_players(server, "bye2")
        await bob.synced(actor)
        await ann.synced(actor)
        assert bob.ws is not None
        await bob.ws.send(bob.session.bye())
        await ann.until(lambda: not seated_online(ann.session, "bob"))
        assert "bob" in actor.sync.state["seats"]  # still seated: no leave
        await ann.close()
    finally:
        await server.stop()


async def test_a_damaged_view_at_hello_gets_a_snapshot(ttt: Server) -> None:
    ann = Peer(ttt, token("dmg", "ann"), "ann-1")
    await ann.connect()
    actor = ttt.tables["dmg"]
    await actor.drain()
    ws = await raw_ws(ttt)
    v, e = actor.sync.version, actor.sync.epoch
    await ws.send(encode(Hello([1], token("dmg", None), "w-1", v, e, b"\x00" * 16)))
    assert isinstance(await next_message(ws), Welcome)
    snap = await next_message(ws)
    assert isinstance(snap, Snapshot) and snap.version == v
    await ws.close()
    ws = await raw_ws(ttt)  # with the right hash: nothing to send
    await ws.send(encode(Hello([1], token("dmg", None), "w-2", v, e, snap.hash)))
    assert isinstance(await next_message(ws), Welcome)
    await ws.send(encode(Ping(3)))
    assert await next_message(ws) == Pong(3)
    await ws.close()
    await ann.close()


async def test_cli_serve_runs_until_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "STATESYNC_SECRET": "x" * 32}
    code = "import sys; from statesync.cli import main; sys.exit(main(sys.argv[1:]))"
    db = str(tmp_path / "cli.db")
    game = "statesync.games.tictactoe:TicTacToe"
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", code, "serve", "--port", "0", "--db", db, "--game", game),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        url = line.split(" at ")[-1].strip()
        assert url.startswith("ws://127.0.0.1:") and url.endswith("/ws"), line
        ann = Peer(url, token("cli", "ann"), "ann-1")
        await ann.connect()
        assert ann.session.authoritative is not None
        proc.send_signal(signal.SIGTERM)
        await ann.drain_until_closed()
        assert ann.errors[-1].code == codes.SHUTDOWN
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
