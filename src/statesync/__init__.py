"""statesync: authoritative, versioned game-state synchronization for multiplayer games.

Write a game once as a :class:`Game` subclass; a :class:`StateSynchronizer` keeps each table's
authoritative state with gapless versions, deltas, hashes, per-player views, deterministic
conflict resolution, history and rollback::

    import asyncio
    from statesync import PlayerAction, StateSynchronizer
    from statesync.games import TicTacToe

    async def main():
        table = StateSynchronizer(TicTacToe(), players=["alice", "bob"], seed=7)
        [outcome] = await table.submit(
            [PlayerAction("alice", "alice-phone", 1, 0, "place", {"cell": 4})]
        )
        update = await table.sync_state(0, player_id="bob")  # delta or snapshot, bob's view

    asyncio.run(main())

The building blocks work on their own: :func:`diff`, :func:`patch`, :func:`compose`,
:func:`invert`, :class:`Delta` (with RFC 6902 import/export), :class:`Draft` (mutation
tracking), :func:`state_hash` and the :class:`WireEncoder`/:class:`WireDecoder` pair.

Tables are durable through a :class:`Store` (``statesync.store``: SQLite by default,
PostgreSQL by URL, memory for tests); an action is acknowledged only once it is committed::

    from statesync.store import open_store

    store = await open_store("statesync.db")
    table = await StateSynchronizer.create(TicTacToe(), store, "t1", players=["a", "b"])
    ...  # later, or in another process after a crash:
    table = await StateSynchronizer.load(store, "t1", TicTacToe())
"""

from __future__ import annotations

from statesync import reasons
from statesync.actions import Accepted, Outcome, PlayerAction, Rejected
from statesync.canonical import ENCODING_VERSION, canonical_bytes
from statesync.composition import compose, squash
from statesync.delta import Delta, patch
from statesync.diffing import diff
from statesync.draft import Draft
from statesync.errors import (
    ActionRejected,
    FencedError,
    GameError,
    HashMismatchError,
    HistoryTruncatedError,
    InvalidValueError,
    JsonPatchError,
    PatchError,
    PathError,
    StateSyncError,
    StoreCorruptError,
    StoreError,
    TableExistsError,
    TableNotFoundError,
    TestFailedError,
    VersionError,
    WireError,
)
from statesync.game import Context, Game, view_of
from statesync.hashing import IncrementalHash, state_hash
from statesync.history import History, HistoryEntry
from statesync.inversion import invert
from statesync.ops import Add, Copy, Move, Remove, Replace, Set, Splice, Test
from statesync.records import Checkpoint, LogRecord, TableMeta
from statesync.replay import ReplayReport, replay
from statesync.rng import Rng
from statesync.snapshot import StateDelta, StateSnapshot
from statesync.storage import RetentionPolicy, Store, StoredTable, TableInfo
from statesync.synchronizer import StateSynchronizer
from statesync.value import Value, check_value, strict_equal
from statesync.views import FULL
from statesync.wire import WireDecoder, WireEncoder

__version__ = "0.1.0"

__all__ = [
    "ENCODING_VERSION",
    "FULL",
    "Accepted",
    "ActionRejected",
    "Add",
    "Checkpoint",
    "Context",
    "Copy",
    "Delta",
    "Draft",
    "FencedError",
    "Game",
    "GameError",
    "HashMismatchError",
    "History",
    "HistoryEntry",
    "HistoryTruncatedError",
    "IncrementalHash",
    "InvalidValueError",
    "JsonPatchError",
    "LogRecord",
    "Move",
    "Outcome",
    "PatchError",
    "PathError",
    "PlayerAction",
    "Rejected",
    "Remove",
    "Replace",
    "ReplayReport",
    "RetentionPolicy",
    "Rng",
    "Set",
    "Splice",
    "StateDelta",
    "StateSnapshot",
    "StateSyncError",
    "StateSynchronizer",
    "Store",
    "StoreCorruptError",
    "StoreError",
    "StoredTable",
    "TableExistsError",
    "TableInfo",
    "TableMeta",
    "TableNotFoundError",
    "Test",
    "TestFailedError",
    "Value",
    "VersionError",
    "WireDecoder",
    "WireEncoder",
    "WireError",
    "canonical_bytes",
    "check_value",
    "compose",
    "diff",
    "invert",
    "patch",
    "reasons",
    "replay",
    "squash",
    "state_hash",
    "strict_equal",
    "view_of",
]
