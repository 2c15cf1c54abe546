"""The shared stream end to end, in memory: a TableActor's updates through real
ServerSessions to real ClientSessions, with connections joining late, lagging, resyncing and
speaking protocol version 1 mixed in. Every client must hold exactly its view after every
flush, and the public part of an update must be encoded once per table, not per connection."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statesync.actions import PlayerAction
from statesync.errors import ActionRejected
from statesync.fanout import RESET_AFTER
from statesync.games import Holdem, TicTacToe
from statesync.games import holdem as holdem_rules
from statesync.protocol.client_session import ClientSession, Desynced
from statesync.protocol.messages import (
    Hello,
    SharedUpdate,
    Snapshot,
    Update,
    decode_client,
    decode_server,
    encode,
)
from statesync.protocol.server_session import Opened, ResyncRequested, ServerSession
from statesync.server.table import TableActor
from statesync.store import MemoryStore
from statesync.testing.games import Tally

PLAYERS = [f"p{i}" for i in range(6)]


def verify(token: str, now: float) -> tuple[str, str | None]:
    if not token.startswith("tok-"):
        raise ActionRejected("auth/bad_signature", "unknown token")
    who = token.removeprefix("tok-")
    return "t", (None if who == "spectator" else who)


class Link:
    """One connection: a ServerSession subscribed to the actor, and the ClientSession at the
    other end, pumped synchronously from the subscription's ``send``."""

    count = 0

    def __init__(self, actor: TableActor, viewer: str | None, *, protocol: int = 2) -> None:
        Link.count += 1
        self.actor = actor
        self.viewer = viewer
        self.server = ServerSession(verify, now=0.0)
        self.client = ClientSession(f"tok-{viewer or 'spectator'}", f"c{Link.count}")
        hello = decode_client(self.client.connect())
        assert isinstance(hello, Hello)
        versions = [v for v in hello.versions if v <= protocol]
        hello = Hello(versions, hello.token, hello.client_id, hello.version)
        [opened] = self.server.receive(encode(hello), 0.0)
        assert isinstance(opened, Opened)
        self.server.welcome(1)
        self.messages: list[Any] = []
        self.desyncs: list[Desynced] = []
        self.full = False
        self.pump()
        self.sub = actor.subscribe(viewer, send=self.send, cursor=self.server.cursor)

    def send(self, update: Any) -> bool:
        if self.full:
            return False
        self.server.update(update)
        self.pump()
        return True

    def pump(self) -> None:
        for data in self.server.data_to_send():
            self.messages.append(decode_server(data))
            for event in self.client.receive(data):
                if isinstance(event, Desynced):
                    self.desyncs.append(event)
        for data in self.client.data_to_send():
            for event in self.server.receive(data, 0.0):
                if isinstance(event, ResyncRequested):
                    self.sub.resync()

    def check(self) -> None:
        """Holds exactly the table's current view (unless lagging), and never desynced."""
        assert self.desyncs == []
        if self.sub.lagging:
            return
        sync = self.actor.sync
        assert self.client.version == sync.version
        assert self.client.authoritative == sync.view(self.viewer)
        assert self.client.replica is not None
        assert self.client.replica.hash == sync.view_hash(self.viewer)


async def tally_table() -> TableActor:
    actor = await TableActor.open(Tally(), MemoryStore(), "t", create_players=PLAYERS)
    actor.start()
    return actor


async def add(actor: TableActor, who: str = "p0") -> None:
    seq = actor.stats["actions"] + 1
    outcome = await actor.act(PlayerAction(who, f"bot-{who}", seq, actor.sync.version, "add"))
    assert outcome.ok, outcome
    await actor.drain()


async def holdem_table() -> TableActor:
    actor = await TableActor.open(
        Holdem(), MemoryStore(), "t", create_players=PLAYERS, config={"stack": 10**6}
    )
    actor.start()
    return actor


async def play(actor: TableActor, seqs: dict[str, int]) -> None:
    """One legal hold'em action by whoever is to act."""
    state = actor.sync.state
    who = state["game"]["turn"]
    assert who is not None
    kind, payload = holdem_rules.legal_actions(state, who)[0]
    seqs[who] = seqs.get(who, 0) + 1
    outcome = await actor.act(
        PlayerAction(who, f"bot-{who}", seqs[who], actor.sync.version, kind, payload)
    )
    assert outcome.ok, outcome
    await actor.drain()


def shared_messages(link: Link) -> list[SharedUpdate]:
    return [m for m in link.messages if isinstance(m, SharedUpdate)]


