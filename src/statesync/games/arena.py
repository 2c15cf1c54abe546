"""Arena: a real-time game with many moving entities, stepped by :meth:`Arena.tick`.

Public state (``state["game"]``)::

    {
      "tick":     int,                        # simulation steps so far
      "next_id":  int,                        # the N of the next "e<N>"
      "entities": {"e<N>": {"x", "y", "vx", "vy", "hp", "kind", "owner"}},
      "avatars":  {player_id: "e<N>" | None}, # None while dead, waiting to respawn
      "kills":    {player_id: int},
      "respawns": [{"at": tick, "owner": player_id | None}],   # owner None: an NPC
    }

Positions are ints in ``0 .. WORLD_SIZE - 1``; ``kind`` is ``"avatar"`` or ``"npc"``;
``owner`` is the controlling player (``None`` for NPCs). Each tick, in this order: the counter
advances, due respawns happen, every NPC may pick a new velocity (one chance in
:data:`NPC_TURN_CHANCE`), and every entity moves by its velocity, in ``e<N>`` order. Positions
are clamped to the world; NPCs bounce off its edges, avatars stop against them (their velocity
is kept). Nothing is hidden, and the game never ends.

Actions: ``"move" {"vx": int, "vy": int}`` sets the player's avatar's velocity (each in
``-MAX_SPEED .. MAX_SPEED``); ``"attack" {"target": "e<N>"}`` deals :data:`ATTACK_DAMAGE` to
an entity within :data:`ATTACK_RANGE` (Euclidean, inclusive) of the player's living avatar.
An entity at 0 hp is removed at once; an avatar comes back after
:data:`AVATAR_RESPAWN_TICKS`, an NPC after :data:`NPC_RESPAWN_TICKS`, at a random place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Final

from statesync import reasons
from statesync.game import Game

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from statesync.actions import PlayerAction
    from statesync.game import Context
    from statesync.rng import Rng
    from statesync.value import Value

WORLD_SIZE: Final = 4096
"""Width and height of the world; positions are ints in ``0 .. WORLD_SIZE - 1``."""
MAX_SPEED: Final = 8
"""Largest ``abs(vx)`` / ``abs(vy)`` a player may ask for, in units per tick."""
NPC_SPEED: Final = 4
"""Largest NPC velocity component."""
NPC_TURN_CHANCE: Final = 20
"""An NPC picks a new random velocity with probability ``1 / NPC_TURN_CHANCE`` per tick."""
ATTACK_RANGE: Final = 200
"""Largest distance between attacker and target."""
ATTACK_DAMAGE: Final = 25
"""Hit points one attack takes."""
AVATAR_HP: Final = 100
"""Hit points of a fresh avatar (four hits)."""
NPC_HP: Final = 50
"""Hit points of a fresh NPC (two hits)."""
AVATAR_RESPAWN_TICKS: Final = 60
"""Ticks between an avatar's death and its respawn (3 s at 20 ticks per second)."""
NPC_RESPAWN_TICKS: Final = 100
"""Ticks between an NPC's death and its replacement."""
DEFAULT_NPCS: Final = 64
"""NPCs spawned at setup unless ``config["npcs"]`` says otherwise."""

DEAD: Final = "arena/dead"
"""The player's avatar is dead (waiting to respawn)."""
NO_TARGET: Final = "arena/no_target"
"""The attack target does not exist (never did, or already died)."""
SELF_TARGET: Final = "arena/self_target"
"""A player attacked their own avatar."""
OUT_OF_RANGE: Final = "arena/out_of_range"
"""The target is farther than :data:`ATTACK_RANGE` from the attacker."""
TOO_FAST: Final = "arena/too_fast"
"""A velocity component is an int outside ``-MAX_SPEED .. MAX_SPEED``."""

REASONS: Final = frozenset(
    {DEAD, NO_TARGET, SELF_TARGET, OUT_OF_RANGE, TOO_FAST}
    | {reasons.UNKNOWN_TYPE, reasons.INVALID_PAYLOAD}
)
"""Every reason code :meth:`Arena.validate` returns."""

_MOVE_CHOICES: Final = (-MAX_SPEED, 0, MAX_SPEED)


