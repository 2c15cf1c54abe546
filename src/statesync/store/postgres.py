"""The server :class:`~statesync.storage.Store`: PostgreSQL through an asyncpg pool.

* **Schema.** Everything lives in one PostgreSQL schema (``statesync`` unless told), created
  on :meth:`PostgresStore.open` together with the same four tables as the SQLite store. Two
  processes opening the same schema at once serialize on a transaction-scoped advisory lock,
  and a database whose schema version is newer than this code is refused.
* **One writer task** owns one connection of its own; every write is a job on an
  :class:`asyncio.Queue` and the caller awaits the job's future. Reads run on a pool of
  ``pool_size`` other connections, concurrently with the writer (:meth:`~PostgresStore.load`
  inside a read-only REPEATABLE READ transaction, so meta, checkpoint and records are one
  snapshot). A lost writer connection fails the batch it was running and is reopened.
* **Group commit.** The writer takes every job waiting in the queue (up to ``max_batch``)
  and runs them in one transaction, each inside its own SAVEPOINT so that one job's failure
  (a fenced append) does not fail the others. A job's future resolves only after COMMIT; if
  COMMIT itself fails, every job of the batch fails. Jobs of a batch run ordered by table id
  (stably, so one table's jobs keep their order), so two processes writing the same tables
  lock rows in the same order and cannot deadlock. ``group_commit=False`` commits each job
  in a transaction of its own. :attr:`PostgresStore.commits` counts committed transactions.
  Each savepoint that writes is a PostgreSQL subtransaction; a batch of more than 64 of
  them overflows the server's per-backend subtransaction cache, which slows snapshots of
  other sessions on a busy server -- lower ``max_batch`` if that shows.
* **Fencing.** An append locks its table's row (``SELECT epoch, head ... FOR UPDATE``),
  checks that the epoch is current and that the first record is exactly head + 1, then
  inserts the records and moves the head (one statement). A second writer -- another
  process, with its own store -- blocks on the row lock until the first commits, then sees
  the new head and is fenced (:class:`~statesync.errors.FencedError`); the primary key on
  ``(table_id, version)`` is the backstop (a unique violation is reported as fenced too).
* **Durability.** With ``synchronous_commit=True`` (the default, and the server's default)
  COMMIT returns only after the transaction's WAL is flushed to disk, so an acknowledged
  write survives a server crash. ``synchronous_commit=False`` sets ``synchronous_commit =
  off`` on the writer connection: commits are cheaper (no wait for the WAL flush) and still
  atomic, but the last transactions acknowledged before a *server* crash (up to about three
  ``wal_writer_delay`` worth) can be lost -- the store is then no longer durable on return.
  If the connection drops during COMMIT the outcome is unknown: the jobs fail with
  :class:`~statesync.errors.StoreError` though they may have committed; retrying such an
  append is fenced if it did, and the writer reloads the table.

Connection and server errors surface as :class:`~statesync.errors.StoreError`; the URL in
messages has its password masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

from statesync.errors import FencedError, StoreError, TableExistsError, TableNotFoundError
from statesync.records import Checkpoint, LogRecord, TableMeta
from statesync.storage import RetentionPolicy, StoredTable, TableInfo
from statesync.store.rows import (
    LOG_COLUMNS,
    check_consecutive,
    check_fence,
    log_row,
    take_batch,
    to_record,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

T = TypeVar("T")
SCHEMA_VERSION = 1
"""Version of the tables below (the same as the SQLite store's)."""

_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# asyncpg is untyped: a connection (or pool) is ``Any``, confined to this module.
_Conn = Any

_DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,  # includes ConnectionError and TimeoutError
)

