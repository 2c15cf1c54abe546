"""Metrics: the Prometheus text exposition format (0.0.4), checked against its grammar."""

from __future__ import annotations

import itertools
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statesync.server.metrics import CONTENT_TYPE, LATENCY_BUCKETS, PREFIX, Metrics

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_VALUE = r'(?:[^"\\\n]|\\\\|\\"|\\n)*'
LABEL = rf'[a-zA-Z_][a-zA-Z0-9_]*="{LABEL_VALUE}"'
VALUE = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN"
SAMPLE = re.compile(
    rf"(?P<name>{NAME})(?:\{{(?P<labels>{LABEL}(?:,{LABEL})*,?)?\}})? (?P<value>{VALUE})"
    r"(?: -?\d+)?"
)
HELP = re.compile(rf"# HELP (?P<name>{NAME}) (?P<text>(?:[^\\\n]|\\\\|\\n)*)")
TYPE = re.compile(rf"# TYPE (?P<name>{NAME}) (?P<kind>counter|gauge|histogram|summary|untyped)")
PAIR = re.compile(rf'([a-zA-Z_][a-zA-Z0-9_]*)="({LABEL_VALUE})"')

Sample = tuple[str, dict[str, str], float]


def unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m[1], m[1]), value)


def parse(text: str) -> tuple[dict[str, str], list[Sample]]:
    """Check every line against the grammar; return each family's type and the samples."""
    assert text.endswith("\n")
    types: dict[str, str] = {}
    helps: set[str] = set()
    samples: list[Sample] = []
    for line in text[:-1].split("\n"):
        if m := HELP.fullmatch(line):
            assert m["name"] not in helps, f"second HELP for {m['name']}"
            helps.add(m["name"])
        elif m := TYPE.fullmatch(line):
            assert m["name"] not in types, f"second TYPE for {m['name']}"
            assert m["name"] in helps, "HELP comes first"
            types[m["name"]] = m["kind"]
        else:
            m = SAMPLE.fullmatch(line)
            assert m, f"not a valid sample line: {line!r}"
            labels = {k: unescape(v) for k, v in PAIR.findall(m["labels"] or "")}
            samples.append((m["name"], labels, float(m["value"])))
    return types, samples


def family(name: str, types: dict[str, str]) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        base = name.removesuffix(suffix)
        if base != name and types.get(base) == "histogram":
            return base
    return name


def samples_of(metrics: Metrics, name: str) -> list[tuple[dict[str, str], float]]:
    _, samples = parse(metrics.render())
    return [(labels, value) for n, labels, value in samples if n == PREFIX + name]


def test_fresh_metrics_render_every_family() -> None:
    types, samples = parse(Metrics().render())
    assert types == {
        "statesync_tables": "gauge",
        "statesync_connections": "gauge",
        "statesync_actions_total": "counter",
        "statesync_actions_rejected_total": "counter",
        "statesync_bytes_sent_total": "counter",
        "statesync_messages_sent_total": "counter",
        "statesync_desyncs_detected_total": "counter",
        "statesync_resyncs_total": "counter",
        "statesync_reconnects_total": "counter",
        "statesync_seats_away": "gauge",
        "statesync_seats_released_total": "counter",
        "statesync_bad_messages_total": "counter",
        "statesync_send_workers": "gauge",
        "statesync_send_worker_writes_total": "counter",
        "statesync_send_worker_failures_total": "counter",
        "statesync_store_latency_seconds": "histogram",
    }
    labeled = ("statesync_bad_messages_total", "statesync_store_latency_seconds")
    unlabeled = [n for n in types if n not in labeled]
    assert {n: v for n, _, v in samples if n in unlabeled} == dict.fromkeys(unlabeled, 0)
    assert not [s for s in samples if s[0] == "statesync_bad_messages_total"]