async def test_in_step_connections_share_one_encoded_chunk_per_update() -> None:
    actor = await holdem_table()
    links = [Link(actor, p) for p in PLAYERS] + [Link(actor, None), Link(actor, None)]
    await actor.drain()
    seqs: dict[str, int] = {}
    for _ in range(30):
        await play(actor, seqs)
        for link in links:
            link.check()
    # Every connection that got a version's update as a SharedUpdate got the same chunk,
    # and after the first hand's start nearly every delta went that way (a new hand deals
    # new cards: snapshots, after which the stream restarts for everyone at once).
    chunks: dict[int, set[bytes]] = {}
    shared = whole = 0
    for link in links:
        for m in link.messages:
            if isinstance(m, SharedUpdate):
                chunks.setdefault(m.version, set()).add(m.shared)
                shared += m.version > 5
            elif isinstance(m, Update):
                whole += m.version > 5
    assert all(len(datas) == 1 for datas in chunks.values())
    assert shared > 0 and whole == 0
    # One chunk per flush (encoded once per table): the stream advanced once per version.
    assert actor._stream.next <= actor.stats["flushes"]
    spectator = shared_messages(links[-1])
    assert all(m.delta is None for m in spectator)  # spectators have no private part
    await actor.stop()


async def test_the_chunk_bytes_are_the_same_object_for_every_connection() -> None:
    actor = await holdem_table()
    seen: dict[int, list[bytes]] = {}
    links = [Link(actor, p) for p in PLAYERS]
    await actor.drain()
    original = ServerSession.update_message

    def spy(self: ServerSession, update: Any) -> bytes | None:
        chunk = getattr(update, "chunk", None)
        if chunk is not None:
            seen.setdefault(chunk.version, []).append(chunk.data)
        return original(self, update)

    ServerSession.update_message = spy  # type: ignore[method-assign]
    try:
        seqs: dict[str, int] = {}
        for _ in range(5):
            await play(actor, seqs)
    finally:
        ServerSession.update_message = original  # type: ignore[method-assign]
    assert seen, "no SplitUpdate reached the sessions"
    for datas in seen.values():
        assert len(datas) == len(links)
        assert all(d is datas[0] for d in datas)
    for link in links:
        link.check()
    await actor.stop()


async def test_version_1_connections_get_plain_updates_beside_shared_ones() -> None:
    actor = await holdem_table()
    old = Link(actor, "p0", protocol=1)
    new = Link(actor, "p0")
    watcher = Link(actor, None, protocol=1)
    await actor.drain()
    assert old.server.protocol == 1 and old.server.cursor is None
    assert new.server.protocol == 2
    seqs: dict[str, int] = {}
    for _ in range(12):
        await play(actor, seqs)
        for link in (old, new, watcher):
            link.check()
    for link in (old, watcher):
        assert {type(m) for m in link.messages} <= {
            type(m) for m in old.messages if not isinstance(m, SharedUpdate)
        }
        assert not shared_messages(link)
    assert shared_messages(new)
    await actor.stop()


async def test_a_late_joiner_gets_its_own_updates_until_the_stream_restarts() -> None:
    actor = await tally_table()
    early = [Link(actor, p) for p in PLAYERS[:4]]
    await actor.drain()
    for _ in range(3):
        await add(actor)
    late = Link(actor, PLAYERS[4])
    first = len(late.messages)  # after its Welcome
    await actor.drain()
    start = actor._stream.next
    for i in range(RESET_AFTER + 3):
        await add(actor, PLAYERS[i % 5])
        for link in [*early, late]:
            link.check()
    after = late.messages[first:]
    # A minority behind: the stream runs on, and the joiner gets whole updates on its own
    # stream until RESET_AFTER chunks are out; then one reset brings everybody in.
    assert isinstance(after[0], Snapshot)
    wait = RESET_AFTER - start
    assert all(isinstance(m, Update) for m in after[1 : 1 + wait])
    assert isinstance(after[1 + wait], SharedUpdate) and after[1 + wait].reset
    assert all(isinstance(m, SharedUpdate) and not m.reset for m in after[2 + wait :])
    for link in early:  # the in-step ones saw that same reset and no other since
        mine = [m for m in shared_messages(link) if m.version > after[0].version]
        assert [m.version for m in mine if m.reset] == [after[1 + wait].version]
    await actor.stop()