class Arena(Game):
    """A 4096x4096 world of avatars (one per player) and wandering NPCs.

    ``config``: ``{"npcs": int}`` (default :data:`DEFAULT_NPCS`, at most 10000).
    """

    name: ClassVar[str] = "arena"
    max_players: ClassVar[int] = 64
    tick_rate: ClassVar[float] = 20

    def setup(self, players: Sequence[str], config: Value, rng: Rng) -> dict[str, Any]:
        """Spawn an avatar per player (sorted) and the configured NPCs. Raises
        :class:`ValueError` for a malformed ``config``."""
        npcs = _npc_count(config)
        game: dict[str, Any] = {
            "tick": 0,
            "next_id": 1,
            "entities": {},
            "avatars": {},
            "kills": {},
            "respawns": [],
        }
        for player in sorted(players):
            _add_player(game, player, rng)
        for _ in range(npcs):
            _spawn(game, rng, None)
        return {"game": game}

    def validate(self, state: dict[str, Any], action: PlayerAction, ctx: Context) -> str | None:
        """``None`` for a legal ``move`` or ``attack``, else one of :data:`REASONS`."""
        g = state["game"]
        if action.type not in ("move", "attack"):
            return reasons.UNKNOWN_TYPE
        payload = action.payload
        if not isinstance(payload, dict):
            return reasons.INVALID_PAYLOAD
        problem = _check_move(payload) if action.type == "move" else _check_attack(payload)
        me = g["avatars"].get(action.player_id)
        if problem is not None or me is None:
            return problem or DEAD
        if action.type == "move":
            return None
        target = payload["target"]
        if target == me:
            return SELF_TARGET
        entities = g["entities"]
        if target not in entities:
            return NO_TARGET
        if not in_range(entities[me], entities[target]):
            return OUT_OF_RANGE
        return None

    def apply(self, draft: Any, action: PlayerAction, ctx: Context) -> None:
        """Set the avatar's velocity, or hit the target (removing it at 0 hp)."""
        g = draft["game"]
        payload: Any = action.payload
        if action.type == "move":
            avatar = g["entities"][g["avatars"][action.player_id]]
            _set(avatar, "vx", payload["vx"])
            _set(avatar, "vy", payload["vy"])
        else:
            _hit(g, action.player_id, payload["target"])

    def join(self, draft: Any, player_id: str, ctx: Context) -> str | None:
        """Spawn the player's avatar at a random place."""
        refused = super().join(draft, player_id, ctx)
        if refused is None:
            _add_player(draft["game"], player_id, ctx.rng)
        return refused

    def leave(self, draft: Any, player_id: str, ctx: Context) -> None:
        """Remove the player's avatar, score and pending respawn."""
        g = draft["game"]
        avatar = g["avatars"].pop(player_id, None)
        if avatar is not None and avatar in g["entities"]:
            del g["entities"][avatar]
        g["kills"].pop(player_id, None)
        respawns = g["respawns"]
        for i in reversed(range(len(respawns))):
            if respawns[i]["owner"] == player_id:
                del respawns[i]

    def connection_changed(self, draft: Any, player_id: str, connected: bool, ctx: Context) -> None:
        """A disconnected player's avatar stops moving (it can still be attacked)."""
        g = draft["game"]
        avatar = g["avatars"].get(player_id)
        if not connected and avatar is not None:
            entity = g["entities"][avatar]
            _set(entity, "vx", 0)
            _set(entity, "vy", 0)

    def tick(self, draft: Any, ctx: Context) -> None:
        """One simulation step: counter, respawns, NPC wandering, movement."""
        g = draft["game"]
        now = g["tick"] + 1
        g["tick"] = now
        _respawn_due(g, now, ctx.rng)
        entities = g["entities"]
        for eid in sorted(entities, key=entity_number):
            entity = entities[eid]
            if entity["kind"] == "npc" and ctx.rng.randbelow(NPC_TURN_CHANCE) == 0:
                _set(entity, "vx", ctx.rng.randint(-NPC_SPEED, NPC_SPEED))
                _set(entity, "vy", ctx.rng.randint(-NPC_SPEED, NPC_SPEED))
            _move(entity, "x", "vx")
            _move(entity, "y", "vy")


def legal_actions(state: Mapping[str, Any], player_id: str) -> list[tuple[str, Value]]:
    """A representative set of legal actions: the nine moves with each velocity component in
    ``(-MAX_SPEED, 0, MAX_SPEED)``, then an attack on every entity in range, in ``e<N>``
    order. Empty while the player's avatar is dead."""
    g = state["game"]
    me = g["avatars"].get(player_id)
    if me is None:
        return []
    actions: list[tuple[str, Value]] = [
        ("move", {"vx": vx, "vy": vy}) for vx in _MOVE_CHOICES for vy in _MOVE_CHOICES
    ]
    entities = g["entities"]
    mine = entities[me]
    for eid in sorted(entities, key=entity_number):
        if eid != me and in_range(mine, entities[eid]):
            actions.append(("attack", {"target": eid}))
    return actions


