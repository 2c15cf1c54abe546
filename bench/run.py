"""Every benchmark in one run, so the ratios are measured side by side.

    make bench            # or: .venv/bin/python bench/run.py

Prints the wire-bytes table on the four standard workloads (against full JSON, full JSON
through one deflate stream, and the information floor), actions per second through
StateSynchronizer on a 9-player hold'em table, the cost per action on a 64x64 versus a
256x256 board, and the durable stores (acknowledged actions/s, recovery of a 100,000-version
table, a SIGKILL crash campaign), and networked play over WebSockets (fan-out latency, server
CPU and memory per connection, reconnects, a reconnect storm). Results and the machine they
came from are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import network
import store
import throughput
import wire_bytes


def main() -> int:
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{platform.processor() or 'unknown cpu'}"
    )
    print()
    print("== wire bytes ==")
    wire_status = wire_bytes.main()
    print()
    print("== engine throughput ==")
    throughput.main()
    print()
    print("== durable stores ==")
    store_status = store.main([])
    print()
    print("== network ==")
    network_status = network.main([])
    return wire_status or store_status or network_status


if __name__ == "__main__":
    sys.exit(main())