async def test_as_many_behind_as_in_step_restarts_the_stream_at_once() -> None:
    actor = await tally_table()
    a = Link(actor, "p0")
    await actor.drain()
    await add(actor)
    b = Link(actor, "p1")
    await actor.drain()
    await add(actor)
    last_a, last_b = a.messages[-1], b.messages[-1]
    assert isinstance(last_a, SharedUpdate) and isinstance(last_b, SharedUpdate)
    assert last_b.reset and last_a.reset and last_a.shared == last_b.shared
    assert last_a.delta is not None and last_b.delta is None  # p0 acted: its count changed
    a.check()
    b.check()
    await actor.stop()


async def test_lagging_and_resyncing_connections_fall_back_and_rejoin() -> None:
    actor = await tally_table()
    links = [Link(actor, p) for p in PLAYERS]
    await actor.drain()
    for _ in range(3):
        await add(actor)
    slow, corrupt = links[0], links[1]
    slow.full = True
    for i in range(4):
        await add(actor, PLAYERS[i])
    assert slow.sub.lagging
    slow.full = False
    slow.sub.resume()
    await actor.drain()
    corrupt.sub.resync()  # as if its hash check had failed
    await actor.drain()
    assert isinstance(corrupt.messages[-1], Snapshot)
    assert isinstance(slow.messages[-1], Update)  # squashed, on its own stream
    # Both are behind a stream that runs on (same generation, later chunks): they must get
    # whole updates, never a chunk their shared decoder cannot follow.
    for i in range(RESET_AFTER + 2):
        await add(actor, PLAYERS[i % 6])
        for link in links:
            link.check()
    assert isinstance(slow.messages[-1], SharedUpdate)
    assert isinstance(corrupt.messages[-1], SharedUpdate)
    assert sum(isinstance(m, Update) for m in slow.messages) >= 2
    await actor.stop()


async def test_an_update_that_cannot_be_split_goes_whole_and_keeps_the_stream() -> None:
    actor = await TableActor.open(TicTacToe(), MemoryStore(), "t", create_players=["ann", "bob"])
    actor.start()
    links = [Link(actor, "ann"), Link(actor, "bob"), Link(actor, None)]
    await actor.drain()
    outcome = await actor.act(PlayerAction("ann", "a", 1, actor.sync.version, "place", {"cell": 4}))
    assert outcome.ok
    await actor.drain()
    stream = actor._stream
    generation, index = stream.generation, stream.next
    await actor.rollback(actor.sync.version - 1)  # a new epoch: snapshots for everyone
    await actor.drain()
    for link in links:
        assert isinstance(link.messages[-1], Snapshot)
        link.check()
    outcome = await actor.act(PlayerAction("ann", "a", 2, actor.sync.version, "place", {"cell": 0}))
    assert outcome.ok
    await actor.drain()
    for link in links:
        assert isinstance(link.messages[-1], SharedUpdate) and link.messages[-1].reset
        link.check()
    assert (stream.generation, stream.next) != (generation, index)
    await actor.stop()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["holdem", "tally"]),
    st.lists(
        st.tuples(
            st.sampled_from(["act", "act", "act", "join", "join1", "lag", "catch_up", "resync"]),
            st.integers(0, 50),
        ),
        min_size=5,
        max_size=60,
    ),
)
async def test_any_mix_of_joins_lags_and_resyncs_keeps_every_client_in_sync(
    game: str, steps: list[tuple[str, int]]
) -> None:
    actor = await (holdem_table() if game == "holdem" else tally_table())
    viewers: list[str | None] = [*PLAYERS, None]
    links = [Link(actor, "p0")]
    await actor.drain()
    seqs: dict[str, int] = {}
    flushes = actor.stats["flushes"]
    chunks_before = actor._stream.next, actor._stream.generation
    for op, n in steps:
        link = links[n % len(links)]
        if op == "act":
            if game == "tally":
                await add(actor, PLAYERS[n % len(PLAYERS)])
            elif actor.sync.state["game"]["turn"] is not None:
                await play(actor, seqs)
        elif op in ("join", "join1"):
            links.append(Link(actor, viewers[n % len(viewers)], protocol=1 if op == "join1" else 2))
        elif op == "lag":
            link.full = True
        elif op == "catch_up":
            link.full = False
            link.sub.resume()
        else:
            link.sub.resync()
        await actor.drain()
        # At most one chunk encoded per flush: the stream never advances faster.
        stream = actor._stream
        if stream.generation == chunks_before[1]:
            assert stream.next - chunks_before[0] <= actor.stats["flushes"] - flushes
        flushes, chunks_before = actor.stats["flushes"], (stream.next, stream.generation)
        for each in links:
            if not each.full:
                each.check()
    await actor.stop()
