"""The client SDK against a real WebSocket server (tests/client/fakeserver.py) running the
protocol's ServerSession in front of one StateSynchronizer."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

import pytest

import statesync.client
from statesync.client import (
    ActionResult,
    Backoff,
    ClientClosedError,
    ConnectTimeoutError,
    ServerRefusedError,
    Table,
)
from statesync.games.tictactoe import TicTacToe
from statesync.protocol.messages import Bye, Hello, Ping, Result
from tests.client.fakeserver import FakeServer

TIMEOUT = 5.0


def open_table(server: FakeServer, token: str = "tok-ann", **kw: Any) -> Any:
    kw.setdefault("backoff", Backoff(initial=0.01, maximum=0.05, rng=random.Random(0)))
    kw.setdefault("open_timeout", TIMEOUT)
    return statesync.client.connect(server.url, token, **kw)


async def until(condition: Callable[[], object]) -> None:
    """Poll a plain attribute of the client or the server (no event to wait on)."""
    async with asyncio.timeout(TIMEOUT):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.001)


def in_sync(server: FakeServer, table: Table) -> None:
    assert table.authoritative == server.table.view(table.player)
    assert table.version == server.table.version


async def test_connect_gives_the_current_view(server: FakeServer) -> None:
    async with open_table(server, client_id="ann-1") as ann:
        assert ann.player == "ann" and ann.table_id == "t1" and ann.client_id == "ann-1"
        assert ann.connected and not ann.closed
        assert ann.version == 0 and ann.state == ann.authoritative
        in_sync(server, ann)
        assert ann.stats == {
            "desyncs": 0,
            "resyncs": 0,
            "snapshots": 1,
            "updates": 0,
            "bytes": ann.stats["bytes"],
            "reconnects": 0,
        }
        assert ann.stats["bytes"] > 0
    assert ann.closed and not ann.connected


async def test_client_id_defaults_to_a_random_fixed_one(server: FakeServer) -> None:
    a, b = Table(server.url, "tok-ann"), Table(server.url, "tok-ann")
    assert len(a.client_id) == 32 and a.client_id != b.client_id
    with pytest.raises(ValueError, match="client_id"):
        Table(server.url, "tok-ann", client_id="$system")


async def test_act_returns_the_outcome_and_the_state_shows_it(server: FakeServer) -> None:
    async with open_table(server) as ann:
        outcome = await asyncio.wait_for(ann.act("place", {"cell": 4}), TIMEOUT)
        assert isinstance(outcome, ActionResult)
        assert (outcome.ok, outcome.version, outcome.duplicate) == (True, 1, False)
        assert ann.authoritative is not None and ann.authoritative["game"]["board"][4] == "X"
        in_sync(server, ann)
        refused = await asyncio.wait_for(ann.act("place", {"cell": 0}), TIMEOUT)
        assert not refused.ok and refused.code == "action/not_your_turn"
        assert refused.version == 1 and ann.pending == 0


async def test_two_clients_play_concurrently_and_stay_in_sync(server: FakeServer) -> None:
    moves = {"ann": [4, 0, 8], "bob": [1, 2]}

    async def play(table: Table) -> list[ActionResult]:
        outcomes = []
        assert table.player is not None
        for cell in moves[table.player]:
            await table.wait_for(lambda s: s["game"]["turn"] == table.player, TIMEOUT)
            outcomes.append(await asyncio.wait_for(table.act("place", {"cell": cell}), TIMEOUT))
        return outcomes

    async with open_table(server) as ann, open_table(server, "tok-bob") as bob:
        async with open_table(server, "tok-spec") as spec:
            ann_out, bob_out = await asyncio.gather(play(ann), play(bob))
            assert all(o.ok for o in ann_out + bob_out)
            assert sorted(o.version for o in ann_out + bob_out) == [1, 2, 3, 4, 5]
            await spec.wait_for(lambda s: s["game"]["status"] != "playing", TIMEOUT)
            for table in (ann, bob, spec):
                await table.wait_for(lambda s: s["game"]["moves"] == 5, TIMEOUT)
                in_sync(server, table)
                assert table.stats["desyncs"] == 0
            assert spec.player is None and spec.authoritative is not None
            assert spec.authoritative["game"]["winner"] == "ann"


async def test_prediction_shows_the_move_before_the_result(server: FakeServer) -> None:
    async with open_table(server, game=TicTacToe()) as ann:
        server.actions_gate.clear()  # the server holds actions
        task = asyncio.create_task(ann.act("place", {"cell": 4}))
        await until(lambda: ann.pending == 1)
        assert ann.state is not None and ann.authoritative is not None
        assert ann.state["game"]["board"][4] == "X" and ann.state["game"]["turn"] == "bob"
        assert ann.authoritative["game"]["board"][4] is None and ann.version == 0
        server.actions_gate.set()
        outcome = await asyncio.wait_for(task, TIMEOUT)
        assert outcome.ok and ann.state == ann.authoritative == server.table.view("ann")


async def test_on_change_and_updates(server: FakeServer) -> None:
    async with open_table(server) as ann, open_table(server, "tok-bob") as bob:
        seen: list[int] = []
        unsubscribe = ann.on_change(seen.append)
        updates = ann.updates()
        lagging = ann.updates(maxsize=1)
        await asyncio.wait_for(ann.act("place", {"cell": 4}), TIMEOUT)
        await asyncio.wait_for(bob.act("place", {"cell": 0}), TIMEOUT)
        await ann.wait_for(lambda s: s["game"]["moves"] == 2, TIMEOUT)
        assert seen == [1, 2]
        assert [await asyncio.wait_for(anext(updates), TIMEOUT) for _ in range(2)] == [1, 2]
        assert await asyncio.wait_for(anext(lagging), TIMEOUT) == 2  # newest wins
        assert lagging.dropped == 1
        unsubscribe()
        await asyncio.wait_for(ann.act("place", {"cell": 8}), TIMEOUT)
        assert seen == [1, 2] and await asyncio.wait_for(anext(updates), TIMEOUT) == 3
        await ann.close()
        assert [v async for v in updates] == []  # ends when closed by the user


async def test_a_failing_callback_is_logged_not_raised(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(version: int) -> None:
        raise RuntimeError("boom")

    async with open_table(server) as ann:
        ann.on_change(boom)
        with caplog.at_level(logging.ERROR, logger="statesync.client.table"):
            assert (await asyncio.wait_for(ann.act("place", {"cell": 4}), TIMEOUT)).ok
        assert "on_change callback" in caplog.text and ann.connected


@pytest.mark.parametrize("how", ["shutdown", "abort"])
async def test_reconnect_resumes_by_delta_and_an_act_in_flight_completes_once(
    server: FakeServer, how: str
) -> None:
    async with open_table(server, client_id="ann-1") as ann, open_table(server, "tok-bob") as bob:
        await asyncio.wait_for(ann.act("place", {"cell": 4}), TIMEOUT)
        await asyncio.wait_for(bob.act("place", {"cell": 0}), TIMEOUT)
        versions: list[int] = []
        ann.on_change(versions.append)
        # ann's next action takes effect, but its Result is lost, and the connection drops.
        server.drop_next(lambda link, m: link.client_id == "ann-1" and isinstance(m, Result))
        in_flight = asyncio.create_task(ann.act("place", {"cell": 8}))
        await asyncio.wait_for(server.dropped.wait(), TIMEOUT)
        server.accepting = False
        await server.kill("ann-1", how=how)
        await until(lambda: not ann.connected)
        assert not in_flight.done() and ann.pending == 1
        # The table moves on while ann is away.
        await bob.wait_for(lambda s: s["game"]["turn"] == "bob", TIMEOUT)
        assert (await asyncio.wait_for(bob.act("place", {"cell": 1}), TIMEOUT)).ok
        server.accepting = True
        outcome = await asyncio.wait_for(in_flight, TIMEOUT)  # ann comes back by herself
        assert outcome.ok and outcome.duplicate and outcome.version == 3
        await ann.wait_for(lambda s: s["game"]["moves"] == 4, TIMEOUT)
        in_sync(server, ann)
        assert ann.authoritative is not None
        board = ann.authoritative["game"]["board"]
        assert board.count("X") == 2 and server.table.version == 4  # took effect once
        assert ann.connected and ann.pending == 0
        stats = ann.stats
        assert stats["reconnects"] == 1 and stats["snapshots"] == 1  # resumed by a delta
        assert versions[-1] == 4 and stats["updates"] == 4
        hellos = [m for cid, m in server.received if isinstance(m, Hello)]
        assert [h.client_id for h in hellos].count("ann-1") == 2
        assert hellos[-1].version == 3  # the reconnect said what it held
        assert bob.stats["reconnects"] == 0


async def test_a_client_waits_for_the_server_to_come_back(server: FakeServer) -> None:
    async with open_table(server) as ann:
        server.accepting = False
        await server.kill()  # server/shutdown: keep retrying
        await until(lambda: not ann.connected)
        before = server.connections
        await asyncio.sleep(0.05)  # a few refused attempts
        assert server.connections == before and not ann.closed
        server.accepting = True
        await until(lambda: ann.connected)
        assert ann.stats["reconnects"] == 1
        assert (await asyncio.wait_for(ann.act("place", {"cell": 4}), TIMEOUT)).ok


async def test_a_bad_token_is_fatal_and_not_retried(server: FakeServer) -> None:
    with pytest.raises(ServerRefusedError) as info:
        await asyncio.wait_for(open_table(server, "forged"), TIMEOUT)
    assert info.value.code == "auth/bad_signature" and "unknown token" in str(info.value)
    assert isinstance(info.value, ClientClosedError)
    assert server.connections == 1


async def test_a_revoked_token_stops_the_client_and_fails_what_waits(server: FakeServer) -> None:
    ann = await open_table(server, client_id="ann-1")
    updates = ann.updates()
    server.drop_next(lambda link, m: isinstance(m, Result))
    in_flight = asyncio.create_task(ann.act("place", {"cell": 4}))
    waiting = asyncio.create_task(ann.wait_for(lambda s: s["game"]["moves"] == 9))
    await asyncio.wait_for(server.dropped.wait(), TIMEOUT)
    del server.tokens["tok-ann"]  # e.g. the token expired
    await server.kill("ann-1")
    with pytest.raises(ServerRefusedError, match="auth/bad_signature"):
        await asyncio.wait_for(in_flight, TIMEOUT)
    with pytest.raises(ServerRefusedError):
        await asyncio.wait_for(waiting, TIMEOUT)
    got: list[int] = []

    async def collect() -> None:
        async for version in updates:
            got.append(version)

    with pytest.raises(ServerRefusedError):
        await asyncio.wait_for(collect(), TIMEOUT)
    assert got == [1]  # what arrived before is delivered first
    assert ann.closed and server.connections == 2  # no further attempt
    with pytest.raises(ServerRefusedError):
        await ann.act("place", {"cell": 0})
    await ann.close()


async def test_a_corrupted_update_is_counted_and_healed(server: FakeServer) -> None:
    async with open_table(server) as ann, open_table(server, "tok-bob", client_id="bob-1") as bob:
        server.corrupt_next_update("bob-1")
        assert (await asyncio.wait_for(ann.act("place", {"cell": 4}), TIMEOUT)).ok
        await bob.wait_for(lambda s: s["game"]["board"][4] == "X", TIMEOUT)
        in_sync(server, bob)
        assert bob.stats["desyncs"] == 1 and bob.stats["resyncs"] == 1
        assert bob.stats["snapshots"] == 2 and bob.stats["updates"] == 0
        assert (await asyncio.wait_for(bob.act("place", {"cell": 0}), TIMEOUT)).ok
        in_sync(server, bob)
        assert ann.stats["desyncs"] == 0


async def test_close_with_leave_sends_bye(server: FakeServer) -> None:
    async with open_table(server, client_id="ann-1") as ann:
        server.drop_next(lambda link, m: isinstance(m, Result))
        in_flight = asyncio.create_task(ann.act("place", {"cell": 4}))
        await asyncio.wait_for(server.dropped.wait(), TIMEOUT)
        await ann.close(leave=True)
        with pytest.raises(ClientClosedError):
            await asyncio.wait_for(in_flight, TIMEOUT)
        with pytest.raises(ClientClosedError):
            await ann.act("place", {"cell": 4})
        await ann.close()  # idempotent
    await until(lambda: server.closings)
    [(client_id, closing)] = server.closings
    assert client_id == "ann-1" and closing.leave
    assert [m for _, m in server.received if isinstance(m, Bye)] == [Bye(leave=True)]


async def test_connect_times_out_when_nobody_answers(server: FakeServer) -> None:
    server.accepting = False
    with pytest.raises(ConnectTimeoutError) as info:
        await open_table(server, open_timeout=0.1)
    assert isinstance(info.value, TimeoutError)


async def test_a_bad_payload_is_refused_before_sending(server: FakeServer) -> None:
    async with open_table(server) as ann:
        with pytest.raises(statesync.errors.InvalidValueError):
            await ann.act("place", {"cell": {1, 2}})
        assert ann.pending == 0


async def test_closing_while_connecting_raises_client_closed(server: FakeServer) -> None:
    server.accepting = False
    table = Table(server.url, "tok-ann", backoff=Backoff(initial=0.01, maximum=0.02))
    opening = asyncio.create_task(table.open())
    await asyncio.sleep(0.02)
    await table.close()
    with pytest.raises(ClientClosedError, match="while connecting"):
        await asyncio.wait_for(opening, TIMEOUT)


async def test_drop_simulates_a_network_failure(server: FakeServer) -> None:
    async with open_table(server) as ann:
        await ann.drop()
        assert not ann.connected and not ann.closed
        assert (await asyncio.wait_for(ann.act("place", {"cell": 4}), TIMEOUT)).ok
        assert ann.connected and ann.stats["reconnects"] == 1
        in_sync(server, ann)


async def test_a_server_that_stops_answering_is_dropped_and_reconnected(
    server: FakeServer,
) -> None:
    async with open_table(server, heartbeat=0.05) as ann:
        await asyncio.sleep(0.2)  # quiet both ways: Pings go out and are answered
        assert ann.connected and server.connections == 1
        pings = sum(isinstance(m, Ping) for _, m in server.received)
        assert pings >= 2
        server.deaf = True  # the server hangs, its socket open: the next Ping goes unanswered
        await until(lambda: server.connections >= 2)  # dropped, and reconnecting
        assert ann.stats["reconnects"] == 0  # its Hello is not answered either
        server.deaf = False
        assert (await asyncio.wait_for(ann.act("place", {"cell": 4}), TIMEOUT)).ok
        assert ann.connected and ann.stats["reconnects"] == 1
        in_sync(server, ann)


async def test_the_proxy_is_looked_up_once_and_used_on_every_connection(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The system's proxy for the URL is looked up on the first connection only (websockets
    would read the whole environment again on each reconnect) and then passed every time."""
    import statesync.client.table as module

    looked_up: list[str] = []
    used: list[object] = []
    real_connect = module.ws_connect

    def lookup(uri: Any) -> None:
        looked_up.append(uri)
        return None  # no proxy for this URL

    def connecting(*args: Any, **kw: Any) -> Any:
        used.append(kw.get("proxy", "unset"))
        return real_connect(*args, **kw)

    monkeypatch.setattr(module, "get_proxy", lookup)
    monkeypatch.setattr(module, "ws_connect", connecting)
    async with open_table(server) as ann:
        for n in (1, 2):
            await ann.drop()
            await until(lambda n=n: ann.connected and ann.stats["reconnects"] == n)
    assert len(looked_up) == 1
    assert used == [None, None, None]  # None: connect directly, do not look again
