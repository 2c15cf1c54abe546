"""The deterministic simulator: its loop, its determinism, that its checks can fail, and the
seed campaign CI runs (``STATESYNC_SIM_SEEDS`` seeds per game, 1,000 by default)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest

from statesync import synchronizer
from statesync.conflict import Dedupe
from statesync.errors import ActionRejected
from statesync.protocol.messages import Error, Snapshot, encode
from statesync.sim import parse_faults, simulate
from statesync.sim.bots import GAMES
from statesync.sim.loop import GROUP, SimLoop, Stalled
from statesync.sim.oracle import LeakOracle
from statesync.sim.runner import run_seeds

SEEDS = int(os.environ.get("STATESYNC_SIM_SEEDS", "1000"))


# ---------------------------------------------------------------- the loop


def test_virtual_time_jumps_to_the_next_timer() -> None:
    loop = SimLoop()
    seen: list[float] = []

    async def main() -> None:
        await asyncio.sleep(10)
        seen.append(loop.time())
        async with asyncio.timeout(5):
            await asyncio.sleep(1)
        seen.append(loop.time())

    loop.run_until_complete(main())
    loop.close()
    assert seen == [10.0, 11.0]


def test_a_deadlock_is_reported_not_hung() -> None:
    loop = SimLoop()

    async def main() -> None:
        await loop.create_future()  # nobody will ever resolve it

    with pytest.raises(Stalled):
        loop.run_until_complete(main())
    loop.close()


def test_tasks_inherit_their_creators_group() -> None:
    loop = SimLoop()

    async def child() -> None:
        await asyncio.sleep(100)

    async def parent() -> None:
        asyncio.get_running_loop().create_task(child())
        await asyncio.sleep(100)

    async def main() -> list[str]:
        token = GROUP.set("g1")
        try:
            loop.create_task(parent())
        finally:
            GROUP.reset(token)
        loop.create_task(child())  # no group
        await asyncio.sleep(1)
        tasks = loop.tasks_of("g1")
        names = [loop.group_of(t) or "" for t in tasks]
        for t in tasks:
            t.cancel()
        await asyncio.sleep(0)
        return names

    assert loop.run_until_complete(main()) == ["g1", "g1"]
    assert loop.tasks_of("g1") == []
    for t in asyncio.all_tasks(loop):
        t.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()


# ---------------------------------------------------------------- determinism


def test_same_seed_same_run() -> None:
    a = simulate("holdem", 11, "all")
    b = simulate("holdem", 11, "all")
    assert a.fingerprint == b.fingerprint
    assert a.stats == b.stats
    assert a.problems == b.problems
    assert simulate("holdem", 12, "all").fingerprint != a.fingerprint


def test_same_seed_same_run_under_any_hash_seed() -> None:
    code = "from statesync.sim import simulate; print(simulate('arena', 5, 'all').fingerprint)"
    prints = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": str(h)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for h in (1, 2)
    }
    assert len(prints) == 1
    assert prints == {simulate("arena", 5, "all").fingerprint}


def test_faults_are_parsed_strictly() -> None:
    assert parse_faults("all") == tuple(sorted(parse_faults("all")))
    assert parse_faults(" drop , crash ") == ("crash", "drop")
    with pytest.raises(ValueError, match="unknown fault"):
        parse_faults("drop,meteor")


def test_faults_really_happen() -> None:
    """Across a few seeds, every kind of fault strikes and is recovered from."""
    c = run_seeds("holdem", range(20), parse_faults("all"), jobs=1)
    assert c.ok, [r.problems for r in c.failures]
    for counter in (
        "crashes",
        "drops",
        "partitions",
        "dup_resends",
        "store_injected",
        "reconnects",
        "client_gave_up",
        "refused",
        "answered_twice",
    ):
        assert c.stats[counter] > 0, counter
    assert c.stats["accepted"] > 100
    assert c.stats["oracle_frames"] > 1000


# ---------------------------------------------------------------- the checks can fail


def test_the_oracle_sees_a_hidden_card_in_a_snapshot() -> None:
    game = GAMES["holdem"].make()
    state: dict[str, Any] = {
        "game": {"board": [], "result": None},
        "seats": {"a": {}, "b": {}},
        "players": {"a": {"cards": ["As", "Kd"]}, "b": {"cards": ["2c", "7h"]}},
        "secret": {"deck": ["9s"]},
    }
    oracle = LeakOracle(game, lambda t, v: state, lambda t: (3, state))
    oracle.watch("w", "t", "a")
    fine = {"game": state["game"], "seats": state["seats"], "players": {"a": state["players"]["a"]}}
    oracle.check("w", encode(Snapshot(3, 0, b"\0" * 16, fine)))
    assert oracle.leaks == []
    leaky = {**fine, "players": {"a": state["players"]["a"], "b": {"cards": ["2c", "7h"]}}}
    oracle.check("w", encode(Snapshot(3, 0, b"\0" * 16, leaky)))
    assert len(oracle.leaks) == 1 and "'2c'" in oracle.leaks[0] and "'7h'" in oracle.leaks[0]
    oracle.check("w", encode(Error("x/y", "the deck starts with 9s")))
    assert len(oracle.leaks) == 2 and "'9s'" in oracle.leaks[1]


def test_a_server_that_leaks_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sabotage: every player gets the unfiltered delta (deck changes, other hands). The
    first such delta does not apply to the client's view, so it is caught as a desync; the
    connection then sends no delta until the snapshot, so most leaking deltas never leave."""
    monkeypatch.setattr(synchronizer, "filter_delta", lambda delta, player: delta)
    found = [p for s in range(3) for p in simulate("holdem", s, "none").problems]
    assert any("desynced" in p and "secret" in p for p in found), found


def test_a_leak_in_a_rejection_message_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sabotage: rejections name the next card of the deck. Nothing else notices that."""
    holdem = type(GAMES["holdem"].make())
    validate = holdem.validate

    def chatty(self: Any, state: dict[str, Any], action: Any, ctx: Any) -> str | None:
        code = validate(self, state, action, ctx)
        if code is not None:
            raise ActionRejected(
                code, f"no; by the way the deck starts {state['secret']['deck'][0]}"
            )
        return None

    monkeypatch.setattr(holdem, "validate", chatty)
    found = [p for s in range(3) for p in simulate("holdem", s, "none").problems]
    assert found and all(p.startswith("leak: Result") for p in found), found


def test_a_server_that_applies_a_duplicate_twice_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sabotage: the dedupe memory forgets everything, so re-sent actions apply again."""
    monkeypatch.setattr(Dedupe, "lookup", lambda self, client_id, seq: None)
    monkeypatch.setattr(Dedupe, "too_old", lambda self, client_id, seq: False)
    found = [p for s in range(4) for p in simulate("arena", s, "dup,drop,reorder").problems]
    assert any("took effect 2 times" in p for p in found), found


# ---------------------------------------------------------------- the campaign


@pytest.mark.parametrize("game", list(GAMES))
def test_seed_campaign(game: str) -> None:
    """``SEEDS`` seeds of every game with every fault: every invariant holds on each."""
    c = run_seeds(game, range(SEEDS), parse_faults("all"))
    assert c.seeds == SEEDS
    failing = "\n".join(f"{r.command}: {r.problems[:3]}" for r in c.failures[:10])
    assert c.ok, f"{len(c.failures)} failing seeds:\n{failing}"
    assert c.stats["accepted"] > SEEDS  # the bots really played
    assert c.stats["crashes"] > 0
