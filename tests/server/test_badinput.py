"""A bad-input campaign against a live server (real sockets, real SQLite): malformed,
oversized, replayed and forged messages. The server stays up, answers every message, the
table does not change, and no hidden value reaches a connection.

The suite sends 3,000 messages; the long run is the same test with more:

    STATESYNC_BADINPUT_MESSAGES=100000 .venv/bin/python -m pytest tests/server/test_badinput.py -s
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING

import msgspec

from statesync.client import connect
from statesync.games.holdem import Holdem, legal_actions
from statesync.protocol.messages import Act, encode
from statesync.server.auth import TokenSigner
from statesync.server.ws import Server
from statesync.store import SQLiteStore
from statesync.testing.badinput import BadInputReport, campaign

if TYPE_CHECKING:
    from pathlib import Path

    from statesync.client import Table

SIGNER = TokenSigner(b"bad-input-secret-0123456789")
MESSAGES = int(os.environ.get("STATESYNC_BADINPUT_MESSAGES", "3000"))


async def test_bad_input_changes_nothing_and_leaks_nothing(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "bad.db")
    server = Server(Holdem(), store, SIGNER)
    await server.start("127.0.0.1", 0)
    tables: dict[str, Table] = {}
    now = time.time()
    try:
        tokens = {p: SIGNER.issue("t1", p, ttl=3600, now=now) for p in ("ann", "bob", "cid")}
        for p, tok in tokens.items():
            tables[p] = await connect(server.url, tok, client_id=f"{p}-c")
        # A few real actions, whose Act messages the campaign will replay.
        replays = []
        for _ in range(6):
            actor = server.tables["t1"]
            turn = actor.sync.state["game"]["turn"]
            kind, payload = next(
                c for c in legal_actions(actor.sync.state, turn) if c[0] in ("call", "check")
            )
            result = await tables[turn].act(kind, payload)
            assert result.ok
            act = encode(Act(result.seq, result.version - 1, kind, payload))
            replays.append((tokens[turn], f"{turn}-c", act))
        actor = server.tables["t1"]
        before = (actor.sync.version, actor.sync.hash)
        game = Holdem()
        hidden = set(game.hidden_values(actor.sync.state, "ann"))
        hidden &= set(game.hidden_values(actor.sync.state, "bob"))  # hidden from both
        hidden &= set(game.hidden_values(actor.sync.state, "cid"))
        forbidden = [msgspec.msgpack.encode(card) for card in sorted(hidden)]
        assert len(forbidden) > 40  # the deck, at least
        spectator = SIGNER.issue("t1", None, ttl=3600, now=now)
        seen: list[BadInputReport] = []
        report = await asyncio.wait_for(
            campaign(
                server.url,
                spectator,
                MESSAGES,
                seed=2026,
                limit=server.limits.max_message_bytes,
                forbidden=forbidden,
                replays=replays,
                progress=seen.append,
            ),
            timeout=600,
        )
        print(
            f"\n{report.messages:,} bad messages over {report.connections:,} connections; "
            f"codes {dict(report.codes.most_common(8))}; closes {dict(report.closes)}"
        )
        assert report.problems == []
        assert report.messages >= MESSAGES
        assert report.codes["protocol/malformed"] > 0 and report.codes["protocol/too_large"] > 0
        assert report.codes["protocol/not_binary"] > 0
        assert sum(c for k, c in report.codes.items() if k.startswith("auth/")) > 0
        assert report.codes["ok"] > 0  # replays answered (as duplicates)
        # Nothing changed, and the server still serves: a real action goes through.
        assert (actor.sync.version, actor.sync.hash) == before
        turn = actor.sync.state["game"]["turn"]
        kind, payload = next(
            c for c in legal_actions(actor.sync.state, turn) if c[0] in ("call", "check")
        )
        result = await tables[turn].act(kind, payload)
        assert result.ok and result.version == before[0] + 1
    finally:
        for t in tables.values():
            await t.close()
        await server.stop()
        await store.close()
