from __future__ import annotations

import random
from typing import Any

import pytest

from statesync.client import Backoff


def test_backoff_doubles_up_to_the_maximum_without_jitter() -> None:
    b = Backoff(jitter=0.0)
    assert [b.next() for _ in range(8)] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    b.reset()
    assert b.next() == 0.1 and b.attempts == 1


def test_backoff_is_jittered_bounded_and_deterministic_with_a_seed() -> None:
    a = Backoff(rng=random.Random(42))
    delays = [a.next() for _ in range(50)]
    bases = [min(5.0, 0.1 * 2**n) for n in range(50)]
    assert all(0.5 * base <= d <= 1.5 * base for d, base in zip(delays, bases, strict=True))
    assert max(delays) <= 7.5
    assert len({round(d / base, 9) for d, base in zip(delays, bases, strict=True)}) > 40
    b = Backoff(rng=random.Random(42))
    assert [b.next() for _ in range(50)] == delays
    b.reset()
    c = Backoff(rng=random.Random(42))
    c.next()
    assert b.next() == pytest.approx(0.1, rel=0.5)


@pytest.mark.parametrize(
    "kwargs",
    [{"initial": 0}, {"factor": 0.5}, {"maximum": 0.01}, {"jitter": 1.0}, {"jitter": -0.1}],
)
def test_backoff_refuses_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        Backoff(**kwargs)
