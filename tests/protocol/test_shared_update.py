"""Protocol version 2 in memory: version negotiation, when a ServerSession sends a chunk of
the table's shared stream and when the whole update instead, and how a ClientSession
applies a SharedUpdate, resets its shared decoder, and heals a bad one."""

from __future__ import annotations

from typing import Any

import pytest

from statesync.actions import PlayerAction
from statesync.fanout import SharedStream, SplitUpdate, split_view
from statesync.games.tictactoe import TicTacToe
from statesync.protocol.client_session import ClientSession, Desynced, ServerError, StateChanged
from statesync.protocol.messages import (
    Hello,
    Resync,
    SharedUpdate,
    Snapshot,
    Update,
    Welcome,
    decode_client,
    decode_server,
    encode,
    encode_shared_update,
)
from statesync.protocol.server_session import ServerSession
from statesync.snapshot import StateDelta
from statesync.synchronizer import StateSynchronizer


def verify(token: str, now: float) -> tuple[str, str | None]:
    return "t1", token


def opened(versions: list[int], player: str = "ann") -> ServerSession:
    server = ServerSession(verify, now=0.0)
    server.receive(encode(Hello(versions, player, f"{player}-c")), 0.0)
    server.welcome(1)
    return server


class Table:
    """A tic-tac-toe table with a shared stream, as the table actor keeps it."""

    def __init__(self) -> None:
        self.sync = StateSynchronizer(TicTacToe(), players=["ann", "bob"], seed=1)
        self.stream = SharedStream()
        self.stream.reset(0, 0)
        self.moves = 0

    def move(self, cell: int) -> None:
        who = self.sync.state["game"]["turn"]
        self.moves += 1
        action = PlayerAction(who, who, self.moves, self.sync.version, "place", {"cell": cell})
        [outcome] = self.sync.submit_nowait([action])
        assert outcome.ok

    def split(self, viewer: str, base: int) -> SplitUpdate:
        """The next chunk of the stream (from ``base``) with ``viewer``'s private part."""
        update = self.sync.sync_views(base, [viewer])[0]
        assert isinstance(update, StateDelta)
        parts = split_view(update.delta)
        assert parts is not None
        self.stream.version = base
        chunk = self.stream.encode(parts[0], update.version)
        return SplitUpdate(update, chunk, parts[1], bytes.fromhex(update.hash))


def sent(server: ServerSession) -> list[Any]:
    return [decode_server(data) for data in server.data_to_send()]


@pytest.mark.parametrize(("versions", "chosen"), [([1], 1), ([1, 2], 2), ([2], 2), ([2, 7], 2)])
def test_the_highest_common_version_is_chosen(versions: list[int], chosen: int) -> None:
    server = opened(versions)
    [welcome] = sent(server)
    assert isinstance(welcome, Welcome) and welcome.version == chosen == server.protocol
    assert (server.cursor is not None) is (chosen >= 2)


def test_a_client_offers_both_versions() -> None:
    hello = decode_client(ClientSession("ann", "ann-c").connect())
    assert isinstance(hello, Hello) and hello.versions == [1, 2]


def test_chunks_go_out_in_order_and_anything_else_goes_whole() -> None:
    table = Table()
    server = opened([1, 2])
    sent(server)
    server.snapshot(table.sync.snapshot("ann"))
    sent(server)
    table.move(4)
    first = table.split("ann", 0)  # chunk 0: starts a generation, taken by anyone
    server.update(first)
    [m] = sent(server)
    assert isinstance(m, SharedUpdate) and m.reset and (m.base_version, m.version) == (0, 1)
    assert server.cursor is not None and server.cursor.next == 1
    table.move(0)
    second = table.split("ann", 1)
    table.move(8)
    third = table.split("ann", 1)  # chunk 2, from version 1: the stream moved on
    server.update(third)  # skips chunk 1: the client could not decode it
    [m] = sent(server)
    assert isinstance(m, Update) and (m.base_version, m.version) == (1, 3)
    # chunk 1 is now for a version the client does not hold: whole as well
    assert server.cursor.next == 1
    assert second.chunk.index == 1
    # a snapshot resets the client's shared decoder: out of step with every generation
    server.snapshot(table.sync.snapshot("ann"))
    assert (server.cursor.generation, server.cursor.next) == (0, 0)