_TABLES = """
CREATE TABLE IF NOT EXISTS {s}.statesync_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.statesync_tables (
    table_id TEXT PRIMARY KEY,
    game TEXT NOT NULL,
    meta BYTEA NOT NULL,
    epoch BIGINT NOT NULL,
    fork BIGINT NOT NULL,
    head BIGINT NOT NULL,
    created DOUBLE PRECISION NOT NULL,
    updated DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.statesync_log (
    table_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    epoch BIGINT NOT NULL,
    player_id TEXT,
    client_id TEXT,
    seq BIGINT,
    type TEXT,
    action BYTEA NOT NULL,
    delta BYTEA NOT NULL,
    hash TEXT NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (table_id, version)
);
CREATE TABLE IF NOT EXISTS {s}.statesync_checkpoints (
    table_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    epoch BIGINT NOT NULL,
    hash TEXT NOT NULL,
    body BYTEA NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (table_id, version)
);
"""


class _SQL:
    """The statements, with table names qualified by the (validated, quoted) schema."""

    def __init__(self, schema: str) -> None:
        s = f'"{schema}"'
        t, log, cps = f"{s}.statesync_tables", f"{s}.statesync_log", f"{s}.statesync_checkpoints"
        self.tables_ddl = _TABLES.format(s=s)
        self.schema_version = f"SELECT version FROM {s}.statesync_schema"
        self.set_schema_version = f"INSERT INTO {s}.statesync_schema VALUES ($1)"
        self.create = f"INSERT INTO {t} VALUES ($1, $2, $3, $4, 0, $5, $6, $7)"
        self.fence = f"SELECT epoch, head FROM {t} WHERE table_id = $1 FOR UPDATE"
        self.head = f"SELECT head FROM {t} WHERE table_id = $1"
        self.head_locked = f"SELECT head FROM {t} WHERE table_id = $1 FOR UPDATE"
        self.append = (  # insert the records and move the head, in one round trip
            f"WITH rows AS (INSERT INTO {log} (table_id, version, epoch, player_id, client_id, "
            "seq, type, action, delta, hash, ts) SELECT $1, * FROM unnest($4::bigint[], "
            "$5::bigint[], $6::text[], $7::text[], $8::bigint[], $9::text[], $10::bytea[], "
            "$11::bytea[], $12::text[], $13::float8[])) "
            f"UPDATE {t} SET head = $2, updated = $3 WHERE table_id = $1"
        )
        self.put_checkpoint = (
            f"INSERT INTO {cps} (table_id, version, epoch, hash, body, ts) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (table_id, version) DO UPDATE SET "
            "epoch = EXCLUDED.epoch, hash = EXCLUDED.hash, body = EXCLUDED.body, ts = EXCLUDED.ts"
        )
        self.reset_log = f"DELETE FROM {log} WHERE table_id = $1 AND version > $2"
        self.reset_checkpoints = f"DELETE FROM {cps} WHERE table_id = $1 AND version >= $2"
        self.reset_table = (
            f"UPDATE {t} SET epoch = $2, fork = $3, head = $3, updated = $4 WHERE table_id = $1"
        )
        self.load_table = f"SELECT meta, epoch, fork, head FROM {t} WHERE table_id = $1"
        self.checkpoint_at = (
            f"SELECT body FROM {cps} WHERE table_id = $1 AND version <= $2 "
            "ORDER BY version DESC LIMIT 1"
        )
        self.oldest_checkpoint = (
            f"SELECT body FROM {cps} WHERE table_id = $1 ORDER BY version LIMIT 1"
        )
        self.log_after = (
            f"SELECT {LOG_COLUMNS} FROM {log} WHERE table_id = $1 AND version > $2 ORDER BY version"
        )
        self.log_range = (
            f"SELECT {LOG_COLUMNS} FROM {log} WHERE table_id = $1 "
            "AND version BETWEEN $2 AND $3 ORDER BY version"
        )
        self.list_tables = (
            "SELECT t.table_id, t.game, t.epoch, t.head, t.created, t.updated, "
            f"(SELECT MIN(version) FROM {cps} c WHERE c.table_id = t.table_id) "
            f"FROM {t} t ORDER BY t.table_id"
        )
        self.kept_checkpoints = (
            f"SELECT version FROM {cps} WHERE table_id = $1 ORDER BY version DESC LIMIT $2"
        )
        self.drop_checkpoints = f"DELETE FROM {cps} WHERE table_id = $1 AND version < $2"
        self.drop_log = f"DELETE FROM {log} WHERE table_id = $1 AND version <= $2"


