"""A seeded, portable random number generator for game rules.

Python's :mod:`random` only promises that ``random()`` repeats across versions; ``shuffle``,
``randrange`` and friends may change. Replays must give the same hashes on any machine, so
rules draw from :class:`Rng`: SplitMix64 (Steele, Lea & Flood 2014), with unbiased bounded
integers by rejection sampling. Its full definition fits in ``docs/hashing.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import xxhash

if TYPE_CHECKING:
    from collections.abc import MutableSequence, Sequence

T = TypeVar("T")
_MASK = (1 << 64) - 1


class Rng:
    """Deterministic random numbers: same seed, same sequence, everywhere.

    >>> a, b = Rng(42), Rng(42)
    >>> [a.randbelow(6) for _ in range(5)] == [b.randbelow(6) for _ in range(5)]
    True
    """

    __slots__ = ("_state",)

    def __init__(self, seed: int) -> None:
        self._state = seed & _MASK

    @classmethod
    def derive(cls, seed: int, *parts: object) -> Rng:
        """An independent generator for ``(seed, *parts)``, e.g. ``Rng.derive(table_seed,
        version)``: each version of a table draws from its own stream, so replaying any one
        action needs no generator state."""
        text = f"{seed}:{parts[0]}" if len(parts) == 1 else ":".join(map(str, (seed, *parts)))
        return cls(xxhash.xxh3_64_intdigest(text.encode()))

    def next_u64(self) -> int:
        """The next 64-bit output of SplitMix64."""
        self._state = z = (self._state + 0x9E3779B97F4A7C15) & _MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def randbelow(self, n: int) -> int:
        """Uniform int in ``[0, n)``; ``n`` must be in ``1 .. 2**64``."""
        if not 0 < n <= 1 << 64:
            raise ValueError(f"randbelow needs 0 < n <= 2**64, got {n}")
        limit = (1 << 64) - ((1 << 64) % n)  # reject the biased tail
        while True:
            x = self.next_u64()
            if x < limit:
                return x % n

    def randint(self, a: int, b: int) -> int:
        """Uniform int in ``[a, b]``."""
        return a + self.randbelow(b - a + 1)

    def random(self) -> float:
        """Uniform float in ``[0, 1)`` with 53 random bits."""
        return (self.next_u64() >> 11) / (1 << 53)

    def choice(self, seq: Sequence[T]) -> T:
        """A uniformly chosen element of a non-empty sequence."""
        if not seq:
            raise IndexError("cannot choose from an empty sequence")
        return seq[self.randbelow(len(seq))]

    def shuffle(self, seq: MutableSequence[T]) -> None:
        """Shuffle in place (Fisher-Yates, from the end)."""
        for i in range(len(seq) - 1, 0, -1):
            j = self.randbelow(i + 1)
            seq[i], seq[j] = seq[j], seq[i]
