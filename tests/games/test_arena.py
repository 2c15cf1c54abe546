from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statesync import reasons
from statesync.games import Arena
from statesync.games import arena as ar
from statesync.rng import Rng
from statesync.value import check_value

from .driver import Table


def table(players: list[str] | None = None, npcs: int = 0, seed: int = 0) -> Table:
    return Table(Arena(), ["ann", "ben"] if players is None else players, {"npcs": npcs}, seed)


def avatar(t: Table, player: str) -> dict:
    return t.g["entities"][t.g["avatars"][player]]


def place(t: Table, player: str, x: int, y: int) -> None:
    """Tests may teleport: they own the state between calls."""
    a = avatar(t, player)
    a["x"], a["y"] = x, y


def test_setup_spawns_avatars_and_npcs() -> None:
    t = table(["zoe", "amy"], npcs=5)
    assert t.g["avatars"] == {"amy": "e1", "zoe": "e2"}
    assert t.g["kills"] == {"amy": 0, "zoe": 0}
    ents = t.g["entities"]
    assert sorted(ents, key=ar.entity_number) == [f"e{n}" for n in range(1, 8)]
    assert [e["kind"] for e in ents.values()].count("npc") == 5
    for e in ents.values():
        assert 0 <= e["x"] < ar.WORLD_SIZE
        assert 0 <= e["y"] < ar.WORLD_SIZE
        assert set(e) == {"x", "y", "vx", "vy", "hp", "kind", "owner"}
    assert avatar(t, "amy")["owner"] == "amy"
    assert avatar(t, "amy")["hp"] == ar.AVATAR_HP
    assert Arena.tick_rate == 20
    assert len(table(npcs=64).g["entities"]) == 66
    assert len(Table(Arena(), ["a"]).g["entities"]) == 1 + ar.DEFAULT_NPCS


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="npcs"):
        Arena().setup([], {"npcs": -1}, Rng(0))
    with pytest.raises(ValueError, match="dict"):
        Arena().setup([], [1], Rng(0))


def test_move_and_tick() -> None:
    t = table()
    place(t, "ann", 100, 200)
    t.must("ann", "move", {"vx": 8, "vy": -3})
    assert (avatar(t, "ann")["vx"], avatar(t, "ann")["vy"]) == (8, -3)
    t.tick()
    t.tick()
    assert t.g["tick"] == 2
    assert (avatar(t, "ann")["x"], avatar(t, "ann")["y"]) == (116, 194)


@pytest.mark.parametrize(
    ("start", "velocity", "end"),
    [((4090, 4093), (8, 8), (4095, 4095)), ((3, 1), (-8, -8), (0, 0))],
)
def test_avatars_are_clamped_to_the_world(start, velocity, end) -> None:
    t = table()
    place(t, "ann", *start)
    t.must("ann", "move", {"vx": velocity[0], "vy": velocity[1]})
    for _ in range(3):
        t.tick()
        a = avatar(t, "ann")
        assert (a["x"], a["y"]) == end
        assert (a["vx"], a["vy"]) == velocity  # it keeps pushing against the wall


def test_npcs_bounce_off_the_edge() -> None:
    bounced = 0
    for seed in range(30):
        t = table([], npcs=1, seed=seed)
        npc = t.g["entities"]["e1"]
        npc.update(x=1, y=50, vx=-4, vy=0)
        # The tick's first draw is this NPC's chance to pick a new velocity.
        rerolled = Rng.derive(seed, t.version + 1).randbelow(ar.NPC_TURN_CHANCE) == 0
        t.tick()
        npc = t.g["entities"]["e1"]
        assert 0 <= npc["x"] < ar.WORLD_SIZE
        if not rerolled:
            assert (npc["x"], npc["vx"]) == (0, 4)
            bounced += 1
    assert bounced > 20


