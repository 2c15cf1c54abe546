"""The simulated players' behaviour, and the games the simulator knows how to set up.

A bot looks at its client's authoritative view and picks one of the game's legal actions
(``legal_actions`` of each example game). Now and then it does something a real client might:
acts out of turn, sends an unknown action type or a malformed payload. The server must reject
those with a reason code and change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from statesync.games import arena, holdem, tictactoe

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Mapping

    from statesync.game import Game
    from statesync.value import Value

__all__ = ["GAMES", "SimGame", "policy_for"]

MISBEHAVE = 0.05
"""Probability that a bot's action is out of turn, of an unknown type or malformed."""


@dataclass(frozen=True, slots=True)
class SimGame:
    """How the simulator sets up one game: tables, players per table (drawn from
    ``players``), table config, mean think time (seconds) and how long bots play."""

    name: str
    make: Callable[[], Game]
    legal: Callable[[Mapping[str, Any], str], list[tuple[str, Value]]]
    tables: int
    players: tuple[int, int]
    config: Value
    think: float
    play_seconds: float


GAMES: dict[str, SimGame] = {
    "tictactoe": SimGame(
        "tictactoe", tictactoe.TicTacToe, tictactoe.legal_actions, 3, (2, 2), None, 0.3, 6.0
    ),
    "holdem": SimGame(
        "holdem", holdem.Holdem, holdem.legal_actions, 1, (2, 6), {"stack": 2000}, 0.15, 8.0
    ),
    "arena": SimGame("arena", arena.Arena, arena.legal_actions, 1, (2, 4), {"npcs": 8}, 0.3, 4.0),
}
"""The example games, by the name ``statesync sim --game`` takes."""


def policy_for(
    sim_game: SimGame,
) -> Callable[[dict[str, Any], str, random.Random], tuple[str, Value] | None]:
    """The bot of ``sim_game``: a legal action when there is one (sometimes a bad one)."""
    legal = sim_game.legal

    def choose(state: dict[str, Any], player: str, rng: random.Random) -> tuple[str, Value] | None:
        if rng.random() < MISBEHAVE:
            return rng.choice(_BAD)
        options = legal(state, player)
        if not options:
            return None
        return options[rng.randrange(len(options))]

    return choose


_BAD: list[tuple[str, Value]] = [
    ("no_such_action", None),
    ("place", {"cell": 99}),
    ("bet", {"amount": -5}),
    ("move", {"dx": 10**6, "dy": "north"}),
    ("fold", None),  # out of turn, most of the time
    ("call", [1, 2, 3]),
]
