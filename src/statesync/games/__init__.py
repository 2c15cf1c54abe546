"""Example games shipped with statesync: rules to learn from, and workloads for benchmarks.

* :class:`TicTacToe` -- two players, turn-based, no hidden information;
* :class:`Holdem` -- no-limit Texas hold'em, 2 to 9 players, hidden hole cards, side pots;
* :class:`Arena` -- real-time (20 ticks per second), many moving entities, NPCs.

Each module also has a pure ``legal_actions(state, player_id)`` for bots and benchmarks, and a
``REASONS`` set of every reason code its ``validate`` returns.
"""

from __future__ import annotations

from statesync.games.arena import Arena
from statesync.games.holdem import Holdem
from statesync.games.tictactoe import TicTacToe

__all__ = ["Arena", "Holdem", "TicTacToe"]
