"""Crash test: a table in a child process is killed with SIGKILL at random moments (20
times); after each restart every acknowledged action is in the log exactly once and replay
verifies every hash."""

from __future__ import annotations

from typing import TYPE_CHECKING

from statesync.testing.crash import CrashReport, campaign

if TYPE_CHECKING:
    from pathlib import Path


async def test_sigkill_loses_no_acknowledged_action(tmp_path: Path) -> None:
    seen: list[str] = []

    def progress(r: CrashReport) -> None:
        seen.append(r.summary())

    report = await campaign(tmp_path, kills=20, seed=2026, progress=progress)
    print("\n".join(seen))
    assert report.errors == []
    assert report.kills == 20
    assert report.acknowledged > 20  # the children really made progress
    assert report.recovered == report.acknowledged and report.lost == 0
    assert report.duplicated == 0
    assert report.replayed == report.versions
