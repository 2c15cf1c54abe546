"""Resource limits of a server session, and the token bucket that enforces action rates.

Sans-I/O like the rest of :mod:`statesync.protocol`: nothing here reads a clock. Callers pass
``now`` as float seconds from whatever monotonic clock they own (a real one in the server, a
fake one in tests and the simulator), so the same inputs always give the same answers::

    >>> limits = Limits(actions_per_second=2.0, action_burst=2)
    >>> bucket = limits.action_bucket()
    >>> [bucket.allow(0.0), bucket.allow(0.0), bucket.allow(0.0)]
    [True, True, False]
    >>> bucket.allow(0.5)  # half a second at 2/s refills one token
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

__all__ = ["Limits", "TokenBucket"]


class TokenBucket:
    """Allows ``rate`` units per second on average, and bursts of up to ``burst`` units.

    The bucket starts full. Each :meth:`allow` first refills ``elapsed * rate`` tokens (never
    more than ``burst``), then spends ``cost`` tokens if that many are there. A clock that goes
    backwards refills nothing, and the time it went back is not counted twice when it catches
    up again: the bucket remembers the latest ``now`` it has seen.

        >>> bucket = TokenBucket(rate=1.0, burst=3)
        >>> bucket.allow(10.0, cost=3)
        True
        >>> bucket.allow(10.5)
        False
        >>> bucket.allow(11.0)
        True

    Raises :class:`ValueError` for a rate that is not a positive finite number or a burst
    below 1.
    """

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"TokenBucket rate must be a positive finite number, got {rate!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"TokenBucket burst must be an int >= 1, got {burst!r}")
        self.rate = float(rate)
        self.burst = burst
        self._tokens = float(burst)
        self._last: float | None = None

    def allow(self, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens at time ``now`` if the bucket holds them; say whether it did.

        A refused call spends nothing. A ``cost`` above ``burst`` is never allowed. Raises
        :class:`ValueError` for a negative or non-finite ``cost`` or a non-finite ``now``:
        those are bugs in the caller, not input from a peer.
        """
        if not math.isfinite(now):
            raise ValueError(f"now must be a finite number of seconds, got {now!r}")
        if not (math.isfinite(cost) and cost >= 0):
            raise ValueError(f"cost must be a finite number >= 0, got {cost!r}")
        self._refill(now)
        if cost > self._tokens:
            return False
        self._tokens -= cost
        return True

    def tokens(self, now: float) -> float:
        """The tokens available at ``now`` (refilling first), without spending any."""
        if not math.isfinite(now):
            raise ValueError(f"now must be a finite number of seconds, got {now!r}")
        self._refill(now)
        return self._tokens

    def _refill(self, now: float) -> None:
        if self._last is not None and now > self._last:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        if self._last is None or now > self._last:
            self._last = now

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate!r}, burst={self.burst!r})"


@dataclass(frozen=True, slots=True)
class Limits:
    """What one client may cost the server. Every field must be positive.

    - ``max_message_bytes``: largest message accepted from a client; bigger ones are refused.
    - ``actions_per_second`` / ``action_burst``: the sustained action rate and the burst a
      client may send (see :meth:`action_bucket`).
    - ``send_queue_max``: updates queued for a client before it is switched to "snapshot on
      catch-up" (its queue is dropped and it gets one snapshot when it drains).
    - ``idle_timeout``: seconds without any message from a client before it is disconnected.
    - ``heartbeat_interval``: seconds of silence from a client after which the server probes
      it with a WebSocket ping (its pong counts as hearing from it). Clients are expected to
      send something -- a ``Ping`` if nothing else -- more often than this; the SDK does after
      10 s of not sending, so it is never probed.
    - ``handshake_timeout``: seconds a new connection has to authenticate.

        >>> Limits().max_message_bytes
        65536
        >>> Limits(idle_timeout=0)
        Traceback (most recent call last):
        ...
        ValueError: Limits.idle_timeout must be positive, got 0

    Raises :class:`ValueError` when a field is zero, negative, not finite, or (for the count
    fields) not an ``int``.
    """

    max_message_bytes: int = 65536
    actions_per_second: float = 50.0
    action_burst: int = 100
    send_queue_max: int = 256
    idle_timeout: float = 30.0
    heartbeat_interval: float = 15.0
    handshake_timeout: float = 10.0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            counts = field.type in ("int", int)
            if isinstance(value, bool) or not isinstance(value, int if counts else (int, float)):
                kind = "an int" if counts else "a number"
                raise ValueError(f"Limits.{field.name} must be {kind}, got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"Limits.{field.name} must be positive, got {value!r}")

    def action_bucket(self) -> TokenBucket:
        """A new, full :class:`TokenBucket` for one client's actions."""
        return TokenBucket(self.actions_per_second, self.action_burst)
