"""Both ends of the protocol in memory: a ServerSession per connection in front of a real
StateSynchronizer, and ClientSessions that follow it. No sockets, no clock: ``now`` is a
number the tests advance."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statesync import PlayerAction, reasons
from statesync.errors import ActionRejected
from statesync.games.holdem import Holdem, legal_actions
from statesync.games.tictactoe import TicTacToe
from statesync.protocol import codes
from statesync.protocol.client_session import (
    ActionResult,
    ClientSession,
    Desynced,
    ServerError,
    StateChanged,
    Welcomed,
)
from statesync.protocol.limits import Limits
from statesync.protocol.messages import (
    Act,
    Error,
    Hello,
    Ping,
    Pong,
    Update,
    decode_server,
    encode,
)
from statesync.protocol.server_session import (
    ActionReceived,
    Closing,
    HeartbeatDue,
    Opened,
    ResyncRequested,
    ServerSession,
)
from statesync.synchronizer import StateSynchronizer

TOKENS = {"tok-ann": ("t1", "ann"), "tok-bob": ("t1", "bob"), "tok-spec": ("t1", None)}


def verify(token: str, now: float) -> tuple[str, str | None]:
    if token not in TOKENS:
        raise ActionRejected("auth/bad_signature", "unknown token")
    return TOKENS[token]


class Harness:
    """A table and its connections, pumped by hand."""

    def __init__(self, game: Any = None, players: tuple[str, ...] = ("ann", "bob")) -> None:
        self.table = StateSynchronizer(game or TicTacToe(), players=players, seed=3)
        self.now = 0.0
        self.links: list[tuple[ServerSession, ClientSession]] = []
        self.events: dict[int, list[Any]] = {}
        self.received: dict[int, bytearray] = {}

    def connect(self, client: ClientSession, limits: Limits | None = None) -> ServerSession:
        for old, c in self.links:  # a client's previous connection is gone
            if c is client:
                old.close(codes.SHUTDOWN)
                old.data_to_send()
        server = ServerSession(verify, limits=limits, now=self.now)
        self.links.append((server, client))
        self.events[id(client)] = []
        self.received.setdefault(id(client), bytearray())
        self.to_server(server, client, [client.connect()])
        return server

    def to_server(self, server: ServerSession, client: ClientSession, msgs: list[bytes]) -> None:
        for data in msgs:
            for event in server.receive(data, self.now):
                self.handle(server, client, event)
        self.to_client(server, client)

    def handle(self, server: ServerSession, client: ClientSession, event: Any) -> None:
        if isinstance(event, Opened):
            server.welcome(1)
            viewer = event.identity.player
            server.update(self.table.sync(event.version, player_id=viewer, epoch=event.epoch))
        elif isinstance(event, ActionReceived):
            [outcome] = self.table.submit_nowait([event.action])
            server.result(event.action.seq, outcome)
            self.broadcast()
        elif isinstance(event, ResyncRequested):
            assert server.identity is not None
            server.snapshot(self.table.snapshot(server.identity.player))

    def broadcast(self) -> None:
        for server, client in self.links:
            if server.state != "open" or server.identity is None:
                continue
            update = self.table.sync(
                server.version, player_id=server.identity.player, epoch=server.epoch
            )
            server.update(update)
            self.to_client(server, client)

    def to_client(self, server: ServerSession, client: ClientSession) -> None:
        for data in server.data_to_send():
            self.received[id(client)] += data
            self.events[id(client)].extend(client.receive(data))
        replies = client.data_to_send()
        if replies:
            self.to_server(server, client, replies)

    def act(self, client: ClientSession, kind: str, payload: Any = None) -> int:
        seq = client.act(kind, payload)
        server = next(s for s, c in self.links if c is client and s.state == "open")
        self.to_server(server, client, client.data_to_send())
        return seq


def in_sync(h: Harness, client: ClientSession) -> None:
    assert client.replica is not None
    assert client.authoritative == h.table.view(client.player)
    assert client.replica.hash == h.table.view_hash(client.player)


def test_a_game_over_the_protocol() -> None:
    h = Harness()
    ann, bob, spec = (ClientSession(t, f"{t}-c") for t in ("tok-ann", "tok-bob", "tok-spec"))
    for c in (ann, bob, spec):
        h.connect(c)
        assert isinstance(h.events[id(c)][0], Welcomed)
        in_sync(h, c)
    assert (ann.player, spec.player) == ("ann", None)
    h.act(ann, "place", {"cell": 4})
    h.act(bob, "place", {"cell": 0})
    seq = h.act(ann, "place", {"cell": 4})  # taken: refused with the game's code
    for c in (ann, bob, spec):
        in_sync(h, c)
    results = [e for e in h.events[id(ann)] if isinstance(e, ActionResult)]
    assert [(r.ok, r.version) for r in results[:1]] == [(True, 1)]
    assert results[-1].seq == seq and not results[-1].ok and results[-1].code
    assert ann.pending == {} and ann.stats["desyncs"] == 0


def test_identity_comes_from_the_token_not_the_message() -> None:
    h = Harness()
    ann = ClientSession("tok-ann", "ann-c")
    server = h.connect(ann)
    events = server.receive(encode(Act(1, 0, "place", {"cell": 4})), 1.0)
    [event] = events
    assert isinstance(event, ActionReceived)
    assert (event.action.player_id, event.action.client_id) == ("ann", "ann-c")


def test_spectators_cannot_act_and_never_get_private_state() -> None:
    h = Harness(Holdem(), players=("ann", "bob"))
    spec, ann = ClientSession("tok-spec", "s"), ClientSession("tok-ann", "a")
    h.connect(spec)
    h.connect(ann)
    assert spec.authoritative is not None and spec.authoritative["players"] == {}
    assert set(ann.authoritative["players"]) == {"ann"}  # type: ignore[index]
    server = next(s for s, c in h.links if c is spec)
    server.receive(encode(Act(1, 0, "fold")), 1.0)
    [msg] = [decode_server(d) for d in server.data_to_send()]
    assert msg.code == codes.SPECTATOR  # type: ignore[union-attr]
    bob = ClientSession("tok-bob", "b")
    h.connect(bob)
    turn = h.table.state["game"]["turn"]
    h.act(ann if turn == "ann" else bob, "call")
    bob_cards = h.table.state["players"]["bob"]["cards"]
    assert bob_cards and h.table.state["game"]["round"] == "preflop"
    for c in (spec, ann):  # not one byte of bob's hole cards reached them
        for card in bob_cards:
            assert card.encode() not in h.received[id(c)]
    assert all(card.encode() in h.received[id(bob)] for card in bob_cards)


def test_reconnect_resumes_by_delta_and_resends_pending_once() -> None:
    h = Harness()
    ann, bob = ClientSession("tok-ann", "ann-c"), ClientSession("tok-bob", "bob-c")
    server_a = h.connect(ann)
    h.connect(bob)
    h.act(ann, "place", {"cell": 4})
    # ann sends an action, the server applies it, but the connection drops before the
    # answer and the update reach her.
    seq = ann.act("place", {"cell": 8})
    in_flight = ann.data_to_send()
    h.act(bob, "place", {"cell": 0})  # bob's move first: ann's is now second
    for data in in_flight:
        for event in server_a.receive(data, h.now):
            [outcome] = h.table.submit_nowait([event.action])
            assert outcome.ok
    ann.disconnected()
    server_a.data_to_send()  # lost
    assert ann.version == 2 and seq in ann.pending
    h.now = 5.0
    server_b = h.connect(ann)
    assert server_b.identity is not None
    events = h.events[id(ann)]
    welcomed = [e for e in events if isinstance(e, Welcomed)]
    assert welcomed[-1].resent == 1
    changes = [e for e in events if isinstance(e, StateChanged)]
    assert changes[-1] == StateChanged(3, False)  # a delta, not a snapshot
    [answer] = [e for e in events if isinstance(e, ActionResult) and e.seq == seq]
    assert answer.ok and answer.duplicate and answer.version == 3
    assert h.table.version == 3 and ann.pending == {}
    in_sync(h, ann)


def test_a_corrupted_update_is_detected_and_healed_by_a_snapshot() -> None:
    h = Harness()
    ann, bob = ClientSession("tok-ann", "ann-c"), ClientSession("tok-bob", "bob-c")
    h.connect(ann)
    server_b = h.connect(bob)
    h.act(ann, "place", {"cell": 4})
    # Tamper with the next update to bob: claim a wrong hash.
    h.table.submit_nowait([PlayerAction("bob", "x", 1, 1, "place", {"cell": 1})])
    server_b.update(h.table.sync(server_b.version, player_id="bob"))
    [data] = server_b.data_to_send()
    m = decode_server(data)
    assert isinstance(m, Update)
    bad = encode(Update(m.base_version, m.version, m.epoch, b"\x00" * 16, m.delta))
    events = bob.receive(bad)
    assert isinstance(events[0], Desynced) and events[0].expected == "00" * 16
    assert bob.stats["desyncs"] == 1
    h.to_server(server_b, bob, bob.data_to_send())  # the Resync
    h.to_client(server_b, bob)
    in_sync(h, bob)
    assert bob.stats["snapshots"] == 2


def test_prediction_applies_pending_actions_until_answered() -> None:
    h = Harness()
    ann = ClientSession("tok-ann", "ann-c", game=TicTacToe())
    server = h.connect(ann)
    ann.act("place", {"cell": 4})
    assert ann.authoritative is not None and ann.state is not None
    assert ann.state != ann.authoritative  # predicted
    assert ann.state["game"]["board"][4] != ann.authoritative["game"]["board"][4]
    h.to_server(server, ann, ann.data_to_send())
    assert ann.state == ann.authoritative == h.table.view("ann")


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", codes.MALFORMED),
        (b"\xc1", codes.MALFORMED),
        (encode(Pong(1)), codes.UNKNOWN_TYPE),
        (b"\x92\x63\x01", codes.UNKNOWN_TYPE),
        (encode(Act(1, 0, "x")) + b"\x00", codes.MALFORMED),
        (b"\x95\x02\xa1x\x00\xa1x\xc0", codes.MALFORMED),
        (b"\x95\x02\x01\x00\xa1\x80\xc0", codes.MALFORMED),  # a str that is not UTF-8
        (encode(Hello([1], "tok-ann", "again")), codes.UNEXPECTED),
        (b"\x92\x04" + b"\x91" * 5000, codes.TOO_LARGE),
    ],
)
def test_bad_messages_get_a_code_and_change_nothing(data: bytes, code: str) -> None:
    h = Harness()
    ann = ClientSession("tok-ann", "ann-c")
    server = h.connect(ann, Limits(max_message_bytes=4096))
    before = (h.table.version, h.table.hash, server.version)
    assert server.receive(data, 1.0) == []
    [msg] = [decode_server(d) for d in server.data_to_send()]
    assert isinstance(msg, Error) and msg.code == code and not msg.fatal
    assert (h.table.version, h.table.hash, server.version) == before
    assert server.state == "open"


def test_every_prefix_of_a_message_is_refused_cleanly() -> None:
    h = Harness()
    server = h.connect(ClientSession("tok-ann", "ann-c"))
    whole = encode(Act(7, 0, "p", {"c": 4}))
    for n in range(len(whole)):
        assert server.receive(whole[:n], 1.0) == []
    assert server.bad_messages == len(whole) and server.state == "open"
    [event] = server.receive(whole, 1.0)
    assert isinstance(event, ActionReceived) and event.action.seq == 7


@pytest.mark.parametrize(
    ("hello", "code"),
    [
        (Hello([9], "tok-ann", "c"), codes.UNSUPPORTED_VERSION),
        (Hello([1], "forged", "c"), "auth/bad_signature"),
        (Hello([1], "tok-ann", ""), codes.BAD_CLIENT_ID),
        (Hello([1], "tok-ann", "$system"), codes.BAD_CLIENT_ID),
        (Act(1, 0, "x"), codes.HANDSHAKE_REQUIRED),
    ],
)
def test_a_bad_handshake_is_fatal(hello: Any, code: str) -> None:
    server = ServerSession(verify, now=0.0)
    [event] = server.receive(encode(hello), 0.0)
    assert isinstance(event, Closing) and event.code == code
    [msg] = [decode_server(d) for d in server.data_to_send()]
    assert isinstance(msg, Error) and msg.fatal and msg.code == code
    assert server.identity is None and server.state == "closed"
    assert server.receive(encode(Hello([1], "tok-ann", "c")), 1.0) == []


def test_timeouts_heartbeats_and_rate_limit() -> None:
    limits = Limits(
        handshake_timeout=2,
        idle_timeout=10,
        heartbeat_interval=3,
        actions_per_second=1,
        action_burst=2,
    )
    s = ServerSession(verify, limits=limits, now=0.0)
    assert s.tick(1.0) == []
    [closing] = s.tick(2.5)
    assert isinstance(closing, Closing) and closing.code == codes.HANDSHAKE_TIMEOUT
    s = ServerSession(verify, limits=limits, now=0.0)
    s.receive(encode(Hello([1], "tok-ann", "c")), 0.0)
    assert isinstance(s.tick(3.0)[0], HeartbeatDue)
    s.receive(encode(Ping(5)), 4.0)
    assert decode_server(s.data_to_send()[-1]) == Pong(5)
    got = [s.receive(encode(Act(i, 0, "x")), 4.0) for i in range(1, 5)]
    assert [len(g) for g in got] == [1, 1, 0, 0]  # burst of 2, then refused
    refused = [decode_server(d) for d in s.data_to_send()]
    assert [m.code for m in refused] == [codes.RATE_LIMITED] * 2  # type: ignore[union-attr]
    [closing] = s.tick(14.5)
    assert isinstance(closing, Closing) and closing.code == codes.IDLE_TIMEOUT


@given(
    st.booleans(),
    st.lists(
        st.tuples(st.sampled_from(["receive", "alive", "tick"]), st.floats(0.0, 6.0)),
        max_size=40,
    ),
)
def test_a_tick_before_due_has_nothing_to_do(hello: bool, steps: list[tuple[str, float]]) -> None:
    """The server ticks a session only once ``now`` has reached ``due``: any tick before
    that must have nothing to do (and ``due`` is never later than the next event)."""
    limits = Limits(idle_timeout=10, heartbeat_interval=3, handshake_timeout=4)
    s = ServerSession(verify, limits=limits, now=0.0)
    if hello:
        s.receive(encode(Hello([1], "tok-ann", "c")), 0.0)
    now = 0.0
    for kind, dt in steps:
        now += dt
        if kind == "receive":
            s.receive(encode(Ping(1)), now)
        elif kind == "alive":
            s.alive(now)
        else:
            early = now < s.due
            events = s.tick(now)
            if early:
                assert events == [], (now, s.due)


def test_only_a_quiet_client_is_probed_and_its_pong_keeps_it() -> None:
    limits = Limits(idle_timeout=10, heartbeat_interval=3)
    s = ServerSession(verify, limits=limits, now=0.0)
    s.receive(encode(Hello([1], "tok-ann", "c")), 0.0)
    for t in (2.0, 4.0, 6.0, 8.0):  # a client that sends every 2 s is never probed
        s.receive(encode(Ping(int(t))), t)
        assert s.tick(t + 1.5) == []
    assert isinstance(s.tick(11.0)[0], HeartbeatDue)  # quiet since 8.0
    assert s.tick(12.0) == []  # one probe per interval
    s.alive(12.5)  # the pong arrived: it counts as hearing from the client
    assert s.tick(14.0) == [] and s.tick(15.4) == []
    assert isinstance(s.tick(15.5)[0], HeartbeatDue)
    [closing] = s.tick(22.6)  # no pong this time: closed 10 s after the last one
    assert isinstance(closing, Closing) and closing.code == codes.IDLE_TIMEOUT


def test_too_many_bad_messages_close_the_connection() -> None:
    s = ServerSession(verify, now=0.0)
    s.receive(encode(Hello([1], "tok-ann", "c")), 0.0)
    events: list[Any] = []
    for _ in range(30):
        events += s.receive(b"\xc1", 1.0)
    assert isinstance(events[-1], Closing) and events[-1].code == codes.TOO_MANY_ERRORS
    assert s.state == "closed"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=64),
            st.builds(lambda b: b"\x95\x02" + b, st.binary(max_size=20)),
            st.builds(lambda b: b"\x93\x03" + b, st.binary(max_size=8)),
        ),
        max_size=10,
    )
)
def test_fuzzed_input_never_crashes_the_server_session(blobs: list[bytes]) -> None:
    h = Harness()
    server = h.connect(ClientSession("tok-ann", "ann-c"))
    before = (h.table.version, h.table.hash)
    for data in blobs:
        for event in server.receive(data, 1.0):
            assert isinstance(event, ActionReceived | ResyncRequested | Closing)
            if isinstance(event, ActionReceived):
                assert event.action.player_id == "ann"
    for data in server.data_to_send():
        decode_server(data)  # everything the server says is well-formed
    assert (h.table.version, h.table.hash) == before


def test_holdem_clients_stay_in_sync_over_many_actions() -> None:
    h = Harness(Holdem(), players=("ann", "bob"))
    clients = {p: ClientSession(f"tok-{p}", f"{p}-c") for p in ("ann", "bob")}
    spec = ClientSession("tok-spec", "spec")
    for c in (*clients.values(), spec):
        h.connect(c)
    for _ in range(60):
        turn = h.table.state["game"]["turn"]
        if turn is None:
            break
        choices = [c for c in legal_actions(h.table.state, turn) if c[0] != "all_in"]
        kind, payload = choices[len(h.table.state["game"]["log"]) % len(choices)]
        h.act(clients[turn], kind, payload)
    for c in (*clients.values(), spec):
        in_sync(h, c)
        assert c.stats["desyncs"] == 0
        assert not any(isinstance(e, ServerError) for e in h.events[id(c)])
    assert h.table.version > 20
    assert not any(
        isinstance(e, ActionResult) and e.code == reasons.STORE_UNAVAILABLE
        for c in clients.values()
        for e in h.events[id(c)]
    )


def test_an_action_sent_during_a_resync_is_applied_once_and_the_snapshot_includes_it() -> None:
    h = Harness()
    ann, bob = ClientSession("tok-ann", "ann-c"), ClientSession("tok-bob", "bob-c")
    server_a = h.connect(ann)
    h.connect(bob)
    h.act(ann, "place", {"cell": 4})
    h.act(bob, "place", {"cell": 0})
    # ann's next update is corrupted: she asks for a snapshot and, before it arrives, acts.
    [dropped] = h.table.submit_nowait([PlayerAction("bob", "$system", 3, 2, "$disconnect")])
    assert dropped.ok  # version 3: a change ann has not seen yet
    server_a.update(h.table.sync(server_a.version, player_id="ann"))
    [data] = server_a.data_to_send()
    m = decode_server(data)
    assert isinstance(m, Update)
    [event] = ann.receive(encode(Update(m.base_version, m.version, m.epoch, b"\x01" * 16, m.delta)))
    assert isinstance(event, Desynced)
    seq = ann.act("place", {"cell": 8})
    resync_and_act = ann.data_to_send()
    assert len(resync_and_act) == 2  # Resync, then the Act, in that order
    h.to_server(server_a, ann, resync_and_act)
    [result] = [e for e in h.events[id(ann)] if isinstance(e, ActionResult) and e.seq == seq]
    assert result.ok and not result.duplicate and h.table.version == 4
    in_sync(h, ann)
    assert ann.authoritative is not None and ann.authoritative["game"]["board"][8] is not None
    assert ann.stats["desyncs"] == 1 and ann.pending == {}
