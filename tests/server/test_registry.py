"""TableRegistry: one actor per table, presence counting, and unloading idle tables."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from statesync.actions import PlayerAction
from statesync.errors import StoreError
from statesync.games import TicTacToe
from statesync.server.metrics import Metrics
from statesync.server.registry import TableRegistry
from statesync.store import MemoryStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def registry(
    store: MemoryStore, clock: Clock, idle: float | None = 60.0, grace: float = 10.0
) -> TableRegistry:
    return TableRegistry(
        TicTacToe(),
        store,
        clock=clock,
        metrics=Metrics(),
        idle_unload=idle,
        reconnect_grace=grace,
    )


async def test_concurrent_first_opens_share_one_actor() -> None:
    reg = registry(MemoryStore(), Clock())
    a, b = await asyncio.gather(reg.get("t"), reg.get("t"))
    assert a is b and list(reg.tables) == ["t"]
    await reg.close()


async def test_an_idle_table_is_unloaded_and_comes_back_from_the_store() -> None:
    store, clock = MemoryStore(), Clock()
    reg = registry(store, clock)
    actor = await reg.get("t")
    assert (await actor.join("alice")).ok and (await actor.join("bob")).ok
    move = PlayerAction("alice", "alice-1", 1, 2, "place", {"cell": 4})
    assert (await actor.act(move)).ok
    clock.now += 59
    assert await reg.unload_idle() == []  # not idle long enough
    clock.now += 2
    assert await reg.unload_idle() == ["t"]
    assert reg.tables == {} and not actor.running
    assert reg.metrics.render().count("statesync_tables 0") == 1
    again = await reg.get("t")  # the next connection loads it from the store
    assert again is not actor
    assert again.sync.version == 3 and again.sync.state["game"]["board"][4] == "X"
    await reg.close()


async def test_a_table_in_use_is_never_unloaded() -> None:
    clock = Clock()
    reg = registry(MemoryStore(), clock)
    actor = await reg.get("t")
    sub = actor.subscribe(None, send=lambda update: True)  # a spectator
    clock.now += 1000
    assert await reg.unload_idle() == []
    sub.close()
    reg.attach("t", "alice")  # a seated player's connection
    clock.now += 1000
    assert await reg.unload_idle() == []
    reg.detach("t", "alice")
    clock.now += 59  # idle from the last time it was seen in use
    assert await reg.unload_idle() == []
    clock.now += 1
    assert await reg.unload_idle() == ["t"]
    await reg.close()


async def test_a_get_during_the_unload_waits_and_gets_a_fresh_actor() -> None:
    clock = Clock()
    reg = registry(MemoryStore(), clock)
    old = await reg.get("t")
    clock.now += 61
    unloading = asyncio.ensure_future(reg.unload_idle())
    await asyncio.sleep(0)  # the unload holds the table's lock now
    fresh = await reg.get("t")
    assert await unloading == ["t"]
    assert fresh is not old and fresh.running and not old.running
    await reg.close()


async def test_unloading_can_be_turned_off_and_is_validated() -> None:
    clock = Clock()
    reg = registry(MemoryStore(), clock, idle=None)
    await reg.get("t")
    clock.now += 10**6
    assert await reg.unload_idle() == []
    assert list(reg.tables) == ["t"]
    await reg.close()
    with pytest.raises(ValueError, match="idle_unload"):
        registry(MemoryStore(), clock, idle=0)


# ---------------------------------------------------------------------- presumed absent


async def left_connected(store: MemoryStore, clock: Clock) -> int:
    """Seat alice and bob, then stop without either disconnecting (as a crash or a restart
    leaves a table): both seats stay marked connected. Returns the table's version."""
    reg = registry(store, clock)
    actor = await reg.get("t")
    assert (await actor.join("alice")).ok and (await actor.join("bob")).ok
    version = actor.sync.version
    await reg.close()
    return version


async def reloaded(
    grace: float = 10, idle: float | None = 60.0
) -> tuple[TableRegistry, Clock, int]:
    """A new registry with table ``t`` loaded after :func:`left_connected`; its version then."""
    store, clock = MemoryStore(), Clock()
    version = await left_connected(store, clock)
    reg = registry(store, clock, idle=idle, grace=grace)
    await reg.get("t")
    return reg, clock, version


def connected(reg: TableRegistry) -> dict[str, bool]:
    return {p: seat["connected"] for p, seat in reg.tables["t"].sync.state["seats"].items()}


async def test_a_player_not_back_within_the_grace_is_marked_disconnected() -> None:
    reg, clock, version = await reloaded()
    assert connected(reg) == {"alice": True, "bob": True}
    assert reg.metrics.value("seats_away") == 2
    clock.now += 5
    assert not reg.attach("t", "alice")  # back in time: her seat stays as it is
    assert reg.metrics.value("seats_away") == 1
    clock.now += 4.9
    assert await reg.release_absent() == []
    clock.now += 0.1
    assert await reg.release_absent() == [("t", "bob")]
    assert connected(reg) == {"alice": True, "bob": False}
    assert reg.tables["t"].sync.version == version + 1  # one $disconnect, for bob only
    assert reg.metrics.value("seats_away") == 0
    assert reg.metrics.value("seats_released_total") == 1
    clock.now += 100
    assert await reg.release_absent() == []  # once
    assert reg.tables["t"].sync.version == version + 1
    assert reg.attach("t", "bob")  # bob, late: his seat is to be marked connected again
    await reg.close()


