"""Actions per second through StateSynchronizer, and cost per action versus state size.

    .venv/bin/python bench/throughput.py

1. Hold'em, 9 players: each action is submitted to the table (rules on a tracked draft,
   incremental hash, history entry with inverse), then encoded for every player and a
   spectator and every player's view hash is computed. Two encodings are measured side by
   side: fan-out (the server's path: one chunk of the table's shared stream for the public
   part, private parts on each player's own stream) and one WireEncoder per connection.
2. Board: the same one-cell change on a 64x64 and a 256x256 board, same pipeline: the cost
   follows the change, not the size of the state.
Timings are wall-clock on this machine: best of several runs, one core.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

from statesync import Game, PlayerAction, Rng, StateSynchronizer, WireEncoder, reasons
from statesync.delta import Delta
from statesync.fanout import SharedStream, split_view
from statesync.games.holdem import Holdem, legal_actions
from statesync.views import filter_delta, touched_players

THROUGHPUT_TARGET = 10_000
BOARD_RATIO_TARGET = 1.5
WEIGHTS = {"check": 6, "call": 6, "fold": 2, "bet": 2, "raise": 1, "all_in": 0}


def holdem_script(n_actions: int, seed: int = 1) -> list[PlayerAction]:
    """A fixed sequence of legal actions (recorded once, replayed by every measurement)."""
    names = [f"p{i}" for i in range(9)]
    table = StateSynchronizer(Holdem(), players=names, seed=seed, config={"stack": 10**7})
    rng = Rng(seed)
    seqs = dict.fromkeys(names, 0)
    script = []
    for _ in range(n_actions):
        actor = table.state["game"]["turn"]
        choices = legal_actions(table.state, actor)
        weighted = [c for c in choices for _ in range(WEIGHTS.get(c[0], 1))] or choices
        kind, payload = rng.choice(weighted)
        seqs[actor] += 1
        action = PlayerAction(actor, actor, seqs[actor], table.version, kind, payload)
        [outcome] = table.submit_nowait([action])
        assert outcome.ok, outcome
        script.append(action)
    return script


def new_holdem(seed: int = 1) -> StateSynchronizer:
    names = [f"p{i}" for i in range(9)]
    return StateSynchronizer(Holdem(), players=names, seed=seed, config={"stack": 10**7})


class Fanout:
    """The encoding work of the server's fan-out for one table: the public part of each
    change encoded once, as a chunk of the table's shared stream, and the private part of
    each player it touches on that player's own stream."""

    def __init__(self, table: StateSynchronizer) -> None:
        self.table = table
        self.stream = SharedStream()
        self.stream.reset(table.version, table.epoch)
        self.conns: dict[str, WireEncoder] = {}

    def encode(self, delta: Delta) -> None:
        table = self.table
        touched = touched_players(delta)
        assert touched is not None  # no whole-section replacement in these games
        public = filter_delta(delta, None)
        if public.ops:
            self.stream.encode(public, table.version)
        else:
            self.stream.skip(table.version, table.epoch)
        for p in touched:
            parts = split_view(filter_delta(delta, p))
            assert parts is not None
            self.conns.setdefault(p, WireEncoder()).encode(parts[1])


def run_holdem(script: list[PlayerAction], mode: str) -> float:
    """Seconds to process the script in ``mode``: engine | fanout | per-connection."""
    table = new_holdem()
    viewers: list[str | None] = [*table.players, None]
    fan = Fanout(table)
    conns = {v: WireEncoder() for v in viewers}
    start = time.perf_counter()
    for action in script:
        table.submit_nowait([action])
        if mode == "engine":
            continue
        delta = table.history.entry(table.version).delta
        if mode == "fanout":
            fan.encode(delta)
        else:
            for v in viewers:
                conns[v].encode(filter_delta(delta, v))
        for v in viewers:
            table.view_hash(v)
    return time.perf_counter() - start


@dataclass
class HoldemResult:
    mode: str
    per_second: float
    us_per_action: float


def measure_holdem(n_actions: int = 3000, repeats: int = 3) -> list[HoldemResult]:
    script = holdem_script(n_actions)
    out = []
    for mode in ("engine", "fanout", "per-connection"):
        best = min(run_holdem(script, mode) for _ in range(repeats))
        out.append(HoldemResult(mode, n_actions / best, best / n_actions * 1e6))
    return out


class Board(Game):
    """An NxN grid of small ints; ``paint`` sets one cell (the benchmark's small change)."""

    name = "board"

    def setup(self, players: Any, config: Any, rng: Rng) -> dict[str, Any]:
        n = config["n"]
        return {
            "game": {
                "grid": [[(x * 7 + y * 3) % 5 for x in range(n)] for y in range(n)],
                "moves": 0,
            }
        }

    def validate(self, state: dict[str, Any], action: PlayerAction, ctx: Any) -> str | None:
        return None if action.type == "paint" else reasons.UNKNOWN_TYPE

    def apply(self, draft: Any, action: PlayerAction, ctx: Any) -> None:
        x, y, v = action.payload["x"], action.payload["y"], action.payload["v"]
        draft["game"]["grid"][y][x] = v
        draft["game"]["moves"] += 1


def run_board(n: int, moves: int) -> float:
    """Microseconds per action for ``moves`` one-cell changes on an n x n board (the cells
    touched are the same for every n: all within the top-left 64x64)."""
    table = StateSynchronizer(Board(), players=["a", "b"], config={"n": n})
    fan = Fanout(table)
    rng = Rng(9)
    script = [
        PlayerAction(
            "a",
            "a",
            i + 1,
            i,
            "paint",
            {"x": rng.randbelow(64), "y": rng.randbelow(64), "v": rng.randbelow(9)},
        )
        for i in range(moves)
    ]
    start = time.perf_counter()
    for action in script:
        table.submit_nowait([action])
        fan.encode(table.history.entry(table.version).delta)
        table.view_hash("a")
        table.view_hash("b")
    return (time.perf_counter() - start) / moves * 1e6


def measure_board(moves: int = 3000, repeats: int = 5) -> dict[int, float]:
    return {n: min(run_board(n, moves) for _ in range(repeats)) for n in (64, 256)}


def main() -> int:
    print("Hold'em, 9 players + 1 spectator: submit + encode for every viewer + view hashes")
    results = measure_holdem()
    print(f"{'pipeline':<16} {'actions/s':>10} {'us/action':>10}")
    for r in results:
        print(f"{r.mode:<16} {r.per_second:>10,.0f} {r.us_per_action:>10.1f}")
    full = {r.mode: r for r in results}["fanout"]
    print(
        f"target >= {THROUGHPUT_TARGET:,} actions/s with encoding: "
        f"{'PASS' if full.per_second >= THROUGHPUT_TARGET else 'FAIL'}"
    )
    print()
    board = measure_board()
    ratio = board[256] / board[64]
    print("Board: the same one-cell change per action (submit + encode + 2 view hashes)")
    for n, us in board.items():
        print(f"{n}x{n:<8} {us:>8.1f} us/action")
    print(
        f"256x256 / 64x64 = {ratio:.2f} (target <= {BOARD_RATIO_TARGET}): "
        f"{'PASS' if ratio <= BOARD_RATIO_TARGET else 'FAIL'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