def test_attack_range_damage_death_and_respawn() -> None:
    t = table()
    place(t, "ann", 1000, 1000)
    place(t, "ben", 1120, 1160)  # exactly 200 away
    ben = t.g["avatars"]["ben"]
    t.must("ann", "attack", {"target": ben})
    assert avatar(t, "ben")["hp"] == ar.AVATAR_HP - ar.ATTACK_DAMAGE
    place(t, "ben", 1120, 1161)
    assert t.act("ann", "attack", {"target": ben}) == ar.OUT_OF_RANGE
    place(t, "ben", 1000, 1000)
    for _ in range(ar.AVATAR_HP // ar.ATTACK_DAMAGE - 1):
        t.must("ann", "attack", {"target": ben})
    assert ben not in t.g["entities"]
    assert t.g["avatars"]["ben"] is None
    assert t.g["kills"] == {"ann": 1, "ben": 0}
    assert t.g["respawns"] == [{"at": ar.AVATAR_RESPAWN_TICKS, "owner": "ben"}]
    assert t.act("ben", "move", {"vx": 1, "vy": 1}) == ar.DEAD
    assert t.act("ben", "attack", {"target": t.g["avatars"]["ann"]}) == ar.DEAD
    assert t.act("ann", "attack", {"target": ben}) == ar.NO_TARGET
    assert ar.legal_actions(t.state, "ben") == []
    for _ in range(ar.AVATAR_RESPAWN_TICKS - 1):
        t.tick()
    assert t.g["avatars"]["ben"] is None
    t.tick()
    reborn = t.g["avatars"]["ben"]
    assert reborn == "e3"
    assert avatar(t, "ben")["hp"] == ar.AVATAR_HP
    assert t.g["respawns"] == []
    t.must("ben", "move", {"vx": -8, "vy": 8})


def test_killed_npcs_come_back() -> None:
    t = table(["ann"], npcs=1)
    npc = t.g["entities"]["e2"]
    place(t, "ann", npc["x"], npc["y"])
    t.must("ann", "attack", {"target": "e2"})
    assert t.g["entities"]["e2"]["hp"] == ar.NPC_HP - ar.ATTACK_DAMAGE
    t.must("ann", "attack", {"target": "e2"})
    assert "e2" not in t.g["entities"]
    for _ in range(ar.NPC_RESPAWN_TICKS):
        t.tick()
    assert [e["kind"] for e in t.g["entities"].values()] == ["avatar", "npc"]
    assert "e3" in t.g["entities"]


def test_every_reason_code() -> None:
    t = table()
    place(t, "ann", 0, 0)
    place(t, "ben", 4000, 4000)
    ann, ben = t.g["avatars"]["ann"], t.g["avatars"]["ben"]
    codes = {
        t.act("ann", "fly", {}),
        t.act("ann", "move", None),
        t.act("ann", "move", {"vx": 1}),
        t.act("ann", "move", {"vx": True, "vy": 0}),
        t.act("ann", "attack", {"target": 3}),
        t.act("ann", "move", {"vx": 9, "vy": 0}),
        t.act("ann", "move", {"vx": 0, "vy": -9}),
        t.act("ann", "attack", {"target": "e99"}),
        t.act("ann", "attack", {"target": ann}),
        t.act("ann", "attack", {"target": ben}),
    }
    place(t, "ben", 0, 0)
    for _ in range(4):
        t.must("ann", "attack", {"target": ben})
    codes.add(t.act("ben", "move", {"vx": 0, "vy": 0}))
    assert codes == ar.REASONS
    t.set_connected("ann", False)
    assert t.act("ann", "move", {"vx": 1, "vy": 1}) == reasons.DISCONNECTED


def test_join_leave_and_disconnect() -> None:
    t = table(["ann"])
    assert t.join("cat") is None
    cat = t.g["avatars"]["cat"]
    assert t.g["entities"][cat]["owner"] == "cat"
    assert t.g["kills"]["cat"] == 0
    t.must("cat", "move", {"vx": 5, "vy": 5})
    t.set_connected("cat", False)
    assert (t.g["entities"][cat]["vx"], t.g["entities"][cat]["vy"]) == (0, 0)
    t.leave("cat")
    assert cat not in t.g["entities"]
    assert "cat" not in t.g["avatars"]
    assert "cat" not in t.g["kills"]


def test_leave_while_dead_cancels_the_respawn() -> None:
    t = table()
    place(t, "ben", *(avatar(t, "ann")[k] for k in ("x", "y")))
    for _ in range(4):
        t.must("ann", "attack", {"target": t.g["avatars"]["ben"]})
    assert t.g["respawns"]
    t.leave("ben")
    assert t.g["respawns"] == []


def test_legal_actions() -> None:
    t = table(npcs=0)
    place(t, "ann", 0, 0)
    place(t, "ben", 100, 0)
    actions = ar.legal_actions(t.state, "ann")
    assert len(actions) == 10
    assert actions[-1] == ("attack", {"target": t.g["avatars"]["ben"]})
    for kind, payload in actions:
        assert t.validate("ann", kind, payload) is None


def run(seed: int, ticks: int = 200, *, resort: bool = False) -> dict:
    t = Table(Arena(), ["ann", "ben", "cy"], {"npcs": 64}, seed, resort=resort)
    bots = Rng(seed + 1000)
    for _ in range(ticks):
        for player in ("ann", "ben", "cy"):
            legal = ar.legal_actions(t.state, player)
            if legal and bots.randbelow(3) == 0:
                t.must(player, *bots.choice(legal))
        t.tick()
    return t.state


def test_same_seed_same_states() -> None:
    a, b = run(7), run(7)
    assert a == b
    assert a["game"]["tick"] == 200
    assert run(8) != a


def test_key_order_does_not_matter() -> None:
    """A state restored from storage has sorted keys ("e10" before "e2"): same result."""
    assert run(3, 120, resort=True) == run(3, 120)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    steps=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 10**6)), max_size=60),
    junk=st.lists(
        st.tuples(
            st.sampled_from(["move", "attack", "zap"]),
            st.dictionaries(
                st.sampled_from(["vx", "vy", "target"]),
                st.integers(-20, 20) | st.text(max_size=4) | st.none(),
            ),
        ),
        max_size=5,
    ),
)
def test_random_play_stays_valid(seed, steps, junk) -> None:
    t = table(["ann", "ben"], npcs=8, seed=seed)
    for i, (what, pick) in enumerate(steps):
        player = ("ann", "ben")[i % 2]
        if what == 0:
            t.tick()
        elif what == 1 and junk:
            code = t.act(player, *junk[pick % len(junk)])
            assert code is None or code in ar.REASONS
        elif what == 2:
            t.join(f"p{i}") if len(t.state["seats"]) < 4 else t.leave(sorted(t.state["seats"])[-1])
        else:
            legal = ar.legal_actions(t.state, player) if player in t.state["seats"] else []
            if legal:
                t.must(player, *legal[pick % len(legal)])
        check_value(t.state)
        for e in t.g["entities"].values():
            assert 0 <= e["x"] < ar.WORLD_SIZE
            assert 0 <= e["y"] < ar.WORLD_SIZE
            assert 0 < e["hp"]
        alive = {p: e for p, e in t.g["avatars"].items() if e is not None}
        assert all(t.g["entities"][e]["owner"] == p for p, e in alive.items())
