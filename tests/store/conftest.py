"""Store fixtures: every store test runs on memory, SQLite and PostgreSQL.

PostgreSQL runs when ``STATESYNC_TEST_POSTGRES`` holds a server URL (``.ci/run`` sets it);
otherwise those cases are skipped with a reason that says so. Each PostgreSQL test gets a
schema of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from statesync.store import MemoryStore, SQLiteStore

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from statesync.storage import Store

POSTGRES_URL = os.environ.get("STATESYNC_TEST_POSTGRES", "")
SKIP_PG = (
    "PostgreSQL store tests skipped: set STATESYNC_TEST_POSTGRES="
    "postgresql://postgres@127.0.0.1:5432/test to run them"
)
BACKENDS = ["memory", "sqlite", "postgres"]


class StoreFactory:
    """Opens the same database again (a restart); the memory store returns itself."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self.path = tmp_path / "statesync.db"
        self.schema = f"t_{uuid.uuid4().hex[:12]}"
        self.opened: list[Store] = []
        self._memory = MemoryStore()

    async def open(self, **options: Any) -> Store:
        store: Store
        if self.backend == "memory":
            store = self._memory
        elif self.backend == "sqlite":
            store = await SQLiteStore.open(self.path, **options)
        else:
            from statesync.store.postgres import PostgresStore

            store = await PostgresStore.open(POSTGRES_URL, schema=self.schema, **options)
        self.opened.append(store)
        return store

    async def cleanup(self) -> None:
        for store in self.opened:
            await store.close()
        if self.backend == "postgres":
            import asyncpg

            conn = await asyncpg.connect(POSTGRES_URL)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            finally:
                await conn.close()


@pytest.fixture(params=BACKENDS)
async def factory(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    backend: str = request.param
    if backend == "postgres" and not POSTGRES_URL:
        pytest.skip(SKIP_PG)
    f = StoreFactory(backend, tmp_path)
    try:
        yield f
    finally:
        await f.cleanup()


@pytest.fixture
async def store(factory: StoreFactory) -> Store:
    return await factory.open()
