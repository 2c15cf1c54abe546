"""The embedded default :class:`~statesync.storage.Store`: one SQLite file.

* **WAL** journal, so readers (operator tools, another process) never block the writer.
* **One writer thread** owns the connection; the event loop hands it jobs and awaits futures.
* **Group commit**: the writer takes every job waiting in its queue (up to ``max_batch``) and
  commits them in one transaction, each inside its own SAVEPOINT so that one job's failure
  (a fenced append) does not fail the others. A job's future resolves only after COMMIT.
* **Durability** (``synchronous``): ``"NORMAL"`` (default) survives a killed process -- a
  committed transaction is in the WAL file before COMMIT returns; ``"FULL"`` also fsyncs the
  WAL on every commit, so it survives power loss.
* **Appends on the spot** (``inline``, the default with ``"NORMAL"``): a commit that does not
  fsync costs a few tens of microseconds, less than handing it to the writer thread and
  back. So :meth:`SQLiteStore.append` commits on the calling thread, with a second
  connection that never waits for a lock: when the writer thread holds the write lock (a
  job in progress, another process writing), the append goes through the thread as above.
  That connection never checkpoints (which fsyncs); every :data:`CHECKPOINT_EVERY` inline
  commits, the writer thread runs a checkpoint instead. With ``"FULL"`` every
  commit fsyncs, so appends always go through the thread, which shares each fsync among the
  jobs waiting (group commit).

>>> import asyncio, tempfile, os
>>> async def main(folder: str) -> list[object]:
...     store = await SQLiteStore.open(os.path.join(folder, "t.db"))
...     try:
...         return await store.tables()
...     finally:
...         await store.close()
>>> with tempfile.TemporaryDirectory() as folder:
...     asyncio.run(main(folder))
[]
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from statesync.errors import FencedError, StoreError, TableExistsError, TableNotFoundError
from statesync.records import Checkpoint, LogRecord, TableMeta
from statesync.storage import RetentionPolicy, StoredTable, TableInfo
from statesync.store.rows import LOG_COLUMNS as _LOG_COLUMNS
from statesync.store.rows import (
    check_consecutive,
    check_fence,
    log_row,
    take_batch,
    to_record,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

log = logging.getLogger(__name__)
T = TypeVar("T")
SCHEMA_VERSION = 1
CHECKPOINT_EVERY = 256
"""Inline commits between two checkpoints, which the writer thread runs."""
CHECKPOINT_WAIT_MS = 100
"""How long such a checkpoint waits for readers (an operator's long query) before it gives
up for this round; appends meanwhile queue behind it."""
Sync = Literal["NORMAL", "FULL"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS statesync_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS statesync_tables (
    table_id TEXT PRIMARY KEY,
    game TEXT NOT NULL,
    meta BLOB NOT NULL,
    epoch INTEGER NOT NULL,
    fork INTEGER NOT NULL,
    head INTEGER NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS statesync_log (
    table_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    player_id TEXT,
    client_id TEXT,
    seq INTEGER,
    type TEXT,
    action BLOB NOT NULL,
    delta BLOB NOT NULL,
    hash TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (table_id, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS statesync_checkpoints (
    table_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    hash TEXT NOT NULL,
    body BLOB NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (table_id, version)
) WITHOUT ROWID;
"""

_INSERT_LOG = "INSERT INTO statesync_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


@dataclass
class _Job:
    fn: Callable[[sqlite3.Connection], Any]
    write: bool
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    alone: bool = False
    """Run outside any transaction of the writer's (a checkpoint, which waits for writers
    to finish: inside the writer's own transaction it would wait for itself)."""


def _deliver(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the awaiting task was cancelled; the write happened anyway
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class SQLiteStore:
    """Tables in one SQLite file (see the module docstring). Create with :meth:`open`."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Sync = "NORMAL",
        group_commit: bool = True,
        max_batch: int = 512,
        inline: bool | None = None,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        if inline and synchronous == "FULL":
            raise ValueError("inline appends would fsync on the event loop: not with FULL")
        self.path = str(path)
        self.synchronous = synchronous
        self.group_commit = group_commit
        self.max_batch = max_batch
        self.inline = synchronous == "NORMAL" if inline is None else inline
        """Whether appends commit on the calling thread when they can (module docstring)."""
        self.commits = 0
        """Transactions committed (with group commit, fewer than the writes)."""
        self.inline_commits = 0
        """Of :attr:`commits`, those made on the calling thread."""
        self._inline: sqlite3.Connection | None = None
        self._inline_thread = 0  # the thread that uses it (one: the event loop's)
        self._checkpointer: sqlite3.Connection | None = None
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="statesync-sqlite", daemon=True)
        self._thread.start()

    @classmethod
    async def open(cls, path: str | Path, **options: Any) -> SQLiteStore:
        """Open (creating or migrating the schema) the database at ``path``."""
        store = cls(path, **options)
        try:
            await store._call(store._migrate, write=True)
            if store.inline:
                store._inline = store._connect()
                store._inline.execute("PRAGMA busy_timeout=0")  # never waits for the lock
                store._inline.execute("PRAGMA wal_autocheckpoint=0")  # the thread does it
                store._inline_thread = threading.get_ident()
        except BaseException:
            await store.close()
            raise
        return store

    # ------------------------------------------------------------------ writer thread

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    def _try_inline(self, fn: Callable[[sqlite3.Connection], Any]) -> bool:
        """Run the write ``fn`` in its own transaction on the inline connection, now. Returns
        False, having done nothing, when it cannot: no inline connection, another thread,
        or the write lock is taken. Raises what ``fn`` raises (rolled back)."""
        conn = self._inline
        if conn is None or self._closed or threading.get_ident() != self._inline_thread:
            return False
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if e.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return False  # the writer thread (or another process) is writing: queue it
            raise _translate(e) from None
        try:
            fn(conn)
            conn.execute("COMMIT")
        except BaseException as e:
            if conn.in_transaction:
                conn.rollback()
            raise _translate(e) from None
        self.commits += 1
        self.inline_commits += 1
        if self.inline_commits % CHECKPOINT_EVERY == 0:
            self._checkpoint_soon()
        return True

    def _checkpoint_soon(self) -> None:
        """Have the writer thread copy the WAL into the database, as the inline connection
        never does. A RESTART checkpoint: it holds off writers while it runs (an inline
        append meanwhile finds the lock taken and goes through the thread, behind it), so
        the next write starts the WAL from its beginning and the file stays small."""

        def job(conn: sqlite3.Connection) -> None:
            # Its own connection: the writer's may hold a statement open, and a checkpoint
            # refuses to run beside one (SQLITE_LOCKED). Used by the writer thread only.
            if self._checkpointer is None:
                self._checkpointer = self._connect()
                # While it waits for readers it holds off writers: give up soon (it still
                # copies what it can) rather than stall the appends behind it.
                self._checkpointer.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
            self._checkpointer.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()

        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        future.add_done_callback(_log_checkpoint_failure)
        self._queue.put(_Job(job, False, future, loop, alone=True))

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            conn = self._connect()
        except sqlite3.Error as e:
            error = StoreError(f"cannot open SQLite database {self.path!r}: {e}")
            while (job := self._queue.get()) is not None:
                job.loop.call_soon_threadsafe(_deliver, job.future, None, error)
            return
        stop = False
        while not stop:
            job = self._queue.get()
            if job is None:
                break
            limit = self.max_batch if self.group_commit else 1
            batch, stop = take_batch(job, self._queue.get_nowait, queue.Empty, limit)
            self._execute(conn, batch)
        conn.close()
        if self._checkpointer is not None:
            self._checkpointer.close()

    def _execute(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        if len(batch) > 1 and any(job.alone for job in batch):
            for job in batch:
                if job.alone:
                    self._execute(conn, [job])
            batch = [job for job in batch if not job.alone]
            if not batch:
                return
        results: list[tuple[Any, BaseException | None]] = []
        if len(batch) == 1 and not batch[0].write:
            try:
                results.append((batch[0].fn(conn), None))
            except BaseException as e:
                results.append((None, _translate(e)))
        elif len(batch) == 1:  # one write: its own transaction, no savepoint needed
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    results.append((batch[0].fn(conn), None))
                except BaseException as e:
                    conn.rollback()
                    results.append((None, _translate(e)))
                else:
                    conn.execute("COMMIT")
                    self.commits += 1
            except BaseException as e:
                if conn.in_transaction:
                    conn.rollback()
                results = [(None, _translate(e))]
        else:
            try:
                conn.execute("BEGIN IMMEDIATE")
                for job in batch:
                    conn.execute("SAVEPOINT job")
                    try:
                        results.append((job.fn(conn), None))
                        conn.execute("RELEASE job")
                    except BaseException as e:
                        conn.execute("ROLLBACK TO job")
                        conn.execute("RELEASE job")
                        results.append((None, _translate(e)))
                conn.execute("COMMIT")
                self.commits += 1
            except BaseException as e:
                if conn.in_transaction:
                    conn.rollback()
                failed = _translate(e)
                results = [(None, failed)] * len(batch)
        for job, (result, error) in zip(batch, results, strict=True):
            job.loop.call_soon_threadsafe(_deliver, job.future, result, error)

    async def _call(self, fn: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        if self._closed:
            raise StoreError("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(fn, write, future, loop))
        return await future

    # ------------------------------------------------------------------ jobs

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        row = conn.execute("SELECT version FROM statesync_schema").fetchone()
        if row is None:
            conn.execute("INSERT INTO statesync_schema VALUES (?)", (SCHEMA_VERSION,))
        elif row[0] > SCHEMA_VERSION:
            raise StoreError(
                f"database schema version {row[0]} is newer than this statesync ({SCHEMA_VERSION})"
            )

    async def create_table(self, meta: TableMeta, checkpoint: Checkpoint) -> None:
        blob, body = meta.encode(), checkpoint.encode()

        def job(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO statesync_tables VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
                    (
                        meta.table_id,
                        meta.game,
                        blob,
                        checkpoint.epoch,
                        checkpoint.version,
                        meta.created,
                        checkpoint.timestamp,
                    ),
                )
            except sqlite3.IntegrityError:
                raise TableExistsError(f"table {meta.table_id!r} already exists") from None
            _put_checkpoint(conn, meta.table_id, checkpoint, body)

        await self._call(job, write=True)

    async def append(
        self,
        table_id: str,
        epoch: int,
        records: Sequence[LogRecord],
        checkpoint: Checkpoint | None = None,
    ) -> None:
        rows = [log_row(table_id, r) for r in records]
        check_consecutive(table_id, records)
        body = checkpoint.encode() if checkpoint is not None else None
        first = records[0].version if records else None

        def job(conn: sqlite3.Connection) -> None:
            if first is None:
                head = last = _fence(conn, table_id, epoch, None)
            else:
                # The fence and the new head in one statement; only when it matches nothing
                # is the table read, to say why.
                head, last = first - 1, records[-1].version
                moved = conn.execute(
                    "UPDATE statesync_tables SET head = ?, updated = ? "
                    "WHERE table_id = ? AND epoch = ? AND head = ?",
                    (last, records[-1].timestamp, table_id, epoch, head),
                ).rowcount
                if moved != 1:
                    _fence(conn, table_id, epoch, first)
                    raise AssertionError("the fence refused a write it then allowed")
                try:
                    if len(rows) == 1:
                        conn.execute(_INSERT_LOG, rows[0])
                    else:
                        conn.executemany(_INSERT_LOG, rows)
                except sqlite3.IntegrityError:
                    raise FencedError(
                        f"table {table_id!r}: version {first} was written by another writer",
                        table_id=table_id,
                    ) from None
            if checkpoint is not None and body is not None:
                if not head <= checkpoint.version <= last:
                    raise ValueError(f"checkpoint {checkpoint.version} is outside {head}..{last}")
                _put_checkpoint(conn, table_id, checkpoint, body)

        if not self._try_inline(job):
            await self._call(job, write=True)

    async def reset(self, table_id: str, epoch: int, checkpoint: Checkpoint) -> None:
        body = checkpoint.encode()
        v = checkpoint.version

        def job(conn: sqlite3.Connection) -> None:
            head = _fence(conn, table_id, epoch, None)
            if checkpoint.epoch <= epoch or v > head:
                raise ValueError("reset needs a newer epoch and a version at or before the head")
            conn.execute(
                "DELETE FROM statesync_log WHERE table_id = ? AND version > ?", (table_id, v)
            )
            conn.execute(
                "DELETE FROM statesync_checkpoints WHERE table_id = ? AND version >= ?",
                (table_id, v),
            )
            _put_checkpoint(conn, table_id, checkpoint, body)
            conn.execute(
                "UPDATE statesync_tables SET epoch = ?, fork = ?, head = ?, updated = ? "
                "WHERE table_id = ?",
                (checkpoint.epoch, v, v, checkpoint.timestamp, table_id),
            )

        await self._call(job, write=True)

    async def load(self, table_id: str, *, retain: int = 0) -> StoredTable:
        def job(conn: sqlite3.Connection) -> StoredTable:
            row = conn.execute(
                "SELECT meta, epoch, fork, head FROM statesync_tables WHERE table_id = ?",
                (table_id,),
            ).fetchone()
            if row is None:
                raise TableNotFoundError(f"no table {table_id!r}")
            meta, epoch, fork, head = row
            cp = (
                conn.execute(
                    "SELECT body FROM statesync_checkpoints WHERE table_id = ? AND version <= ? "
                    "ORDER BY version DESC LIMIT 1",
                    (table_id, head - retain),
                ).fetchone()
                or conn.execute(
                    "SELECT body FROM statesync_checkpoints WHERE table_id = ? "
                    "ORDER BY version LIMIT 1",
                    (table_id,),
                ).fetchone()
            )
            if cp is None:
                raise StoreError(f"table {table_id!r} has no checkpoint")
            checkpoint = Checkpoint.decode(bytes(cp[0]))
            rows = conn.execute(
                f"SELECT {_LOG_COLUMNS} FROM statesync_log WHERE table_id = ? AND version > ? "
                "ORDER BY version",
                (table_id, checkpoint.version),
            ).fetchall()
            return StoredTable(
                TableMeta.decode(bytes(meta)), checkpoint, [to_record(r) for r in rows], epoch, fork
            )

        return await self._call(job, write=False)

    async def read_log(self, table_id: str, start: int, stop: int) -> list[LogRecord]:
        def job(conn: sqlite3.Connection) -> list[LogRecord]:
            _exists(conn, table_id)
            rows = conn.execute(
                f"SELECT {_LOG_COLUMNS} FROM statesync_log WHERE table_id = ? "
                "AND version BETWEEN ? AND ? ORDER BY version",
                (table_id, start, stop),
            ).fetchall()
            return [to_record(r) for r in rows]

        return await self._call(job, write=False)

    async def checkpoint_at(self, table_id: str, version: int) -> Checkpoint | None:
        def job(conn: sqlite3.Connection) -> Checkpoint | None:
            _exists(conn, table_id)
            row = conn.execute(
                "SELECT body FROM statesync_checkpoints WHERE table_id = ? AND version <= ? "
                "ORDER BY version DESC LIMIT 1",
                (table_id, version),
            ).fetchone()
            return Checkpoint.decode(bytes(row[0])) if row else None

        return await self._call(job, write=False)

    async def tables(self) -> list[TableInfo]:
        def job(conn: sqlite3.Connection) -> list[TableInfo]:
            rows = conn.execute(
                "SELECT t.table_id, t.game, t.epoch, t.head, t.created, t.updated, "
                "(SELECT MIN(version) FROM statesync_checkpoints c WHERE c.table_id = t.table_id) "
                "FROM statesync_tables t ORDER BY t.table_id"
            ).fetchall()
            return [TableInfo(*r) for r in rows]

        return await self._call(job, write=False)

    async def compact(self, table_id: str, policy: RetentionPolicy) -> int:
        def job(conn: sqlite3.Connection) -> int:
            head = _exists(conn, table_id)
            kept = conn.execute(
                "SELECT version FROM statesync_checkpoints WHERE table_id = ? "
                "ORDER BY version DESC LIMIT ?",
                (table_id, policy.keep_checkpoints),
            ).fetchall()
            oldest = kept[-1][0]
            floor = min(oldest, head - policy.keep_versions)
            conn.execute(
                "DELETE FROM statesync_checkpoints WHERE table_id = ? AND version < ?",
                (table_id, oldest),
            )
            cur = conn.execute(
                "DELETE FROM statesync_log WHERE table_id = ? AND version <= ?", (table_id, floor)
            )
            return cur.rowcount

        return await self._call(job, write=True)

    async def close(self) -> None:
        """Finish queued jobs, then stop the writer thread and close the connection."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)
        if self._inline is not None:
            self._inline.close()
            self._inline = None


def _exists(conn: sqlite3.Connection, table_id: str) -> int:
    row = conn.execute(
        "SELECT head FROM statesync_tables WHERE table_id = ?", (table_id,)
    ).fetchone()
    if row is None:
        raise TableNotFoundError(f"no table {table_id!r}")
    return int(row[0])


def _fence(conn: sqlite3.Connection, table_id: str, epoch: int, first: int | None) -> int:
    """The table's head, after checking that ``epoch`` is current and ``first`` follows it."""
    row = conn.execute(
        "SELECT epoch, head FROM statesync_tables WHERE table_id = ?", (table_id,)
    ).fetchone()
    if row is None:
        raise TableNotFoundError(f"no table {table_id!r}")
    return check_fence(table_id, int(row[0]), int(row[1]), epoch, first)


def _put_checkpoint(
    conn: sqlite3.Connection, table_id: str, checkpoint: Checkpoint, body: bytes
) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO statesync_checkpoints VALUES (?, ?, ?, ?, ?, ?)",
        (
            table_id,
            checkpoint.version,
            checkpoint.epoch,
            checkpoint.hash,
            body,
            checkpoint.timestamp,
        ),
    )


def _log_checkpoint_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("statesync SQLite checkpoint failed: %s", future.exception())


def _translate(e: BaseException) -> BaseException:
    if isinstance(e, sqlite3.Error):
        return StoreError(f"SQLite error: {e}")
    return e
