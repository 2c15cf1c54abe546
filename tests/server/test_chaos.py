"""Chaos test with real processes on loopback: a ``statesync serve`` process on SQLite is
SIGKILLed 5 times at random (seeded) moments and restarted on the same port and file, while
4 client processes (3 hold'em bots each, over 3 tables) play through the SDK, which
reconnects on its own. Every acknowledged action must be in the log exactly once at its
version, and every client must end holding the store's view of its player."""

from __future__ import annotations

from typing import TYPE_CHECKING

from statesync.testing.chaos import ChaosReport, campaign, layout

if TYPE_CHECKING:
    from pathlib import Path


def test_layout_spreads_every_client_over_the_tables() -> None:
    seats, clients = layout(3, 4, 3, seed=5)
    assert seats == {f"chaos-{t}": ["p0", "p1", "p2", "p3"] for t in range(3)}
    assert [sorted(b.table for b in bots) for bots in clients] == [list(seats)] * 4
    ids = [b.client_id for bots in clients for b in bots]
    assert len(set(ids)) == len(ids) == 12


async def test_sigkilled_server_loses_no_acknowledged_action(tmp_path: Path) -> None:
    lines: list[str] = []

    def progress(r: ChaosReport) -> None:
        lines.append(r.summary())

    report = await campaign(
        tmp_path, kills=5, seed=2026, clients=4, bots_per_client=3, tables=3, progress=progress
    )
    print("\n".join(lines))
    print(report.summary())
    assert report.errors == []
    assert report.kills == 5 and report.restarts == 5
    assert len(lines) == 5
    # Load really ran, and every client really lost its connection and came back.
    assert report.acknowledged > 5
    assert report.reconnects >= report.bots == 12
    # Honest accounting, counted on both sides.
    assert report.found == report.acknowledged
    assert report.lost == 0
    assert report.duplicated == 0
    assert report.rejected_applied == 0
    assert report.unanswered_in_log == 0
    assert report.unresolved == 0
    # Convergence: every bot holds the store's head and its player's view there.
    assert report.converged == report.bots
    assert report.replayed == report.versions
    assert report.ok
