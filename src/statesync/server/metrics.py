"""Server metrics in the Prometheus text exposition format (version 0.0.4).

One :class:`Metrics` object per server process holds every series; serve :meth:`Metrics.render`
with :data:`CONTENT_TYPE` and let Prometheus compute rates. Names are given without the
``statesync_`` prefix, which :meth:`~Metrics.render` adds::

    >>> m = Metrics()
    >>> m.inc("actions_total")
    >>> m.inc("bad_messages_total", code="wire/malformed")
    >>> m.set("connections", 3)
    >>> m.observe("store_latency_seconds", 0.002)
    >>> print(m.render())
    # HELP statesync_tables Tables loaded in memory.
    # TYPE statesync_tables gauge
    statesync_tables 0
    # HELP statesync_connections Open client connections.
    # TYPE statesync_connections gauge
    statesync_connections 3
    # HELP statesync_actions_total Actions received from clients.
    # TYPE statesync_actions_total counter
    statesync_actions_total 1
    ...
    # TYPE statesync_bad_messages_total counter
    statesync_bad_messages_total{code="wire/malformed"} 1
    ...
    statesync_store_latency_seconds_bucket{le="0.001"} 0
    statesync_store_latency_seconds_bucket{le="0.0025"} 1
    ...
    statesync_store_latency_seconds_count 1
    <BLANKLINE>

Not thread-safe: the server updates it from its one event loop.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS", "PREFIX", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "statesync_"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
"""Upper bounds of the latency histogram buckets in seconds; ``+Inf`` follows implicitly."""

Kind = Literal["counter", "gauge", "histogram"]
Number = int | float


@dataclass(frozen=True, slots=True)
class _Spec:
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()


# Rendered in this order, so scrapes diff cleanly.
_SPECS: dict[str, _Spec] = {
    "tables": _Spec("gauge", "Tables loaded in memory."),
    "connections": _Spec("gauge", "Open client connections."),
    "actions_total": _Spec("counter", "Actions received from clients."),
    "actions_rejected_total": _Spec("counter", "Actions refused (by the rules or by limits)."),
    "bytes_sent_total": _Spec("counter", "Bytes sent to clients."),
    "messages_sent_total": _Spec("counter", "Messages sent to clients."),
    "desyncs_detected_total": _Spec("counter", "Hash mismatches reported by clients."),
    "resyncs_total": _Spec("counter", "Snapshots sent to heal a desync or a lagging client."),
    "reconnects_total": _Spec("counter", "Clients that resumed a session."),
    "seats_away": _Spec("gauge", "Seats kept within the reconnect grace for a dropped player."),
    "seats_released_total": _Spec(
        "counter", "Seats marked disconnected when the reconnect grace ran out."
    ),
    "bad_messages_total": _Spec(
        "counter", "Messages from clients refused, by error code.", ("code",)
    ),
    "send_workers": _Spec("gauge", "Send workers serving (serve --send-workers)."),
    "send_worker_writes_total": _Spec("counter", "Socket writes done by send workers."),
    "send_worker_failures_total": _Spec(
        "counter", "Send workers that died, or were killed for being stuck."
    ),
    "store_latency_seconds": _Spec("histogram", "Time to make a batch of actions durable."),
}


class _Histogram:
    __slots__ = ("buckets", "count", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # per bucket, not cumulative
        self.sum = 0.0
        self.count = 0


class Metrics:
    """Counters, gauges and the store latency histogram of one server process.

    Every method raises :class:`ValueError` for an unknown name, a name of the wrong kind
    (``set`` on a counter...), labels that differ from the metric's label names, or a value a
    counter or histogram cannot take (negative, not finite).
    """

    __slots__ = ("_histograms", "_plain", "_sent_bytes", "_sent_messages", "_values")

    def __init__(self) -> None:
        self._values: dict[str, dict[tuple[str, ...], Number]] = {}
        self._histograms: dict[str, _Histogram] = {}
        self._plain: dict[str, dict[tuple[str, ...], Number]] = {}
        """The series of every counter and gauge without labels (``inc``'s fast path)."""
        for name, spec in _SPECS.items():
            if spec.kind == "histogram":
                self._histograms[name] = _Histogram()
            else:
                self._values[name] = {} if spec.labels else {(): 0}
                if not spec.labels:
                    self._plain[name] = self._values[name]
        self._sent_messages = self._values["messages_sent_total"]
        self._sent_bytes = self._values["bytes_sent_total"]

    def inc(self, name: str, value: Number = 1, **labels: str) -> None:
        """Add ``value`` to a counter (``value >= 0``) or a gauge (any finite value)."""
        if not labels and type(value) is int and value >= 0:
            # Fast path (the server's hot loop): an unlabelled series and a non-negative int,
            # valid for a counter and a gauge alike, so there is nothing else to check.
            series = self._plain.get(name)
            if series is not None:
                series[()] += value
                return
        spec = _spec(name, "counter", "gauge")
        _check_number(name, value, negative_ok=spec.kind == "gauge")
        key = _label_key(name, spec, labels)
        series = self._values[name]
        series[key] = series.get(key, 0) + value

    def sent(self, messages: int, size: int) -> None:
        """Count ``messages`` frames of ``size`` bytes in all as sent (``messages_sent_total``
        and ``bytes_sent_total``): the server's hottest counters, in one call."""
        self._sent_messages[()] += messages
        self._sent_bytes[()] += size

    def set(self, name: str, value: Number) -> None:
        """Set a gauge to ``value``."""
        _spec(name, "gauge")
        _check_number(name, value, negative_ok=True)
        self._values[name][()] = value

    def observe(self, name: str, seconds: float) -> None:
        """Record one observation (``seconds >= 0``) in a histogram."""
        _spec(name, "histogram")
        _check_number(name, seconds, negative_ok=False)
        hist = self._histograms[name]
        hist.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        hist.sum += seconds
        hist.count += 1

    def value(self, name: str, **labels: str) -> Number:
        """The current value of a counter or gauge series (0 if never touched)."""
        spec = _spec(name, "counter", "gauge")
        return self._values[name].get(_label_key(name, spec, labels), 0)

    def render(self) -> str:
        """Every metric in the Prometheus text format, ending in a newline."""
        lines: list[str] = []
        for name, spec in _SPECS.items():
            full = PREFIX + name
            lines.append(f"# HELP {full} {_escape_help(spec.help)}")
            lines.append(f"# TYPE {full} {spec.kind}")
            if spec.kind == "histogram":
                lines.extend(_histogram_lines(full, self._histograms[name]))
                continue
            for key, value in sorted(self._values[name].items()):
                labels = _labels(zip(spec.labels, key, strict=True))
                lines.append(f"{full}{labels} {_number(value)}")
        return "\n".join(lines) + "\n"


def _spec(name: str, *kinds: Kind) -> _Spec:
    spec = _SPECS.get(name)
    if spec is None:
        raise ValueError(f"unknown metric {name!r}")
    if spec.kind not in kinds:
        raise ValueError(f"metric {name!r} is a {spec.kind}, not a {' or '.join(kinds)}")
    return spec


def _check_number(name: str, value: Number, *, negative_ok: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"metric {name!r} takes a number, got {value!r}")
    if not math.isfinite(value) or (value < 0 and not negative_ok):
        raise ValueError(f"metric {name!r} cannot take {value!r}")


def _label_key(name: str, spec: _Spec, labels: dict[str, str]) -> tuple[str, ...]:
    if set(labels) != set(spec.labels):
        raise ValueError(f"metric {name!r} takes labels {spec.labels}, got {tuple(labels)}")
    for label, value in labels.items():
        if not isinstance(value, str):
            raise ValueError(f"label {label!r} of {name!r} must be a str, got {value!r}")
    return tuple(labels[label] for label in spec.labels)


def _histogram_lines(full: str, hist: _Histogram) -> list[str]:
    lines = []
    cumulative = 0
    for bound, count in zip((*LATENCY_BUCKETS, math.inf), hist.buckets, strict=True):
        cumulative += count
        lines.append(f"{full}_bucket{_labels([('le', _number(bound))])} {cumulative}")
    lines.append(f"{full}_sum {_number(hist.sum)}")
    lines.append(f"{full}_count {hist.count}")
    return lines


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    items = [f'{name}="{_escape_label(value)}"' for name, value in pairs]
    return "{" + ",".join(items) + "}" if items else ""


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: Number) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(value)
