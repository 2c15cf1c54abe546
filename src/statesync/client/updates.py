"""``Updates``: an async iterator over a table's authoritative versions, for one consumer.

The buffer is bounded: a consumer that lags loses the oldest versions, never the newest, so
it always ends up at the latest state without the table ever blocking on it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


class Updates:
    """The authoritative versions a table reaches, in order, from its creation on (see
    :meth:`statesync.client.Table.updates`). Holds at most ``maxsize`` undelivered versions;
    on overflow the oldest is dropped (counted in :attr:`dropped`). Iteration ends when the
    table is closed by the user, and raises the table's error if it stopped for another
    reason.

    >>> import asyncio
    >>> async def demo():
    ...     updates = Updates(maxsize=2)
    ...     for version in (1, 2, 3):
    ...         updates.put(version)
    ...     updates.end()
    ...     return [v async for v in updates], updates.dropped
    >>> asyncio.run(demo())
    ([2, 3], 1)
    """

    def __init__(self, maxsize: int = 16, *, on_close: Callable[[Updates], None] | None = None):
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.dropped = 0
        """Versions discarded because the consumer lagged."""
        self._buffer: deque[int] = deque(maxlen=maxsize)
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False
        self._error: BaseException | None = None
        self._on_close = on_close

    def put(self, version: int) -> None:
        """Offer a version (never blocks; drops the oldest when full)."""
        if self._ended:
            return
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1
        self._buffer.append(version)
        self._wake()

    def end(self, error: BaseException | None = None) -> None:
        """No more versions: iteration stops after the buffered ones (or raises ``error``)."""
        if not self._ended:
            self._ended, self._error = True, error
            self._wake()

    def close(self) -> None:
        """Stop receiving versions (the consumer is done)."""
        self.end()
        self._buffer.clear()
        if self._on_close is not None:
            self._on_close(self)
            self._on_close = None

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> Updates:
        return self

    async def __anext__(self) -> int:
        while not self._buffer:
            if self._ended:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            if self._waiter is None:
                self._waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._waiter)
        return self._buffer.popleft()