def test_samples_follow_their_type_line_grouped_by_family() -> None:
    m = Metrics()
    m.inc("bad_messages_total", code="b")
    m.inc("bad_messages_total", code="a")
    m.observe("store_latency_seconds", 0.3)
    seen: list[str] = []
    current = None
    types: dict[str, str] = {}
    for line in m.render().splitlines():
        if t := TYPE.fullmatch(line):
            current = t["name"]
            types[current] = t["kind"]
            seen.append(current)
        elif s := SAMPLE.fullmatch(line):
            assert family(s["name"], types) == current
    assert len(seen) == len(set(seen))


def test_counters_and_gauges() -> None:
    m = Metrics()
    m.inc("actions_total")
    m.inc("actions_total", 4)
    m.inc("bytes_sent_total", 1500)
    m.inc("bytes_sent_total", 0.5)
    m.set("tables", 7)
    m.inc("connections", 3)
    m.inc("connections", -1)
    assert samples_of(m, "actions_total") == [({}, 5)]
    assert samples_of(m, "bytes_sent_total") == [({}, 1500.5)]
    assert samples_of(m, "tables") == [({}, 7)]
    assert samples_of(m, "connections") == [({}, 2)]
    assert m.value("actions_total") == 5 and m.value("connections") == 2
    assert "statesync_actions_total 5\n" in m.render()  # ints render as ints


def test_sent_counts_messages_and_bytes_together() -> None:
    m = Metrics()
    m.sent(1, 40)
    m.inc("messages_sent_total", 2)  # the two ways add up on the same series
    m.sent(3, 100)
    assert m.value("messages_sent_total") == 6
    assert m.value("bytes_sent_total") == 140
    assert samples_of(m, "bytes_sent_total") == [({}, 140)]


def test_gauge_set_overwrites_and_takes_floats() -> None:
    m = Metrics()
    m.set("connections", 10)
    m.set("connections", 2.5)
    assert samples_of(m, "connections") == [({}, 2.5)]
    m.set("connections", -1)
    assert m.value("connections") == -1


def test_labeled_counter_series_are_sorted_and_separate() -> None:
    m = Metrics()
    for code in ("wire/oversized", "wire/malformed", "wire/oversized", "auth/expired"):
        m.inc("bad_messages_total", code=code)
    assert samples_of(m, "bad_messages_total") == [
        ({"code": "auth/expired"}, 1),
        ({"code": "wire/malformed"}, 1),
        ({"code": "wire/oversized"}, 2),
    ]
    assert m.value("bad_messages_total", code="wire/oversized") == 2
    assert m.value("bad_messages_total", code="never") == 0


def test_render_is_stable() -> None:
    a, b = Metrics(), Metrics()
    for code in ("z", "a", "m"):
        a.inc("bad_messages_total", code=code)
    for code in ("m", "z", "a"):
        b.inc("bad_messages_total", code=code)
    assert a.render() == b.render() == a.render()


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ('say "hi"', r"say \"hi\""),
        ("back\\slash", r"back\\slash"),
        ("two\nlines", r"two\nlines"),
        ('\\"\n', r"\\\"\n"),
        ("ünï ☃", "ünï ☃"),
        ("", ""),
    ],
)
def test_label_values_are_escaped(value: str, escaped: str) -> None:
    m = Metrics()
    m.inc("bad_messages_total", code=value)
    assert f'statesync_bad_messages_total{{code="{escaped}"}} 1\n' in m.render()
    assert samples_of(m, "bad_messages_total") == [({"code": value}, 1)]


@given(st.lists(st.text(max_size=20), max_size=8))
def test_any_label_values_render_parseable_and_round_trip(codes: list[str]) -> None:
    m = Metrics()
    for code in codes:
        m.inc("bad_messages_total", code=code)
    got = samples_of(m, "bad_messages_total")
    assert sorted(labels["code"] for labels, _ in got) == sorted(set(codes))
    assert sum(v for _, v in got) == len(codes)


