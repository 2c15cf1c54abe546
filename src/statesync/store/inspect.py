"""Reading a stored table at any version it still holds (for operator tools)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from statesync.delta import apply_ops
from statesync.errors import HashMismatchError, HistoryTruncatedError, VersionError
from statesync.hashing import IncrementalHash

if TYPE_CHECKING:
    from statesync.storage import Store


async def head_of(store: Store, table_id: str) -> int:
    """The newest version of ``table_id`` (raises TableNotFoundError)."""
    for info in await store.tables():
        if info.table_id == table_id:
            return info.head
    return (await store.load(table_id)).head  # raises TableNotFoundError


async def state_at(store: Store, table_id: str, version: int | None = None) -> dict[str, Any]:
    """The full state of ``table_id`` at ``version`` (default: the head), rebuilt from the
    nearest checkpoint at or before it and checked against every stored hash on the way.

    Raises :class:`~statesync.errors.HistoryTruncatedError` when compaction removed what
    is needed, :class:`~statesync.errors.VersionError` for a version after the head.
    """
    head = await head_of(store, table_id)
    target = head if version is None else version
    if target > head or target < 0:
        raise VersionError(
            f"table {table_id!r} has versions 0..{head}, not {target}", expected=head, actual=target
        )
    checkpoint = await store.checkpoint_at(table_id, target)
    if checkpoint is None:
        raise HistoryTruncatedError(
            f"version {target} of {table_id!r} was compacted away", actual=target
        )
    records = await store.read_log(table_id, checkpoint.version + 1, target)
    if len(records) != target - checkpoint.version:
        raise HistoryTruncatedError(
            f"the log of {table_id!r} no longer reaches version {target}", actual=target
        )
    state: Any = checkpoint.state
    hasher = IncrementalHash(state)
    for r in records:
        state = apply_ops(state, r.delta.ops, hasher=hasher)
        if hasher.hex != r.hash:
            raise HashMismatchError(
                f"{table_id!r} version {r.version}: stored hash {r.hash}, rebuilt {hasher.hex}",
                expected_hash=r.hash,
                actual_hash=hasher.hex,
                version=r.version,
            )
    return state  # type: ignore[no-any-return]
