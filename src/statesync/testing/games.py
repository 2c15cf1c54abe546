"""Small games for tests and benchmarks, where the rules should cost next to nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from statesync.game import Game

if TYPE_CHECKING:
    from collections.abc import Sequence

    from statesync.actions import PlayerAction
    from statesync.game import Context
    from statesync.rng import Rng
    from statesync.value import Value


class Tally(Game):
    """Every action bumps a public total and the acting player's private count: small,
    steady updates that differ per player, and no snapshots in between (unlike hold'em's
    deals). Any action type is accepted, and players may join over a server."""

    name = "tally"

    def setup(self, players: Sequence[str], config: Value, rng: Rng) -> dict[str, Any]:
        return {"game": {"total": 0}, "players": {p: {"n": 0} for p in players}}

    def validate(self, state: dict[str, Any], action: PlayerAction, ctx: Context) -> str | None:
        return None

    def apply(self, draft: Any, action: PlayerAction, ctx: Context) -> None:
        draft["game"]["total"] += 1
        draft["players"][action.player_id]["n"] += 1

    def join(self, draft: Any, player_id: str, ctx: Context) -> str | None:
        refused = super().join(draft, player_id, ctx)
        if refused is None:
            draft["players"][player_id] = {"n": 0}
        return refused