def test_histogram_buckets_are_cumulative() -> None:
    m = Metrics()
    observations = [0.0, 0.0004, 0.0005, 0.0006, 0.003, 0.07, 0.9, 1.0, 2.0, 30.0]
    for seconds in observations:
        m.observe("store_latency_seconds", seconds)
    buckets = samples_of(m, "store_latency_seconds_bucket")
    bounds = [float(labels["le"]) for labels, _ in buckets]
    assert bounds == [*LATENCY_BUCKETS, math.inf]
    counts = [v for _, v in buckets]
    assert counts == sorted(counts)
    # le is inclusive: an observation equal to a bound is counted in that bucket
    assert counts == [sum(o <= b for o in observations) for b in bounds]
    assert counts[:3] == [3, 4, 4] and counts[-1] == len(observations)
    assert samples_of(m, "store_latency_seconds_count") == [({}, len(observations))]
    [(_, total)] = samples_of(m, "store_latency_seconds_sum")
    assert total == pytest.approx(sum(observations))


def test_histogram_bucket_labels_are_spelled_conventionally() -> None:
    text = Metrics().render()
    assert 'statesync_store_latency_seconds_bucket{le="0.0005"} 0\n' in text
    assert 'statesync_store_latency_seconds_bucket{le="1.0"} 0\n' in text
    assert 'statesync_store_latency_seconds_bucket{le="+Inf"} 0\n' in text
    assert "statesync_store_latency_seconds_sum 0.0\n" in text
    assert "statesync_store_latency_seconds_count 0\n" in text


@given(st.lists(st.floats(min_value=0.0, max_value=5.0), max_size=40))
def test_histogram_invariants(observations: list[float]) -> None:
    m = Metrics()
    for seconds in observations:
        m.observe("store_latency_seconds", seconds)
    counts = [v for _, v in samples_of(m, "store_latency_seconds_bucket")]
    assert all(a <= b for a, b in itertools.pairwise(counts))
    assert counts[-1] == len(observations)
    assert counts == [sum(o <= b for o in observations) for b in (*LATENCY_BUCKETS, math.inf)]


def test_help_and_type_lines() -> None:
    text = Metrics().render()
    assert "# HELP statesync_actions_total " in text
    assert "# TYPE statesync_store_latency_seconds histogram\n" in text
    for line in text.splitlines():
        assert line.startswith(("# HELP statesync_", "# TYPE statesync_", "statesync_"))


def test_content_type() -> None:
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m: m.inc("nope"), "unknown metric"),
        (lambda m: m.inc("statesync_actions_total"), "unknown metric"),
        (lambda m: m.inc("store_latency_seconds"), "is a histogram"),
        (lambda m: m.set("actions_total", 1), "is a counter"),
        (lambda m: m.observe("actions_total", 1), "is a counter"),
        (lambda m: m.value("store_latency_seconds"), "is a histogram"),
        (lambda m: m.inc("actions_total", -1), "cannot take"),
        (lambda m: m.inc("actions_total", math.inf), "cannot take"),
        (lambda m: m.inc("connections", math.nan), "cannot take"),
        (lambda m: m.set("connections", math.inf), "cannot take"),
        (lambda m: m.inc("actions_total", True), "takes a number"),
        (lambda m: m.inc("actions_total", "1"), "takes a number"),
        (lambda m: m.observe("store_latency_seconds", -0.1), "cannot take"),
        (lambda m: m.observe("store_latency_seconds", math.nan), "cannot take"),
        (lambda m: m.inc("bad_messages_total"), "takes labels"),
        (lambda m: m.inc("bad_messages_total", code="x", extra="y"), "takes labels"),
        (lambda m: m.inc("actions_total", code="x"), "takes labels"),
        (lambda m: m.inc("bad_messages_total", code=1), "must be a str"),
    ],
)
def test_misuse_raises_value_error(call: object, match: str) -> None:
    m = Metrics()
    before = m.render()
    with pytest.raises(ValueError, match=match):
        call(m)  # type: ignore[operator]
    assert m.render() == before  # nothing half-recorded
