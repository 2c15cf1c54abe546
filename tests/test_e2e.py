"""End to end with the public pieces only: ``Server`` on SQLite, ``statesync.client.connect``
clients, a server restart in the middle of a game. Every acknowledged action must be in the
store exactly once, and every client must end holding the server's view."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from statesync.client import Backoff, connect
from statesync.games.holdem import Holdem, legal_actions
from statesync.server.auth import TokenSigner
from statesync.server.ws import Server
from statesync.store import SQLiteStore

if TYPE_CHECKING:
    from pathlib import Path

    from statesync.client import Table

SIGNER = TokenSigner(b"e2e-secret-0123456789")
PLAYERS = ["ann", "bob", "cid"]


async def play(name: str, table: Table, acked: list[tuple[str, int, int]], until: int) -> None:
    """Act whenever it is ``name``'s turn until the table reaches version ``until``."""
    while table.version < until:
        state = await table.wait_for(
            lambda s: s["game"]["turn"] == name or table.version >= until, timeout=10
        )
        if table.version >= until:
            return
        choices = [c for c in legal_actions(state, name) if c[0] in ("check", "call")]
        if not choices:
            await asyncio.sleep(0.001)
            continue
        kind, payload = choices[0]
        result = await asyncio.wait_for(table.act(kind, payload), 10)
        if result.ok:
            acked.append((name, result.seq, result.version))


async def test_a_game_survives_a_server_restart(tmp_path: Path) -> None:
    db = tmp_path / "e2e.db"
    store = await SQLiteStore.open(db)
    server = Server(Holdem(), store, SIGNER, game_ref="statesync.games.holdem:Holdem")
    await server.start("127.0.0.1", 0)
    port = server.port
    acked: list[tuple[str, int, int]] = []
    tables: dict[str, Table] = {}
    try:
        for name in PLAYERS:
            tok = SIGNER.issue("t1", name, ttl=600, now=time.time())
            tables[name] = await connect(
                server.url, tok, client_id=f"{name}-e2e", backoff=Backoff(initial=0.01)
            )
        await asyncio.gather(*(play(n, tables[n], acked, 25) for n in PLAYERS))
        before = len(acked)
        assert before > 5
        # Restart: a new server process would do the same, on the same file and port.
        await server.stop()
        await store.close()
        store = await SQLiteStore.open(db)
        server = Server(Holdem(), store, SIGNER, game_ref="statesync.games.holdem:Holdem")
        await server.start("127.0.0.1", port)
        await asyncio.gather(*(play(n, tables[n], acked, 50) for n in PLAYERS))
        assert len(acked) > before
        actor = server.tables["t1"]
        final = actor.sync.version
        for name, table in tables.items():
            await table.wait_for(lambda _s, t=table: t.version >= final, timeout=10)
            assert table.authoritative == actor.sync.view(name)
            assert table.stats["desyncs"] == 0
            assert table.stats["reconnects"] >= 1
    finally:
        for table in tables.values():
            await table.close()
        await server.stop()
        await store.close()
    # Every acknowledged action is in the log once, at the version it was told.
    store = await SQLiteStore.open(db)
    try:
        log = await store.read_log("t1", 1, 10**9)
    finally:
        await store.close()
    logged: dict[tuple[str, int], list[int]] = {}
    for r in log:
        if r.action is not None and not r.action.client_id.startswith("$"):
            logged.setdefault((r.action.player_id, r.action.seq), []).append(r.version)
    for name, seq, version in acked:
        assert logged.get((name, seq)) == [version]
    assert all(len(v) == 1 for v in logged.values())


async def test_a_player_gone_with_the_old_server_is_folded_after_the_grace(
    tmp_path: Path,
) -> None:
    """A server stops with cid to act; cid never returns to the new one. The seat the table
    still marks connected is released after ``reconnect_grace``: hold'em folds cid and the
    hand goes on. ann and bob, back in time, are never marked disconnected."""
    db = tmp_path / "absent.db"
    store = await SQLiteStore.open(db)
    server = Server(Holdem(), store, SIGNER, game_ref="statesync.games.holdem:Holdem")
    await server.start("127.0.0.1", 0)
    port = server.port
    tables: dict[str, Table] = {}
    try:
        for name in PLAYERS:
            tok = SIGNER.issue("t2", name, ttl=600, now=time.time())
            tables[name] = await connect(
                server.url, tok, client_id=f"{name}-absent", backoff=Backoff(initial=0.01)
            )
        actor = server.tables["t2"]
        while (turn := actor.sync.state["game"]["turn"]) != "cid":
            table = tables[turn]
            state = await table.wait_for(lambda s, t=turn: s["game"]["turn"] == t, timeout=10)
            kind, payload = next(c for c in legal_actions(state, turn) if c[0] in ("check", "call"))
            assert (await asyncio.wait_for(table.act(kind, payload), 10)).ok
        await server.stop()
        stopped_at = actor.sync.version
        await tables.pop("cid").close()  # gone for good, and the server never heard it go
        await store.close()

        store = await SQLiteStore.open(db)
        server = Server(
            Holdem(), store, SIGNER, game_ref="statesync.games.holdem:Holdem", reconnect_grace=0.2
        )
        await server.start("127.0.0.1", port)
        ann = tables["ann"]
        state = await ann.wait_for(lambda s: not s["seats"]["cid"]["connected"], timeout=10)
        assert state["game"]["turn"] != "cid"  # folded on the disconnect
        assert state["seats"]["ann"]["connected"] and state["seats"]["bob"]["connected"]
    finally:
        for table in tables.values():
            await table.close()
        await server.stop()
        await store.close()
    store = await SQLiteStore.open(db)
    try:
        log = await store.read_log("t2", stopped_at + 1, 10**9)
    finally:
        await store.close()
    disconnects = [r.action.player_id for r in log if r.action and r.action.type == "$disconnect"]
    assert disconnects[0] == "cid"  # then ann's and bob's, as they closed at the end
    assert sorted(disconnects[1:]) == ["ann", "bob"]
