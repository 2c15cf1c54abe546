"""End to end with the public pieces only: ``Server`` on SQLite, ``statesync.client.connect``
clients, a server restart in the middle of a game. Every acknowledged action must be in the
store exactly once, and every client must end holding the server's view."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from statesync.client import Backoff, connect
from statesync.games.holdem import Holdem, legal_actions
from statesync.server.auth import TokenSigner
from statesync.server.ws import Server
from statesync.store import SQLiteStore

if TYPE_CHECKING:
    from pathlib import Path

    from statesync.client import Table
    from statesync.records import LogRecord

SIGNER = TokenSigner(b"e2e-secret-0123456789")
PLAYERS = ["ann", "bob", "cid"]


async def read_log(db: Path, table: str, start: int = 1) -> list[LogRecord]:
    store = await SQLiteStore.open(db)
    try:
        return await store.read_log(table, start, 10**9)
    finally:
        await store.close()


async def start_server(db: Path, port: int = 0, **kw: Any) -> tuple[Server, SQLiteStore]:
    store = await SQLiteStore.open(db)
    server = Server(Holdem(), store, SIGNER, game_ref="statesync.games.holdem:Holdem", **kw)
    await server.start("127.0.0.1", port)
    return server, store


async def connect_all(server: Server, table: str, tables: dict[str, Table]) -> None:
    """Connect every player of :data:`PLAYERS` to ``table`` into ``tables``."""
    for name in PLAYERS:
        tok = SIGNER.issue(table, name, ttl=600, now=time.time())
        tables[name] = await connect(
            server.url, tok, client_id=f"{name}-{table}", backoff=Backoff(initial=0.01)
        )


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
    server, store = await start_server(db)
    port = server.port
    acked: list[tuple[str, int, int]] = []
    tables: dict[str, Table] = {}
    try:
        await connect_all(server, "t1", tables)
        await asyncio.gather(*(play(n, tables[n], acked, 25) for n in PLAYERS))
        before = len(acked)
        assert before > 5
        # Restart: a new server process would do the same, on the same file and port.
        await server.stop()
        await store.close()
        server, store = await start_server(db, port)
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
    log = await read_log(db, "t1")
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
    hand goes on. ann and bob, back in time, keep their seats untouched: no version is written
    for them."""
    db = tmp_path / "absent.db"
    server, store = await start_server(db)
    port = server.port
    tables: dict[str, Table] = {}
    try:
        await connect_all(server, "t2", tables)
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

        server, store = await start_server(db, port, reconnect_grace=0.2)
        ann = tables["ann"]
        state = await ann.wait_for(lambda s: not s["seats"]["cid"]["connected"], timeout=10)
        assert state["game"]["turn"] != "cid"  # folded on the disconnect
        assert state["seats"]["ann"]["connected"] and state["seats"]["bob"]["connected"]
    finally:
        for table in tables.values():
            await table.close()
        await server.stop()
        await store.close()
    log = await read_log(db, "t2", stopped_at + 1)
    system = [(r.action.type, r.action.player_id) for r in log if r.action]
    # cid's release, then ann's and bob's disconnects as they closed at the end: back in time,
    # they kept their seats as they were (no $connect, no version at all).
    assert system[0] == ("$disconnect", "cid")
    assert sorted(system[1:]) == [("$disconnect", "ann"), ("$disconnect", "bob")]
