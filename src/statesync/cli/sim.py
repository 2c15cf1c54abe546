"""``statesync sim``: run the deterministic simulator over many seeds, or one seed in detail.

    statesync sim --seeds 1000                      # every game, every fault, seeds 0-999
    statesync sim --game holdem --seeds 100000 --start 5000 --jobs 8
    statesync sim --game arena --seed 42 --faults crash,drop     # one seed, in detail

A failing seed is printed with the one-line command that replays it exactly.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from statesync.sim.bots import GAMES
from statesync.sim.runner import run_seeds
from statesync.sim.world import simulate

if TYPE_CHECKING:
    from collections.abc import Callable

    from statesync.sim.runner import Campaign

__all__ = ["GAMES", "game_names", "run_one", "run_sim"]

BAR = 30


def _progress(total: int, out: TextIO) -> Callable[[Campaign], None]:
    """A progress bar redrawn in place on a terminal; on a log (CI), a line per quarter."""
    tty = out.isatty()
    shown = [0]

    def show(c: Campaign) -> None:
        done = c.seeds
        if not tty and done < total and 4 * done < (shown[0] + 1) * total:
            return
        shown[0] = 4 * done // max(total, 1)
        filled = BAR * done // max(total, 1)
        rate = done / c.seconds if c.seconds else 0.0
        line = (
            f"{c.game:<10} [{'#' * filled}{'.' * (BAR - filled)}] {done}/{total} seeds"
            f"  failing {len(c.failures)}  {rate:.0f} seeds/s"
        )
        out.write(f"\r{line} " if tty else f"{line}\n")
        out.flush()

    return show


def run_sim(
    games: list[str],
    start: int,
    count: int,
    faults: tuple[str, ...],
    jobs: int | None,
    out: TextIO = sys.stdout,
) -> int:
    """Run ``count`` seeds from ``start`` of each game; 0 if every seed passed, else 1."""
    failed = 0
    seeds = range(start, start + count)
    print(f"statesync sim: seeds {start}-{start + count - 1}, faults: {','.join(faults) or 'none'}")
    for game in games:
        c = run_seeds(game, seeds, faults, jobs=jobs, progress=_progress(count, out))
        s = c.stats
        if out.isatty():
            out.write("\n")
        print(
            f"  {game}: {c.seeds - len(c.failures)}/{c.seeds} seeds passed in {c.seconds:.1f} s;"
            f" desyncs {s['desyncs']}, leaks {s['leaks']}; {s['versions']} versions,"
            f" {s['accepted']} actions acknowledged, {s['rejected']} rejected,"
            f" {s['crashes']} server crashes,"
            f" {s['drops']} drops, {s['partitions']} partitions, {s['reconnects']} reconnects,"
            f" {s['store_injected']} store faults, {s['dup_resends']} duplicate sends,"
            f" {s['oracle_frames']} frames checked for leaks"
        )
        for r in c.failures:
            failed += 1
            print(f"  FAIL {r.command}")
            for problem in r.problems[:3]:
                print(f"       {problem}")
    return 1 if failed else 0


def run_one(game: str, seed: int, faults: tuple[str, ...]) -> int:
    """Run one seed and print everything it found; 0 if it passed."""
    r = simulate(game, seed, faults)
    print(f"statesync sim: {r.command}")
    for key in sorted(r.stats):
        print(f"  {key:<32} {r.stats[key]}")
    print(f"  fingerprint {r.fingerprint}")
    if r.ok:
        print("  ok: every invariant held")
        return 0
    for problem in r.problems:
        print(f"  PROBLEM {problem}")
    return 1


def game_names(spec: str) -> list[str]:
    """``all`` or a comma-separated list of :data:`~statesync.sim.bots.GAMES` keys."""
    if spec == "all":
        return list(GAMES)
    names = [g.strip() for g in spec.split(",") if g.strip()]
    for name in names:
        if name not in GAMES:
            raise ValueError(f"unknown game {name!r} (choose from all, {', '.join(GAMES)})")
    return names
