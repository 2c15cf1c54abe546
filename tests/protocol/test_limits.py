"""TokenBucket and Limits: deterministic rate limiting with the clock passed in."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statesync.protocol.limits import Limits, TokenBucket


def test_bucket_starts_full_and_allows_a_burst() -> None:
    bucket = TokenBucket(rate=1.0, burst=5)
    assert [bucket.allow(100.0) for _ in range(6)] == [True] * 5 + [False]


def test_bucket_refills_at_rate_up_to_burst() -> None:
    bucket = TokenBucket(rate=2.0, burst=4)
    assert bucket.allow(0.0, cost=4)
    assert bucket.tokens(0.0) == 0
    assert bucket.tokens(0.5) == 1.0
    assert bucket.tokens(1.0) == 2.0
    assert bucket.tokens(1000.0) == 4.0  # capped at burst


def test_refused_allow_spends_nothing() -> None:
    bucket = TokenBucket(rate=1.0, burst=3)
    assert bucket.allow(0.0, cost=2)
    assert not bucket.allow(0.0, cost=2)
    assert bucket.tokens(0.0) == 1.0
    assert bucket.allow(0.0, cost=1)


def test_cost_above_burst_is_never_allowed() -> None:
    bucket = TokenBucket(rate=10.0, burst=3)
    assert not bucket.allow(1e9, cost=3.5)
    assert bucket.allow(1e9, cost=3)


def test_zero_cost_is_always_allowed() -> None:
    bucket = TokenBucket(rate=1.0, burst=1)
    assert bucket.allow(0.0)
    assert bucket.allow(0.0, cost=0)


def test_fractional_costs() -> None:
    bucket = TokenBucket(rate=1.0, burst=1)
    assert bucket.allow(0.0, cost=0.5)
    assert bucket.allow(0.0, cost=0.5)
    assert not bucket.allow(0.0, cost=0.5)
    assert bucket.allow(0.5, cost=0.5)


def test_clock_going_backwards_refills_nothing() -> None:
    bucket = TokenBucket(rate=1.0, burst=10)
    assert bucket.allow(100.0, cost=10)
    assert not bucket.allow(50.0)  # backwards: no refill, and no negative refill either
    assert bucket.tokens(50.0) == 0
    # Back at 100 no time has passed since the latest reading, so still nothing.
    assert not bucket.allow(100.0)
    assert bucket.allow(101.0)
    assert not bucket.allow(101.0)


def test_clock_going_backwards_never_drains() -> None:
    bucket = TokenBucket(rate=1.0, burst=2)
    assert bucket.tokens(10.0) == 2
    assert bucket.tokens(-1e6) == 2


def test_first_call_at_any_time_finds_a_full_bucket() -> None:
    assert TokenBucket(rate=1.0, burst=3).tokens(-5.0) == 3
    assert TokenBucket(rate=1.0, burst=3).tokens(1e12) == 3


@pytest.mark.parametrize(
    ("rate", "burst"),
    [(0.0, 1), (-1.0, 1), (math.inf, 1), (math.nan, 1), (1.0, 0), (1.0, -3), (1.0, True)],
)
def test_bucket_rejects_bad_parameters(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="TokenBucket"):
        TokenBucket(rate, burst)


@pytest.mark.parametrize("cost", [-1.0, math.inf, math.nan])
def test_bucket_rejects_bad_cost(cost: float) -> None:
    with pytest.raises(ValueError, match="cost"):
        TokenBucket(1.0, 1).allow(0.0, cost)


@pytest.mark.parametrize("now", [math.inf, -math.inf, math.nan])
def test_bucket_rejects_non_finite_now(now: float) -> None:
    bucket = TokenBucket(1.0, 1)
    with pytest.raises(ValueError, match="now"):
        bucket.allow(now)
    with pytest.raises(ValueError, match="now"):
        bucket.tokens(now)


times = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(
    rate=st.floats(min_value=0.01, max_value=1000.0),
    burst=st.integers(min_value=1, max_value=1000),
    calls=st.lists(st.tuples(times, st.floats(min_value=0.0, max_value=50.0)), max_size=50),
)
def test_bucket_is_deterministic_and_bounded(
    rate: float, burst: int, calls: list[tuple[float, float]]
) -> None:
    a, b = TokenBucket(rate, burst), TokenBucket(rate, burst)
    for now, cost in calls:
        assert a.allow(now, cost) == b.allow(now, cost)
        assert 0 <= a.tokens(now) <= burst


@given(
    rate=st.floats(min_value=0.1, max_value=100.0),
    burst=st.integers(min_value=1, max_value=100),
    steps=st.lists(st.floats(min_value=0.0, max_value=10.0), min_size=1, max_size=100),
)
def test_bucket_never_allows_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: int, steps: list[float]
) -> None:
    bucket = TokenBucket(rate, burst)
    now, allowed = 0.0, 0
    for step in steps:
        now += step
        while bucket.allow(now):
            allowed += 1
    assert allowed <= burst + rate * now + 1e-6


def test_limits_defaults() -> None:
    limits = Limits()
    assert limits == Limits(
        max_message_bytes=65536,
        actions_per_second=50.0,
        action_burst=100,
        send_queue_max=256,
        idle_timeout=30.0,
        heartbeat_interval=15.0,
        handshake_timeout=10.0,
    )


def test_limits_is_frozen() -> None:
    limits = Limits()
    with pytest.raises(AttributeError):
        limits.idle_timeout = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "field",
    [
        "max_message_bytes",
        "actions_per_second",
        "action_burst",
        "send_queue_max",
        "idle_timeout",
        "heartbeat_interval",
        "handshake_timeout",
    ],
)
@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, -math.inf])
def test_limits_rejects_non_positive_values(field: str, bad: float) -> None:
    with pytest.raises(ValueError, match=f"Limits.{field} must be"):
        Limits(**{field: bad})  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["max_message_bytes", "action_burst", "send_queue_max"])
def test_limits_count_fields_must_be_ints(field: str) -> None:
    with pytest.raises(ValueError, match=f"Limits.{field} must be an int"):
        Limits(**{field: 1.5})  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [True, "10", None])
def test_limits_rejects_non_numbers(bad: object) -> None:
    with pytest.raises(ValueError, match=r"Limits\.idle_timeout must be a number"):
        Limits(idle_timeout=bad)  # type: ignore[arg-type]


def test_limits_accepts_ints_for_seconds() -> None:
    assert Limits(idle_timeout=5, heartbeat_interval=1).idle_timeout == 5


def test_action_bucket_follows_the_limits() -> None:
    bucket = Limits(actions_per_second=4.0, action_burst=2).action_bucket()
    assert (bucket.rate, bucket.burst) == (4.0, 2)
    assert [bucket.allow(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.allow(0.25)
    # Each call makes a fresh, full bucket.
    limits = Limits()
    assert limits.action_bucket() is not limits.action_bucket()