@dataclass
class _Job:
    table_id: str
    fn: Callable[[_Conn], Awaitable[Any]]
    future: asyncio.Future[Any]


def _deliver(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the awaiting task was cancelled; the write happened anyway
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def redact(url: str) -> str:
    """``url`` with its password masked, for messages.

    >>> redact("postgresql://ann:secret@db:5432/x")
    'postgresql://ann:***@db:5432/x'
    """
    try:
        parts = urllib.parse.urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            netloc = f"{parts.username or ''}:***@{netloc.rpartition('@')[2]}"
        query = urllib.parse.urlencode(
            [
                (k, "***" if k.lower() == "password" else v)
                for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
            ]
        )
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return "<unparsable URL>"


def _translate(e: BaseException, context: str = "PostgreSQL error") -> BaseException:
    """A :class:`StoreError` for a driver, server or network error; other errors as they are."""
    if isinstance(e, _DB_ERRORS):
        error = StoreError(f"{context}: {type(e).__name__}: {e}")
        error.__cause__ = e
        return error
    return e


def _original(e: BaseException) -> BaseException:
    """The first driver error behind ``e`` (a failed ROLLBACK hides the error that caused it)."""
    while isinstance(e.__context__, _DB_ERRORS) and e.__context__ is not e:
        e = e.__context__
    return e


def _lock_key(schema: str) -> int:
    """A stable signed 64-bit advisory-lock key for the schema's migrations."""
    digest = hashlib.blake2b(f"statesync:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresStore:
    """Tables in a PostgreSQL schema (see the module docstring). Create with :meth:`open`."""

    def __init__(
        self,
        url: str,
        *,
        schema: str = "statesync",
        group_commit: bool = True,
        max_batch: int = 512,
        pool_size: int = 4,
        synchronous_commit: bool = True,
    ) -> None:
        if not _SCHEMA_NAME.fullmatch(schema):
            raise ValueError(f"schema must match [A-Za-z_][A-Za-z0-9_]*, not {schema!r}")
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self.url = url
        self.schema = schema
        self.group_commit = group_commit
        self.max_batch = max_batch
        self.pool_size = pool_size
        self.synchronous_commit = synchronous_commit
        self.commits = 0
        """Transactions committed (with group commit, fewer than the writes)."""
        self._sql = _SQL(schema)
        self._server_settings = {"application_name": "statesync"}
        self._pool: _Conn = None
        self._writer_conn: _Conn = None
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self._close_done = asyncio.Event()

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        schema: str = "statesync",
        group_commit: bool = True,
        max_batch: int = 512,
        pool_size: int = 4,
        synchronous_commit: bool = True,
    ) -> PostgresStore:
        """Connect to the database at ``url`` and create (or check) the schema and its
        tables. Reads use a pool of up to ``pool_size`` connections; the writer has one
        connection of its own (reopened if it is lost)."""
        store = cls(
            url,
            schema=schema,
            group_commit=group_commit,
            max_batch=max_batch,
            pool_size=pool_size,
            synchronous_commit=synchronous_commit,
        )
        try:
            store._pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=pool_size,
                server_settings=store._server_settings,
            )
            async with store._pool.acquire() as conn:
                await store._migrate(conn)
            await store._connection()
        except BaseException as e:
            await store._shutdown()
            if isinstance(e, _DB_ERRORS):
                context = f"cannot open PostgreSQL store {redact(url)!r} (schema {schema!r})"
                raise _translate(e, context) from e
            raise
        store._writer = asyncio.create_task(store._run(), name=f"statesync-pg-{schema}")
        return store

    async def _migrate(self, conn: _Conn) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(self.schema))
            exists = await conn.fetchval(
                "SELECT 1 FROM pg_namespace WHERE nspname = $1", self.schema
            )
            if not exists:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await conn.execute(self._sql.tables_ddl)
            version = await conn.fetchval(self._sql.schema_version)
            if version is None:
                await conn.execute(self._sql.set_schema_version, SCHEMA_VERSION)
            elif version > SCHEMA_VERSION:
                raise StoreError(
                    f"database schema version {version} is newer than this statesync "
                    f"({SCHEMA_VERSION})"
                )

    # ------------------------------------------------------------------ writer task

    async def _run(self) -> None:
        batch: list[_Job] = []
        try:
            stop = False
            while not stop:
                job = await self._queue.get()
                if job is None:
                    break
                limit = self.max_batch if self.group_commit else 1
                batch, stop = take_batch(job, self._queue.get_nowait, asyncio.QueueEmpty, limit)
                try:
                    await self._execute(batch)
                except Exception as e:  # a bug: fail the batch, keep the writer alive
                    failed = StoreError(f"PostgreSQL store writer failed: {e!r}")
                    for job in batch:
                        _deliver(job.future, None, failed)
                batch = []
        finally:
            error = StoreError("the store was closed before the write was committed")
            for job in batch:
                _deliver(job.future, None, error)
            while not self._queue.empty():
                pending = self._queue.get_nowait()
                if pending is not None:
                    _deliver(pending.future, None, error)
            await self._release_writer()

    async def _connection(self) -> _Conn:
        """The writer's own connection, (re)opened if it is gone."""
        conn = self._writer_conn
        if conn is not None and not conn.is_closed():
            return conn
        await self._release_writer()
        conn = await asyncpg.connect(self.url, server_settings=self._server_settings)
        try:
            if not self.synchronous_commit:
                await conn.execute("SET synchronous_commit = off")
        except BaseException:
            conn.terminate()
            raise
        self._writer_conn = conn
        return conn

    async def _release_writer(self) -> None:
        conn, self._writer_conn = self._writer_conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):  # the connection is being dropped anyway
            if conn.is_closed():
                return
            if conn.is_in_transaction():
                conn.terminate()  # a transaction in an unknown state: never reuse it
            else:
                await asyncio.wait_for(conn.close(), timeout=10)
        if not conn.is_closed():
            conn.terminate()

    async def _execute(self, batch: list[_Job]) -> None:
        batch.sort(key=lambda job: job.table_id)  # stable: a table's jobs keep their order
        results: list[tuple[Any, BaseException | None]] = []
        lone_error: BaseException | None = None
        committing = False
        try:
            conn = await self._connection()
            async with conn.transaction():
                if len(batch) == 1:  # the transaction itself isolates a lone job
                    try:
                        results.append((await batch[0].fn(conn), None))
                    except Exception as e:
                        lone_error = _translate(e)
                        raise
                else:
                    # One savepoint per job; releasing one and setting the next share a
                    # round trip (a multi-statement simple query).
                    await conn.execute("SAVEPOINT job")
                    for i, job in enumerate(batch):
                        if i:
                            await conn.execute("RELEASE SAVEPOINT job; SAVEPOINT job")
                        try:
                            results.append((await job.fn(conn), None))
                        except Exception as e:
                            if conn.is_closed():
                                raise
                            await conn.execute("ROLLBACK TO SAVEPOINT job")
                            results.append((None, _translate(e)))
                committing = True  # leaving the block runs COMMIT
            self.commits += 1
        except Exception as e:
            if lone_error is not None:  # the job failed and was rolled back
                results = [(None, lone_error)]
            else:
                context = "PostgreSQL write transaction failed"
                if committing and self._writer_conn is not None and self._writer_conn.is_closed():
                    context = "PostgreSQL connection lost during COMMIT (the outcome is unknown)"
                failed = _translate(_original(e), context)
                results = [(None, failed)] * len(batch)
            conn = self._writer_conn
            if conn is not None and (conn.is_closed() or conn.is_in_transaction()):
                await self._release_writer()
        for job, (result, outcome) in zip(batch, results, strict=True):
            _deliver(job.future, result, outcome)

    async def _write(self, table_id: str, fn: Callable[[_Conn], Awaitable[T]]) -> T:
        if self._closed:
            raise StoreError("the store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(table_id, fn, future))
        return await future

    async def _read(self, fn: Callable[[_Conn], Awaitable[T]]) -> T:
        if self._closed:
            raise StoreError("the store is closed")
        try:
            async with self._pool.acquire() as conn:
                return await fn(conn)
        except _DB_ERRORS as e:
            raise _translate(e) from e

    # ------------------------------------------------------------------ jobs

    async def create_table(self, meta: TableMeta, checkpoint: Checkpoint) -> None:
        blob, body = meta.encode(), checkpoint.encode()
        sql = self._sql

        async def job(conn: _Conn) -> None:
            try:
                await conn.execute(
                    sql.create,
                    meta.table_id,
                    meta.game,
                    blob,
                    checkpoint.epoch,
                    checkpoint.version,
                    meta.created,
                    checkpoint.timestamp,
                )
            except asyncpg.UniqueViolationError:
                raise TableExistsError(f"table {meta.table_id!r} already exists") from None
            await _put_checkpoint(conn, sql, meta.table_id, checkpoint, body)

        await self._write(meta.table_id, job)

    async def append(
        self,
        table_id: str,
        epoch: int,
        records: Sequence[LogRecord],
        checkpoint: Checkpoint | None = None,
    ) -> None:
        rows = [log_row(table_id, r) for r in records]
        check_consecutive(table_id, records)
        columns = [list(c) for c in zip(*rows, strict=True)][1:] if rows else []
        body = checkpoint.encode() if checkpoint is not None else None
        first = records[0].version if records else None
        sql = self._sql

        async def job(conn: _Conn) -> None:
            head = await _fence(conn, sql, table_id, epoch, first)
            last = records[-1].version if records else head
            if rows:
                try:
                    await conn.execute(sql.append, table_id, last, records[-1].timestamp, *columns)
                except asyncpg.UniqueViolationError:
                    raise FencedError(
                        f"table {table_id!r}: version {first} was written by another writer",
                        table_id=table_id,
                    ) from None
            if checkpoint is not None and body is not None:
                if not head <= checkpoint.version <= last:
                    raise ValueError(f"checkpoint {checkpoint.version} is outside {head}..{last}")
                await _put_checkpoint(conn, sql, table_id, checkpoint, body)

        await self._write(table_id, job)

    async def reset(self, table_id: str, epoch: int, checkpoint: Checkpoint) -> None:
        body = checkpoint.encode()
        v = checkpoint.version
        sql = self._sql

        async def job(conn: _Conn) -> None:
            head = await _fence(conn, sql, table_id, epoch, None)
            if checkpoint.epoch <= epoch or v > head:
                raise ValueError("reset needs a newer epoch and a version at or before the head")
            await conn.execute(sql.reset_log, table_id, v)
            await conn.execute(sql.reset_checkpoints, table_id, v)
            await _put_checkpoint(conn, sql, table_id, checkpoint, body)
            await conn.execute(sql.reset_table, table_id, checkpoint.epoch, v, checkpoint.timestamp)

        await self._write(table_id, job)

    async def load(self, table_id: str, *, retain: int = 0) -> StoredTable:
        sql = self._sql

        async def job(conn: _Conn) -> StoredTable:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                row = await conn.fetchrow(sql.load_table, table_id)
                if row is None:
                    raise TableNotFoundError(f"no table {table_id!r}")
                meta, epoch, fork, head = row
                cp = await conn.fetchval(sql.checkpoint_at, table_id, head - retain)
                if cp is None:
                    cp = await conn.fetchval(sql.oldest_checkpoint, table_id)
                if cp is None:
                    raise StoreError(f"table {table_id!r} has no checkpoint")
                checkpoint = Checkpoint.decode(bytes(cp))
                rows = await conn.fetch(sql.log_after, table_id, checkpoint.version)
            return StoredTable(
                TableMeta.decode(bytes(meta)),
                checkpoint,
                [to_record(r) for r in rows],
                int(epoch),
                int(fork),
            )

        return await self._read(job)

    async def read_log(self, table_id: str, start: int, stop: int) -> list[LogRecord]:
        sql = self._sql

        async def job(conn: _Conn) -> list[LogRecord]:
            await _exists(conn, sql, table_id)
            rows = await conn.fetch(sql.log_range, table_id, start, stop)
            return [to_record(r) for r in rows]

        return await self._read(job)

    async def checkpoint_at(self, table_id: str, version: int) -> Checkpoint | None:
        sql = self._sql

        async def job(conn: _Conn) -> Checkpoint | None:
            await _exists(conn, sql, table_id)
            body = await conn.fetchval(sql.checkpoint_at, table_id, version)
            return Checkpoint.decode(bytes(body)) if body is not None else None

        return await self._read(job)

    async def tables(self) -> list[TableInfo]:
        sql = self._sql

        async def job(conn: _Conn) -> list[TableInfo]:
            rows = await conn.fetch(sql.list_tables)
            return [TableInfo(*r) for r in rows]

        return await self._read(job)

    async def compact(self, table_id: str, policy: RetentionPolicy) -> int:
        sql = self._sql

        async def job(conn: _Conn) -> int:
            head = await _exists(conn, sql, table_id, lock=True)
            kept = await conn.fetch(sql.kept_checkpoints, table_id, policy.keep_checkpoints)
            oldest = int(kept[-1][0])
            floor = min(oldest, head - policy.keep_versions)
            await conn.execute(sql.drop_checkpoints, table_id, oldest)
            status = await conn.execute(sql.drop_log, table_id, floor)
            return int(str(status).rsplit(" ", 1)[-1])  # "DELETE <n>"

        return await self._write(table_id, job)

    async def close(self) -> None:
        """Finish queued writes, then stop the writer task and close the pool. Idempotent."""
        if self._closed:
            await self._close_done.wait()
            return
        self._closed = True
        try:
            if self._writer is not None:
                self._queue.put_nowait(None)
                await self._writer
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        try:
            await self._release_writer()
            if pool is not None:
                try:
                    await pool.close()
                except Exception:
                    pool.terminate()
        finally:
            self._close_done.set()


async def _exists(conn: _Conn, sql: _SQL, table_id: str, *, lock: bool = False) -> int:
    head = await conn.fetchval(sql.head_locked if lock else sql.head, table_id)
    if head is None:
        raise TableNotFoundError(f"no table {table_id!r}")
    return int(head)


async def _fence(conn: _Conn, sql: _SQL, table_id: str, epoch: int, first: int | None) -> int:
    """The table's head, locked for this transaction, after checking that ``epoch`` is
    current and ``first`` follows it."""
    row = await conn.fetchrow(sql.fence, table_id)
    if row is None:
        raise TableNotFoundError(f"no table {table_id!r}")
    return check_fence(table_id, int(row[0]), int(row[1]), epoch, first)


async def _put_checkpoint(
    conn: _Conn, sql: _SQL, table_id: str, checkpoint: Checkpoint, body: bytes
) -> None:
    await conn.execute(
        sql.put_checkpoint,
        table_id,
        checkpoint.version,
        checkpoint.epoch,
        checkpoint.hash,
        body,
        checkpoint.timestamp,
    )
