"""Tic-tac-toe: the smallest complete game, and the template for turn-based ones.

Public state (``state["game"]``)::

    {
      "board":  [None | "X" | "O"] * 9,   # cells 0..8, row by row
      "order":  [x_player, o_player],     # X moves first
      "turn":   player_id | None,         # None while waiting and once the game is over
      "status": "waiting" | "playing" | "won" | "draw",
      "winner": player_id | None,
      "line":   [a, b, c] | None,         # the winning cells (None on a forfeit)
      "moves":  int,
    }

Seats: players seated at creation are sorted, the first is X. A table created with fewer than
two players fills the seats in join order. The only action is ``"place"`` with payload
``{"cell": 0..8}``. A player who leaves a game in progress forfeits it to the other one.
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

CELL_TAKEN: Final = "tictactoe/cell_taken"
"""The cell already holds a mark."""
BAD_CELL: Final = "tictactoe/bad_cell"
"""The cell is an int outside 0..8."""
WAITING: Final = "tictactoe/waiting_for_players"
"""The second player has not joined yet."""

REASONS: Final = frozenset(
    {
        CELL_TAKEN,
        BAD_CELL,
        WAITING,
        reasons.NOT_YOUR_TURN,
        reasons.GAME_OVER,
        reasons.UNKNOWN_TYPE,
        reasons.INVALID_PAYLOAD,
    }
)
"""Every reason code :meth:`TicTacToe.validate` returns."""

MARKS: Final = ("X", "O")
"""Marks by seat: ``order[0]`` plays X and moves first."""
LINES: Final = (
    (0, 1, 2),
    (3, 4, 5),
    (6, 7, 8),
    (0, 3, 6),
    (1, 4, 7),
    (2, 5, 8),
    (0, 4, 8),
    (2, 4, 6),
)
"""The eight winning lines: rows, columns, diagonals."""


class TicTacToe(Game):
    """Two players take turns placing X and O on a 3x3 board; three in a line wins."""

    name: ClassVar[str] = "tictactoe"
    min_players: ClassVar[int] = 2
    max_players: ClassVar[int] = 2

    def setup(self, players: Sequence[str], config: Value, rng: Rng) -> dict[str, Any]:
        """Seat ``players`` (at most two) in sorted order; raises :class:`ValueError` for
        more than two."""
        order = sorted(players)
        if len(order) > self.max_players:
            raise ValueError(f"tictactoe seats 2 players, got {len(order)}")
        game: dict[str, Value] = {
            "board": [None] * 9,
            "order": list(order),
            "turn": order[0] if len(order) == 2 else None,
            "status": "playing" if len(order) == 2 else "waiting",
            "winner": None,
            "line": None,
            "moves": 0,
        }
        return {"game": game}

    def validate(self, state: dict[str, Any], action: PlayerAction, ctx: Context) -> str | None:
        """``None`` for a legal ``place``, else one of :data:`REASONS`."""
        g = state["game"]
        if g["status"] in ("won", "draw"):
            return reasons.GAME_OVER
        if action.type != "place":
            return reasons.UNKNOWN_TYPE
        if g["status"] == "waiting":
            return WAITING
        if g["turn"] != action.player_id:
            return reasons.NOT_YOUR_TURN
        payload = action.payload
        cell = payload.get("cell") if isinstance(payload, dict) else None
        if type(cell) is not int:
            return reasons.INVALID_PAYLOAD
        if not 0 <= cell < 9:
            return BAD_CELL
        if g["board"][cell] is not None:
            return CELL_TAKEN
        return None

    def apply(self, draft: Any, action: PlayerAction, ctx: Context) -> None:
        """Place the mover's mark, then detect a win or a draw or pass the turn."""
        g = draft["game"]
        cell = action.payload["cell"]  # type: ignore[call-overload, index]
        order = g["order"]
        seat = 0 if order[0] == action.player_id else 1
        g["board"][cell] = MARKS[seat]
        g["moves"] += 1
        board = list(g["board"])
        line = next((ln for ln in LINES if board[ln[0]] and _same(board, ln)), None)
        if line is not None:
            _finish(g, "won", action.player_id, list(line))
        elif all(board):
            _finish(g, "draw", None, None)
        else:
            g["turn"] = order[1 - seat]

    def join(self, draft: Any, player_id: str, ctx: Context) -> str | None:
        """Take the free seat; the game starts when the second player arrives. Refuses a
        third player with ``"action/table_full"``."""
        refused = super().join(draft, player_id, ctx)
        if refused is not None:
            return refused
        g = draft["game"]
        if player_id not in g["order"]:
            g["order"].append(player_id)
        if len(g["order"]) == 2 and g["status"] == "waiting":
            g["status"] = "playing"
            g["turn"] = g["order"][0]
        return None

    def leave(self, draft: Any, player_id: str, ctx: Context) -> None:
        """Before the game starts, free the seat; during it, forfeit to the other player;
        after it, change nothing."""
        g = draft["game"]
        order = g["order"]
        if player_id not in order:
            return
        if g["status"] == "waiting":
            del order[order.index(player_id)]
        elif g["status"] == "playing":
            other = order[1] if order[0] == player_id else order[0]
            _finish(g, "won", other, None)

    def is_over(self, state: dict[str, Any]) -> bool:
        """True after a win, a draw or a forfeit."""
        return bool(state["game"]["status"] in ("won", "draw"))


def legal_actions(state: Mapping[str, Any], player_id: str) -> list[tuple[str, Value]]:
    """Every legal action of ``player_id`` in ``state``: one ``place`` per empty cell on the
    player's turn, nothing otherwise."""
    g = state["game"]
    if g["status"] != "playing" or g["turn"] != player_id:
        return []
    return [("place", {"cell": i}) for i, mark in enumerate(g["board"]) if mark is None]


def _same(board: list[Any], line: tuple[int, int, int]) -> bool:
    a, b, c = line
    return bool(board[a] == board[b] == board[c])


def _finish(g: Any, status: str, winner: str | None, line: list[int] | None) -> None:
    g["status"] = status
    g["winner"] = winner
    g["line"] = line
    g["turn"] = None