def test_a_version_1_session_never_sends_a_shared_update() -> None:
    table = Table()
    server = opened([1])
    server.snapshot(table.sync.snapshot("ann"))
    sent(server)
    table.move(4)
    server.update(table.split("ann", 0))
    [m] = sent(server)
    assert isinstance(m, Update)


def test_a_client_applies_shared_updates_and_resets_on_request() -> None:
    table = Table()
    server = opened([2])
    client = ClientSession("ann", "ann-c")
    client.connect()
    for data in server.data_to_send():
        client.receive(data)
    server.snapshot(table.sync.snapshot("ann"))
    for data in server.data_to_send():
        client.receive(data)
    for _ in range(2):  # the same moves again after a reset: a fresh generation each time
        for cell in (4, 0, 8):
            base = table.sync.version
            table.move(cell)
            server.update(table.split("ann", base))
            for data in server.data_to_send():
                assert client.receive(data)[-1] == StateChanged(table.sync.version, False)
            assert client.authoritative == table.sync.view("ann")
        table.sync = StateSynchronizer(TicTacToe(), players=["ann", "bob"], seed=1)
        table.moves = 0
        table.stream.reset(0, 0)
        server.snapshot(table.sync.snapshot("ann"))
        for data in server.data_to_send():
            client.receive(data)
    assert client.stats["desyncs"] == 0 and client.stats["updates"] == 6


def open_client(table: Table) -> ClientSession:
    client = ClientSession("ann", "ann-c")
    client.connect()
    client.receive(encode(Welcome(2, "t1", "ann", "ann-c", 1)))
    snap = table.sync.snapshot("ann")
    client.receive(encode(Snapshot(0, 0, bytes.fromhex(snap.hash), snap.to_state())))
    return client


@pytest.mark.parametrize("fault", ["garbage", "private garbage", "hash"])
def test_a_bad_shared_update_is_a_counted_desync_and_a_resync(fault: str) -> None:
    table = Table()
    table.move(4)
    split = table.split("ann", 0)
    shared, private, digest = split.chunk.data, None, split.hash
    if fault == "garbage":
        shared = b"\x01\xff\xff"
    elif fault == "private garbage":
        private = b"\x01\xff"
    else:
        digest = b"\x00" * 16
    client = open_client(table)
    before = client.authoritative
    [event] = client.receive(encode_shared_update(0, 1, 0, digest, shared, private, True))
    assert isinstance(event, Desynced)
    assert client.authoritative == before and client.version == 0
    assert client.stats["desyncs"] == 1
    [resync] = [decode_client(d) for d in client.data_to_send()]
    assert isinstance(resync, Resync) and resync.version == 0
    # updates are ignored until the snapshot, which resets both decoders
    assert (
        client.receive(encode_shared_update(0, 1, 0, split.hash, split.chunk.data, None, True))
        == []
    )
    snap = table.sync.snapshot("ann")
    client.receive(encode(Snapshot(1, 0, bytes.fromhex(snap.hash), snap.to_state())))
    assert client.authoritative == table.sync.view("ann")


def test_every_prefix_of_a_shared_update_is_refused_cleanly() -> None:
    table = Table()
    client = open_client(table)
    table.move(4)
    split = table.split("ann", 0)
    whole = encode_shared_update(0, 1, 0, split.hash, split.chunk.data, None, True)
    for n in range(len(whole)):
        [event] = client.receive(whole[:n])
        assert isinstance(event, ServerError) and not event.fatal
        assert client.version == 0 and client.stats["desyncs"] == 0
    assert client.receive(whole) == [StateChanged(1, False)]
    assert client.authoritative == table.sync.view("ann")
