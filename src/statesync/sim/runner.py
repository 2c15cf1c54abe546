"""Many seeds: :func:`run_seeds` runs seeds of each game over worker processes, reports
progress, and collects the failing seeds with the command that replays each one.

Seeds are independent and each is deterministic, so the outcome of a campaign does not
depend on how many workers run it or in which order they finish.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from statesync.sim.world import SimResult, simulate

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

__all__ = ["Campaign", "run_seeds"]

CHUNK = 25
"""Seeds per task sent to a worker process."""


@dataclass
class Campaign:
    """The outcome of :func:`run_seeds` for one game."""

    game: str
    faults: tuple[str, ...]
    seeds: int = 0
    failures: list[SimResult] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


def _chunk(game: str, seeds: Sequence[int], faults: tuple[str, ...]) -> list[SimResult]:
    results = []
    for seed in seeds:
        r = simulate(game, seed, faults)
        if r.ok:  # keep what travels back to the parent small
            r.fingerprint = ""
        results.append(r)
    return results


def _chunks(seeds: Sequence[int]) -> Iterator[Sequence[int]]:
    for i in range(0, len(seeds), CHUNK):
        yield seeds[i : i + CHUNK]


def run_seeds(
    game: str,
    seeds: Sequence[int],
    faults: tuple[str, ...],
    *,
    jobs: int | None = None,
    progress: Callable[[Campaign], None] | None = None,
) -> Campaign:
    """Run ``seeds`` of ``game`` with ``faults`` on ``jobs`` processes (default: one per core;
    1: in this process) and return the :class:`Campaign`. ``progress`` is called after every
    chunk of :data:`CHUNK` seeds."""
    campaign = Campaign(game, faults)
    started = time.perf_counter()
    jobs = jobs or os.cpu_count() or 1

    def take(results: list[SimResult]) -> None:
        for r in results:
            campaign.seeds += 1
            campaign.stats.update(r.stats)
            if not r.ok:
                campaign.failures.append(r)
        campaign.seconds = time.perf_counter() - started
        if progress is not None:
            progress(campaign)

    if jobs == 1:
        for part in _chunks(seeds):
            take(_chunk(game, part, faults))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_chunk, game, part, faults) for part in _chunks(seeds)]
            for future in futures:
                take(future.result())
    campaign.failures.sort(key=lambda r: r.seed)
    return campaign
