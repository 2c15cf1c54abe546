"""Helpers shared by the stores: the log columns of the SQL stores
(:mod:`~statesync.store.sqlite`, :mod:`~statesync.store.postgres`) and the fencing rule
every store applies."""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING, Any, TypeVar

from statesync.errors import FencedError
from statesync.records import LogRecord, decode_action, decode_delta

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

J = TypeVar("J")

LOG_COLUMNS = "version, epoch, action, delta, hash, ts"
"""The log columns :func:`to_record` reads, in order."""


def log_row(table_id: str, r: LogRecord) -> tuple[Any, ...]:
    """The column values of one log record: ``table_id, version, epoch, player_id,
    client_id, seq, type, action, delta, hash, ts``. Raises :class:`ValueError` for a record
    that cannot be stored (a non-native op)."""
    a = r.action
    return (
        table_id,
        r.version,
        r.epoch,
        a.player_id if a else None,
        a.client_id if a else None,
        a.seq if a else None,
        a.type if a else None,
        r.encode_action(),
        r.encode_delta(),
        r.hash,
        r.timestamp,
    )


def to_record(row: Sequence[Any]) -> LogRecord:
    """A log record from ``version, epoch, action, delta, hash, ts`` columns."""
    version, epoch, action, delta, hash_, ts = row
    return LogRecord(
        version, epoch, decode_action(bytes(action)), decode_delta(bytes(delta)), hash_, ts
    )


def check_consecutive(table_id: str, records: Sequence[LogRecord]) -> None:
    """Raise :class:`ValueError` unless the records' versions are consecutive."""
    for a, b in pairwise(records):
        if b.version != a.version + 1:
            raise ValueError(f"table {table_id!r}: records jump from {a.version} to {b.version}")


def check_fence(table_id: str, current: int, head: int, epoch: int, first: int | None) -> int:
    """Return ``head`` if a writer in ``epoch`` may write version ``first`` (``None``: no
    record, only the epoch is checked) to a table now in epoch ``current`` at ``head``;
    raise :class:`~statesync.errors.FencedError` otherwise."""
    if current != epoch:
        raise FencedError(
            f"table {table_id!r} is in epoch {current}, not {epoch}",
            table_id=table_id,
            head=head,
            epoch=current,
        )
    if first is not None and first != head + 1:
        raise FencedError(
            f"table {table_id!r}: version {first} does not follow head {head}",
            table_id=table_id,
            head=head,
            epoch=current,
        )
    return head


def take_batch(
    first: J, get_nowait: Callable[[], J | None], empty: type[Exception], limit: int
) -> tuple[list[J], bool]:
    """Group commit: ``first`` plus every job already waiting (``get_nowait`` until it raises
    ``empty``), at most ``limit`` in all. Returns the batch and whether the stop sentinel
    (``None``) was met."""
    batch = [first]
    while len(batch) < limit:
        try:
            nxt = get_nowait()
        except empty:
            break
        if nxt is None:
            return batch, True
        batch.append(nxt)
    return batch, False
