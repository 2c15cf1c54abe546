"""``statesync demo``: a real server and bot players over WebSockets on loopback.

    statesync demo [--players N] [--hands N] [--seed S] [--db PATH_OR_URL] [--drop-rate P]

Starts a :class:`~statesync.server.ws.Server` on a durable store (the SQLite file
``statesync.db`` by default) with the hold'em example, and connects one bot per player with
the Python client (:func:`statesync.client.connect`), each with its own signed token. Bots
play legal actions when it is their turn; now and then a bot's connection is dropped on
purpose (``--drop-rate``), and the client reconnects by itself, resumes by delta and re-sends
what was unanswered. A live line shows versions, actions per second, bytes received,
reconnects and desyncs; the summary checks that every client's view equals the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from statesync.cli.demo import new_table_id, pick
from statesync.client import connect
from statesync.games.holdem import Holdem, legal_actions
from statesync.rng import Rng
from statesync.server.auth import TokenSigner
from statesync.server.ws import Server

if TYPE_CHECKING:
    from statesync.client import Table
    from statesync.storage import Store

GAME_REF = "statesync.games.holdem:Holdem"


@dataclass
class DemoReport:
    """What the demo measured; ``ok`` when every client ended in sync and nothing desynced."""

    table_id: str = ""
    versions: int = 0
    actions: int = 0
    refused: int = 0
    reconnects: int = 0
    drops: int = 0
    desyncs: int = 0
    bytes_received: int = 0
    seconds: float = 0.0
    mismatched: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.desyncs == 0 and not self.mismatched


async def run_net_demo(
    players: int,
    hands: int,
    seed: int,
    store: Store,
    *,
    drop_rate: float = 0.02,
    out: TextIO | None = None,
) -> DemoReport:
    """Play ``hands`` hands with ``players`` bots over real WebSockets; see the module doc."""
    out = sys.stdout if out is None else out
    report = DemoReport()
    report.table_id = await new_table_id(store)
    signer = TokenSigner(secrets.token_bytes(32))
    names = [f"bot{i}" for i in range(players)]
    server = Server(Holdem(), store, signer, game_ref=GAME_REF)
    await server.start("127.0.0.1", 0)
    url = server.url
    print(f"server on {url}, table {report.table_id}, {players} bots", file=out)
    start = time.perf_counter()
    tables: dict[str, Table] = {}
    try:
        for name in names:
            token = signer.issue(report.table_id, name, ttl=3600, now=time.time())
            tables[name] = await connect(url, token, client_id=f"{name}-{seed}")
        done = asyncio.Event()
        progress = asyncio.create_task(_progress(server, report, tables, start, done, out))
        try:
            await asyncio.gather(
                *(
                    _bot(
                        name, tables[name], hands, Rng.derive(seed, "demo", name), drop_rate, report
                    )
                    for name in names
                )
            )
        finally:
            done.set()
            await progress
        actor = server.tables[report.table_id]
        final = actor.sync.version
        for name, table in tables.items():
            await asyncio.wait_for(_caught_up(table, final), 10)
            if table.authoritative != actor.sync.view(name):
                report.mismatched.append(name)
        report.versions = actor.sync.version
    finally:
        for table in tables.values():
            stats = table.stats
            report.reconnects += stats.get("reconnects", 0)
            report.desyncs += stats.get("desyncs", 0)
            report.bytes_received += stats.get("bytes", 0)
            with contextlib.suppress(Exception):
                await table.close()
        await server.stop()
    report.seconds = time.perf_counter() - start
    _line(report, server_version=report.versions, out=out)
    print(file=out)
    in_sync = "all" if not report.mismatched else "NOT " + ", ".join(report.mismatched)
    print(
        f"done: table {report.table_id}, {report.versions} versions, {report.actions} actions "
        f"({report.actions / max(report.seconds, 1e-9):,.0f}/s) over WebSockets, "
        f"{report.bytes_received:,} bytes to {players} clients, {report.drops} dropped "
        f"connections, {report.reconnects} reconnects, desyncs={report.desyncs}, "
        f"clients in sync: {in_sync}",
        file=out,
    )
    print(
        f"inspect it with: statesync history {report.table_id}; statesync replay {report.table_id}",
        file=out,
    )
    return report


async def _bot(
    name: str, table: Table, hands: int, rng: Rng, drop_rate: float, report: DemoReport
) -> None:
    while True:
        await table.wait_for(lambda s: _done(s, hands) or s["game"]["turn"] == name)
        state = table.authoritative
        assert state is not None
        if _done(state, hands):
            return
        choices = legal_actions(state, name)
        if not choices:
            await asyncio.sleep(0)
            continue
        kind, payload = pick(rng, choices)
        if rng.random() < drop_rate:
            report.drops += 1
            await table.drop()  # a network failure: the client reconnects by itself
        result = await table.act(kind, payload)
        report.actions += 1
        report.refused += not result.ok


async def _caught_up(table: Table, version: int) -> None:
    await table.wait_for(lambda _state: table.version >= version)


def _done(state: dict[str, Any] | None, hands: int) -> bool:
    if state is None:
        return False
    g = state["game"]
    return bool(g["winner"] is not None or g["hand"] > hands)


async def _progress(
    server: Server,
    report: DemoReport,
    tables: dict[str, Table],
    start: float,
    done: asyncio.Event,
    out: TextIO,
) -> None:
    while not done.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 0.25)
        actor = server.tables.get(report.table_id)
        live = DemoReport(
            actions=report.actions,
            drops=report.drops,
            reconnects=sum(t.stats.get("reconnects", 0) for t in tables.values()),
            desyncs=sum(t.stats.get("desyncs", 0) for t in tables.values()),
            bytes_received=sum(t.stats.get("bytes", 0) for t in tables.values()),
            seconds=time.perf_counter() - start,
        )
        _line(live, server_version=actor.sync.version if actor else 0, out=out)


def _line(r: DemoReport, *, server_version: int, out: TextIO) -> None:
    print(
        f"\rversion {server_version:>6}  {r.actions / max(r.seconds, 1e-9):>7,.0f} actions/s  "
        f"{r.bytes_received:>10,} bytes  reconnects {r.reconnects:>3}  desyncs {r.desyncs}",
        end="",
        file=out,
        flush=True,
    )
