from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.client.fakeserver import FakeServer


@pytest.fixture
async def server() -> AsyncIterator[FakeServer]:
    s = FakeServer()
    await s.start()
    try:
        yield s
    finally:
        await s.stop()
