"""statesync.server.runner: the event loop a server runs on (uvloop where installed)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import statesync.client
from statesync.games import TicTacToe
from statesync.server.auth import TokenSigner
from statesync.server.runner import loop_name, run
from statesync.server.ws import Server
from statesync.store import SQLiteStore

SIGNER = TokenSigner(b"r" * 32)


async def loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_by_default_and_asyncio_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATESYNC_EVENT_LOOP", raising=False)
    assert loop_name() == "uvloop"  # a dependency on this platform
    assert run(loop_module()).startswith("uvloop")
    monkeypatch.setenv("STATESYNC_EVENT_LOOP", "asyncio")
    assert loop_name() == "asyncio"
    assert run(loop_module()).startswith("asyncio")
    monkeypatch.setenv("STATESYNC_EVENT_LOOP", "tokio")
    coro = loop_module()
    with pytest.raises(ValueError, match="auto, uvloop or asyncio"):
        run(coro)
    assert coro.cr_frame is None  # closed, not left "never awaited"


def test_a_game_is_played_through_the_server_on_uvloop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's transport code (frames written directly, messages handed over as they
    are parsed, bounded reads) on uvloop's transports rather than asyncio's."""
    monkeypatch.delenv("STATESYNC_EVENT_LOOP", raising=False)

    async def main() -> tuple[str, int]:
        store = await SQLiteStore.open(tmp_path / "uv.db")
        server = Server(TicTacToe(), store, SIGNER)
        await server.start(port=0)
        try:
            now = time.time()
            tokens = [SIGNER.issue("uv", p, ttl=60, now=now) for p in ("ann", "bob")]
            async with (
                statesync.client.connect(server.url, tokens[0]) as ann,
                statesync.client.connect(server.url, tokens[1]) as bob,
            ):
                await ann.wait_for(lambda s: s["game"]["status"] == "playing")
                for player, cell in ((ann, 0), (bob, 3), (ann, 1), (bob, 4), (ann, 2)):
                    assert (await player.act("place", {"cell": cell})).ok
                sync = server.tables["uv"].sync
                for player, name in ((ann, "ann"), (bob, "bob")):
                    await player.wait_for(lambda s: s["game"]["status"] == "won")
                    await player.wait_for(lambda s, p=player: p.version == sync.version)
                    assert player.authoritative == sync.view(name)
                    assert player.stats["desyncs"] == 0
                return await loop_module(), sync.version
        finally:
            await server.stop()
            await store.close()

    module, version = run(main())
    assert module.startswith("uvloop") and version >= 7  # two joins, five moves