def in_range(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when entities ``a`` and ``b`` are at most :data:`ATTACK_RANGE` apart."""
    dx: int = a["x"] - b["x"]
    dy: int = a["y"] - b["y"]
    return dx * dx + dy * dy <= ATTACK_RANGE * ATTACK_RANGE


def entity_number(eid: str) -> int:
    """The N of an ``"e<N>"`` key: entities are processed in creation order."""
    return int(eid[1:])


def _npc_count(config: Value) -> int:
    if config is None:
        return DEFAULT_NPCS
    if not isinstance(config, dict):
        raise ValueError("arena config must be a dict")
    npcs = config.get("npcs", DEFAULT_NPCS)
    if type(npcs) is not int or not 0 <= npcs <= 10_000:
        raise ValueError(f"arena config 'npcs' must be an int in 0..10000, got {npcs!r}")
    return npcs


def _check_move(payload: dict[str, Value]) -> str | None:
    vx, vy = payload.get("vx"), payload.get("vy")
    if type(vx) is not int or type(vy) is not int:
        return reasons.INVALID_PAYLOAD
    if not (-MAX_SPEED <= vx <= MAX_SPEED and -MAX_SPEED <= vy <= MAX_SPEED):
        return TOO_FAST
    return None


def _check_attack(payload: dict[str, Value]) -> str | None:
    return None if type(payload.get("target")) is str else reasons.INVALID_PAYLOAD


def _add_player(g: Any, player_id: str, rng: Rng) -> None:
    g["avatars"][player_id] = _spawn(g, rng, player_id)
    if player_id not in g["kills"]:
        g["kills"][player_id] = 0


def _spawn(g: Any, rng: Rng, owner: str | None) -> str:
    """Create an entity at a random place: an avatar of ``owner``, or an NPC."""
    number = g["next_id"]
    g["next_id"] = number + 1
    eid = f"e{number}"
    x, y = rng.randbelow(WORLD_SIZE), rng.randbelow(WORLD_SIZE)
    if owner is None:
        vx, vy = rng.randint(-NPC_SPEED, NPC_SPEED), rng.randint(-NPC_SPEED, NPC_SPEED)
    else:
        vx = vy = 0
    g["entities"][eid] = {
        "x": x,
        "y": y,
        "vx": vx,
        "vy": vy,
        "hp": AVATAR_HP if owner is not None else NPC_HP,
        "kind": "avatar" if owner is not None else "npc",
        "owner": owner,
    }
    return eid


def _hit(g: Any, attacker: str, target: str) -> None:
    entities = g["entities"]
    victim = entities[target]
    hp = victim["hp"] - ATTACK_DAMAGE
    if hp > 0:
        victim["hp"] = hp
        return
    owner = victim["owner"]
    del entities[target]
    g["kills"][attacker] += 1
    if owner is None:
        g["respawns"].append({"at": g["tick"] + NPC_RESPAWN_TICKS, "owner": None})
    else:
        g["avatars"][owner] = None
        g["respawns"].append({"at": g["tick"] + AVATAR_RESPAWN_TICKS, "owner": owner})


def _respawn_due(g: Any, now: int, rng: Rng) -> None:
    respawns = g["respawns"]
    i = 0
    while i < len(respawns):
        entry = respawns[i]
        if entry["at"] > now:
            i += 1
            continue
        owner = entry["owner"]
        del respawns[i]
        eid = _spawn(g, rng, owner)
        if owner is not None:
            g["avatars"][owner] = eid


def _move(entity: Any, axis: str, speed: str) -> None:
    v = entity[speed]
    if not v:
        return
    pos = entity[axis] + v
    if not 0 <= pos < WORLD_SIZE:
        pos = min(max(pos, 0), WORLD_SIZE - 1)
        if entity["kind"] == "npc":
            entity[speed] = -v
    _set(entity, axis, pos)


def _set(node: Any, key: str, value: Value) -> None:
    """Write only real changes: every write becomes part of the delta."""
    if node[key] != value:
        node[key] = value