async def test_a_player_back_and_gone_again_gets_a_new_grace_from_the_drop() -> None:
    reg, clock, version = await reloaded()
    actor = reg.tables["t"]
    clock.now += 5
    assert not reg.attach("t", "bob")  # back in time
    assert reg.detach("t", "bob")  # ... and gone again, without a Bye
    assert not reg.away("t", "bob")  # the seat waits: nothing to write now
    clock.now += 5
    assert await reg.release_absent() == [("t", "alice")]  # her grace began at the load
    clock.now += 4.9
    assert await reg.release_absent() == []
    clock.now += 0.1
    assert await reg.release_absent() == [("t", "bob")]  # his, at the drop
    assert connected(reg) == {"alice": False, "bob": False}
    assert actor.sync.version == version + 2
    await reg.close()


async def test_a_dropped_player_back_within_the_grace_costs_no_version() -> None:
    clock = Clock()
    reg = registry(MemoryStore(), clock, grace=10)
    actor = await reg.get("t")
    assert reg.attach("t", "alice") and reg.attach("t", "bob")  # new: mark them connected
    assert (await actor.join("alice")).ok and (await actor.join("bob")).ok
    version = actor.sync.version
    for _ in range(3):  # three blips
        assert reg.detach("t", "bob")
        assert not reg.away("t", "bob")
        assert reg.metrics.value("seats_away") == 1
        clock.now += 9
        assert not reg.attach("t", "bob")  # back in time: the seat is as it was
        assert reg.metrics.value("seats_away") == 0
        assert await reg.release_absent() == []
    clock.now += 100
    assert await reg.release_absent() == []
    assert connected(reg) == {"alice": True, "bob": True}
    assert actor.sync.version == version
    await reg.close()


async def test_a_player_attaching_as_the_grace_ends_keeps_the_seat() -> None:
    reg, clock, version = await reloaded()
    actor = reg.tables["t"]
    reg.attach("t", "alice")
    clock.now += 10
    releasing = asyncio.ensure_future(reg.release_absent())
    await asyncio.sleep(0)  # the release has chosen bob, but not yet queued his $disconnect
    assert reg.attach("t", "bob")  # ... when bob's connection arrives: connect him again
    reconnect = asyncio.ensure_future(actor.set_connected("bob", True))
    assert await releasing == []
    assert (await reconnect).ok
    assert connected(reg) == {"alice": True, "bob": True}
    assert actor.sync.version == version + 1  # bob's (no-op) $connect, no $disconnect
    await reg.close()


async def test_with_no_grace_a_drop_disconnects_at_once_and_a_load_on_the_next_call() -> None:
    reg, clock, version = await reloaded(grace=0)
    assert await reg.release_absent() == [("t", "alice"), ("t", "bob")]
    assert reg.tables["t"].sync.version == version + 2
    assert reg.attach("t", "bob")  # his seat is to be marked connected again
    assert reg.detach("t", "bob")
    assert reg.away("t", "bob")  # mark it disconnected now: there is no grace
    clock.now += 10**6
    assert await reg.release_absent() == []
    await reg.close()
    with pytest.raises(ValueError, match="reconnect_grace"):
        registry(MemoryStore(), clock, grace=-1)


async def test_an_unloaded_table_forgets_its_absent_players() -> None:
    store, clock = MemoryStore(), Clock()
    version = await left_connected(store, clock)
    reg = registry(store, clock, idle=5, grace=10)
    await reg.get("t")
    clock.now += 6
    assert await reg.unload_idle() == ["t"]
    clock.now += 10
    assert await reg.release_absent() == []  # nothing loaded, nothing written
    actor = await reg.get("t")  # loaded again: a new grace from now
    assert actor.sync.version == version
    clock.now += 10
    assert await reg.release_absent() == [("t", "alice"), ("t", "bob")]
    await reg.close()


class FlakyStore:
    """A store whose next ``fail`` appends raise (the store is down), then work again."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner
        self.fail = 0

    async def append(self, *args: Any, **kw: Any) -> None:
        if self.fail:
            self.fail -= 1
            raise StoreError("the store is down")
        await self.inner.append(*args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_release_the_store_refuses_is_tried_again() -> None:
    store, clock = MemoryStore(), Clock()
    version = await left_connected(store, clock)
    flaky = FlakyStore(store)
    reg = TableRegistry(
        TicTacToe(),
        flaky,
        clock=clock,
        metrics=Metrics(),
        reconnect_grace=10,  # type: ignore[arg-type]
    )
    actor = await reg.get("t")
    reg.attach("t", "alice")
    clock.now += 10
    flaky.fail = 1
    assert await reg.release_absent() == []  # refused: the store is down
    assert connected(reg) == {"alice": True, "bob": True}
    assert await reg.release_absent() == [("t", "bob")]  # the next tick
    assert connected(reg) == {"alice": True, "bob": False}
    assert actor.sync.version == version + 1
    assert await reg.release_absent() == []
    await reg.close()
