"""Durable stores for tables: in memory, SQLite (the embedded default) and PostgreSQL.

All implement :class:`statesync.storage.Store` and pass one shared test suite.
:func:`open_store` picks one from a path or URL::

    store = await open_store("statesync.db")                       # SQLite file
    store = await open_store("postgresql://user@host:5432/db")     # PostgreSQL
    store = await open_store("memory:")                            # nothing kept
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from statesync.store.faults import FaultyStore, InjectedFault
from statesync.store.memory import MemoryStore
from statesync.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from statesync.storage import Store

DEFAULT_DB = "statesync.db"
"""The SQLite file used when no ``--db`` is given."""

__all__ = [
    "DEFAULT_DB",
    "FaultyStore",
    "InjectedFault",
    "MemoryStore",
    "SQLiteStore",
    "open_store",
]


async def open_store(target: str = DEFAULT_DB, **options: Any) -> Store:
    """Open the store named by ``target``: a ``postgresql://`` or ``postgres://`` URL, a
    ``sqlite:///path`` URL or a plain file path (SQLite), or ``memory:``.

    A PostgreSQL URL may name the schema to use with ``?schema=NAME`` (default
    ``statesync``); the other query parameters go to the driver.

    ``options`` go to the store's constructor (``synchronous="FULL"``, ``group_commit=False``).
    """
    if target.startswith(("postgresql://", "postgres://")):
        from statesync.store.postgres import PostgresStore

        parts = urllib.parse.urlsplit(target)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        schema = [v for k, v in query if k == "schema"]
        if schema:
            options.setdefault("schema", schema[-1])
            rest = urllib.parse.urlencode([(k, v) for k, v in query if k != "schema"])
            target = urllib.parse.urlunsplit(parts._replace(query=rest))
        return await PostgresStore.open(target, **options)
    if target == "memory:":
        return MemoryStore()
    if target.startswith("sqlite:///"):
        target = target[len("sqlite:///") :]
    return await SQLiteStore.open(target, **options)
