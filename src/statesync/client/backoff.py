"""Exponential backoff with jitter, for reconnecting.

The delay before attempt ``n`` (counting from 0) is ``min(maximum, initial * factor**n)``,
scaled by a random factor in ``[1 - jitter, 1 + jitter]`` so that many clients that lost the
same server do not all come back at the same instant.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays between reconnection attempts: ``next()`` for the next one, ``reset()`` after a
    success. With a seeded ``rng`` the sequence is reproducible.

    >>> b = Backoff(initial=0.1, factor=2.0, maximum=0.5, jitter=0.0)
    >>> [b.next() for _ in range(5)]
    [0.1, 0.2, 0.4, 0.5, 0.5]
    >>> b.reset(); b.next()
    0.1
    >>> d = Backoff(rng=random.Random(1)).next()  # 0.1 +- 50 %
    >>> 0.05 <= d <= 0.15
    True
    """

    def __init__(
        self,
        initial: float = 0.1,
        factor: float = 2.0,
        maximum: float = 5.0,
        jitter: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        if not initial > 0:
            raise ValueError("initial must be positive")
        if not factor >= 1:
            raise ValueError("factor must be at least 1")
        if not maximum >= initial:
            raise ValueError("maximum must be at least initial")
        if not 0 <= jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        self.initial = initial
        self.factor = factor
        self.maximum = maximum
        self.jitter = jitter
        self.rng = rng if rng is not None else random.Random()
        self.attempts = 0
        """Delays handed out since the last reset."""
        self._base = initial

    def next(self) -> float:
        """The delay (seconds) before the next attempt; each call backs off further."""
        base = self._base
        self._base = min(self.maximum, base * self.factor)
        self.attempts += 1
        if not self.jitter:
            return base
        return base * (1.0 + self.jitter * self.rng.uniform(-1.0, 1.0))

    def reset(self) -> None:
        """Start again from ``initial`` (call it once a connection succeeded)."""
        self._base = self.initial
        self.attempts = 0

    def __repr__(self) -> str:
        return (
            f"Backoff(initial={self.initial}, factor={self.factor}, maximum={self.maximum}, "
            f"jitter={self.jitter})"
        )
