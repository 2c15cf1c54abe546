"""Re-run a stored log through the rules and check every hash (``statesync replay``).

Loading a table (:meth:`StateSynchronizer.load`) trusts the stored deltas and checks their
hashes. :func:`replay` trusts nothing but the rules: it starts from a checkpoint and submits
every logged action again, one by one, and checks that each is accepted, creates the same
version, and leaves the state with the hash the log recorded. The first divergence is
reported with both hashes. Records without an action (a replica's deltas) are applied as
deltas.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from statesync.actions import Accepted
from statesync.errors import HashMismatchError, StateSyncError
from statesync.snapshot import StateDelta
from statesync.synchronizer import StateSynchronizer

if TYPE_CHECKING:
    from collections.abc import Callable

    from statesync.game import Game
    from statesync.storage import StoredTable


@dataclass(frozen=True, slots=True)
class Divergence:
    """Where a replay first disagreed with the log."""

    version: int
    expected_hash: str
    actual_hash: str | None
    reason: str

    def __str__(self) -> str:
        got = self.actual_hash or "-"
        return f"version {self.version}: {self.reason} (log {self.expected_hash}, replay {got})"


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """The result of :func:`replay`: ``checked`` versions from ``start + 1`` agreed."""

    table_id: str
    start: int
    head: int
    checked: int
    divergence: Divergence | None

    @property
    def ok(self) -> bool:
        return self.divergence is None


def replay(
    stored: StoredTable,
    game: Game,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayReport:
    """Re-run ``stored.records`` through ``game`` from ``stored.checkpoint``.

    ``progress(done, total)`` is called now and then on long logs.

    >>> import asyncio
    >>> from statesync.games import TicTacToe
    >>> from statesync.store import MemoryStore
    >>> from statesync.actions import PlayerAction
    >>> async def demo() -> ReplayReport:
    ...     store = MemoryStore()
    ...     t = await StateSynchronizer.create(TicTacToe(), store, "t", players=["a", "b"])
    ...     await t.submit([PlayerAction("a", "a1", 1, 0, "place", {"cell": 4})])
    ...     return replay(await store.load("t", retain=10**9), TicTacToe())
    >>> asyncio.run(demo()).ok
    True
    """
    start = replace(stored, records=[], epoch=stored.checkpoint.epoch)
    table = StateSynchronizer.restore(start, game)
    total = len(stored.records)
    checked = 0
    for i, r in enumerate(stored.records):
        if progress is not None and i % 1000 == 0:
            progress(i, total)
        if r.action is None:  # a replica's delta: apply it (the hash is checked below)
            try:
                table.apply(StateDelta(table.version, r.version, r.delta, r.hash, table.epoch))
            except HashMismatchError as e:
                return _report(
                    stored, checked, Divergence(r.version, r.hash, e.actual_hash, "hash differs")
                )
            except StateSyncError as e:
                return _report(stored, checked, Divergence(r.version, r.hash, None, str(e)))
        else:
            [outcome] = table.submit_nowait([r.action])
            if not isinstance(outcome, Accepted) or outcome.duplicate:
                why = "a duplicate" if outcome.ok else f"rejected ({outcome.code})"  # type: ignore[union-attr]
                return _report(
                    stored, checked, Divergence(r.version, r.hash, None, f"the action was {why}")
                )
            if outcome.version != r.version:
                return _report(
                    stored,
                    checked,
                    Divergence(r.version, r.hash, None, f"it created version {outcome.version}"),
                )
        if table.hash != r.hash:
            return _report(
                stored, checked, Divergence(r.version, r.hash, table.hash, "hash differs")
            )
        checked += 1
    if progress is not None:
        progress(total, total)
    return _report(stored, checked, None)


def _report(stored: StoredTable, checked: int, divergence: Divergence | None) -> ReplayReport:
    return ReplayReport(
        stored.meta.table_id, stored.checkpoint.version, stored.head, checked, divergence
    )
