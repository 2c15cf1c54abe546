"""Bytes on the wire per tick: WireEncoder against full JSON and the information floor.

Run from anywhere::

    .venv/bin/python bench/wire_bytes.py

Deltas come from :func:`statesync.diffing.diff` between consecutive states of the standard
workloads (``shared/workloads``, found as ``../shared`` beside the repository or through the
``STATESYNC_WORKLOADS`` environment variable; the traces are generated into ``bench/traces``
when missing). Bytes are counted by the rules in ``reference.COUNTING_RULES``: ticks 1..T, an
empty delta costs 0 bytes because nothing is sent. Every message is decoded and patched onto the
previous state, and the run stops with an error unless that gives the trace state exactly.

Per-connection state is measured with :mod:`tracemalloc` (zlib's buffers included, since Python
allocates them through its raw allocator): the memory still held by an encoder and a decoder
after the whole trace went through them, with every delta a fresh copy so that nothing is shared
with the caller's objects.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from statesync.delta import Delta, patch
from statesync.diffing import diff
from statesync.ops import Remove, Set, Splice
from statesync.value import strict_equal
from statesync.wire import WireDecoder, WireEncoder

ROOT = Path(__file__).resolve().parent.parent
TRACE_DIR = ROOT / "bench" / "traces"
TARGETS = {"card_table": 30.0, "arena": 200.0, "lobby_chat": 17.0, "big_board": 25.0}
MAX_SHARE_OF_JSON = 0.10
TIMING_RUNS = 3


def workloads_dir() -> Path:
    return Path(os.environ.get("STATESYNC_WORKLOADS", ROOT.parent / "shared" / "workloads"))


def load_reference() -> ModuleType:
    folder = workloads_dir()
    if not (folder / "reference.py").exists():
        sys.exit(f"no reference.py in {folder} (set STATESYNC_WORKLOADS)")
    sys.path.insert(0, str(folder))
    import reference

    return reference


def ensure_traces(reference: ModuleType) -> list[str]:
    names = list(reference.WORKLOAD_ORDER)
    if not all((TRACE_DIR / f"{n}.jsonl").exists() for n in names):
        script = workloads_dir() / "workloads.py"
        subprocess.run([sys.executable, str(script), "--out", str(TRACE_DIR)], check=True)
    return names


def fresh(delta: Delta) -> Delta:
    """A deep copy sharing no object with ``delta`` (JSON round trip of paths and values)."""

    def cp(v: Any) -> Any:
        return json.loads(json.dumps(v))

    ops: list[Set | Remove | Splice] = []
    for op in delta.ops:
        path = tuple(cp(list(op.path)))
        if isinstance(op, Set):
            ops.append(Set(path, cp(op.value)))
        elif isinstance(op, Remove):
            ops.append(Remove(path))
        elif isinstance(op, Splice):
            ops.append(Splice(path, op.index, op.delete, tuple(cp(list(op.insert)))))
    return Delta(tuple(ops))


def same_delta(a: Delta, b: Delta) -> bool:
    """Strict equality of two native deltas (1, 1.0 and True differ, also inside paths)."""
    if len(a.ops) != len(b.ops):
        return False
    for x, y in zip(a.ops, b.ops, strict=True):
        if type(x) is not type(y) or not strict_equal(list(x.path), list(y.path)):
            return False
        if isinstance(x, Set) and not strict_equal(x.value, y.value):  # type: ignore[union-attr]
            return False
        if isinstance(x, Splice) and (
            (x.index, x.delete) != (y.index, y.delete)  # type: ignore[union-attr]
            or not strict_equal(list(x.insert), list(y.insert))  # type: ignore[union-attr]
        ):
            return False
    return True


@dataclass
class Row:
    name: str
    full_json: float
    json_stream: float
    floor: float
    wire: float
    enc_us: float
    dec_us: float
    enc_state: int
    dec_state: int

    @property
    def target(self) -> float:
        return TARGETS.get(self.name, float("inf"))

    @property
    def passed(self) -> bool:
        return self.wire <= self.target and self.wire <= MAX_SHARE_OF_JSON * self.full_json


def verify(name: str, states: list[Any], deltas: list[Delta], reference: ModuleType) -> float:
    """Send the whole trace through one connection; return mean bytes per tick."""
    enc, dec = WireEncoder(), WireDecoder()
    total = 0
    for t, delta in enumerate(deltas, start=1):
        if not delta:
            continue  # nothing is sent
        msg = enc.encode(delta)
        total += len(msg)
        got = dec.decode(msg)
        if not same_delta(delta, got):
            sys.exit(f"{name} tick {t}: decoded delta differs\n  sent {delta}\n  got  {got}")
        where = reference.first_difference(patch(states[t - 1], got), states[t])
        if where is not None:
            sys.exit(f"{name} tick {t}: patched state differs from the trace at {where}")
    return total / len(deltas)


def timing(deltas: list[Delta]) -> tuple[float, float]:
    """Best-of-N microseconds per non-empty delta, to encode and to decode."""
    sent = [d for d in deltas if d]
    enc_best = dec_best = float("inf")
    for _ in range(TIMING_RUNS):
        enc, dec = WireEncoder(), WireDecoder()
        t0 = time.perf_counter()
        msgs = [enc.encode(d) for d in sent]
        t1 = time.perf_counter()
        for m in msgs:
            dec.decode(m)
        t2 = time.perf_counter()
        enc_best, dec_best = min(enc_best, t1 - t0), min(dec_best, t2 - t1)
    n = max(len(sent), 1)
    return enc_best / n * 1e6, dec_best / n * 1e6


def state_bytes(deltas: list[Delta]) -> tuple[int, int]:
    """Bytes held by an encoder and by a decoder after the whole trace (tracemalloc)."""
    sent = [d for d in deltas if d]
    sender = WireEncoder()
    msgs = [sender.encode(d) for d in sent]
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        enc = WireEncoder()
        for d in sent:
            enc.encode(fresh(d))
        gc.collect()
        enc_bytes = tracemalloc.get_traced_memory()[0] - base
        base = tracemalloc.get_traced_memory()[0]
        dec = WireDecoder()
        for m in msgs:
            dec.decode(bytes(m))
        gc.collect()
        dec_bytes = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    return enc_bytes, dec_bytes


def measure(name: str, reference: ModuleType) -> Row:
    states = reference.load_trace(name, trace_dir=str(TRACE_DIR))
    deltas = [diff(states[t - 1], states[t]) for t in range(1, len(states))]
    ref = reference.reference_sizes(states)
    wire = verify(name, states, deltas, reference)
    enc_us, dec_us = timing(deltas)
    enc_state, dec_state = state_bytes(deltas)
    return Row(
        name,
        statistics.mean(ref["full JSON"]),
        statistics.mean(ref["full JSON + deflate stream"]),
        statistics.mean(ref["floor"]),
        wire,
        enc_us,
        dec_us,
        enc_state,
        dec_state,
    )


def print_table(rows: list[Row]) -> None:
    head = (
        f"{'trace':<11} {'full JSON':>9} {'JSON+defl':>9} {'floor':>6} {'wire':>6} "
        f"{'/JSON':>6} {'/floor':>6} {'target':>6} {'result':>6} "
        f"{'enc us':>7} {'dec us':>7} {'state KB (enc+dec)':>19}"
    )
    print("mean bytes per tick over ticks 1..T; wire = WireEncoder; us = per non-empty delta")
    print(head)
    print("-" * len(head))
    for r in rows:
        both = (r.enc_state + r.dec_state) / 1000
        state = f"{r.enc_state / 1000:.1f}+{r.dec_state / 1000:.1f}={both:.1f}"
        print(
            f"{r.name:<11} {r.full_json:>9.1f} {r.json_stream:>9.1f} {r.floor:>6.1f} "
            f"{r.wire:>6.1f} {r.wire / r.full_json:>6.2%} {r.wire / r.floor:>6.2f} "
            f"{r.target:>6.0f} {'PASS' if r.passed else 'FAIL':>6} "
            f"{r.enc_us:>7.1f} {r.dec_us:>7.1f} {state:>19}"
        )


def main() -> int:
    reference = load_reference()
    names = ensure_traces(reference)
    rows = [measure(n, reference) for n in names]
    print_table(rows)
    budget = 64_000
    worst = max(r.enc_state + r.dec_state for r in rows)
    print(f"largest per-connection state: {worst / 1000:.1f} KB (budget {budget / 1000:.0f} KB)")
    ok = all(r.passed for r in rows) and worst <= budget
    print("all targets met" if ok else "SOME TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
