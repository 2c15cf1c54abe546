"""Chaos campaign: a real ``statesync serve`` process under load from many client processes,
killed with SIGKILL at random moments and restarted on the same port and SQLite file.

Processes (all on 127.0.0.1, each in its own process group)::

    harness (campaign)
      |-- server: python -c "statesync.cli.main" serve --db WORKDIR/chaos.db --port P
      |           (hold'em; the token secret in STATESYNC_SECRET; killed and restarted)
      '-- clients 0..C-1: python -m statesync.testing.chaos client WORKDIR/client-K.json
                  each runs several hold'em bots, one statesync.client.connect() Table each

Before the first start the harness creates the tables in the SQLite file (deep stacks, so a
game never ends during a campaign) and gets one token per bot, pinned to the bot's client id,
from ``statesync token``, run with the same ``STATESYNC_SECRET`` as the server (the clients
never see the secret). Each bot plays a legal hold'em action
(:func:`statesync.games.holdem.legal_actions`, weighted like the demo's bots) whenever its own
authoritative view says it is its turn, and awaits the outcome with ``Table.act``. The
clients are never told about kills: the SDK reconnects with backoff, resumes by delta and
re-sends unanswered actions, which the table dedupes by ``(client_id, seq)``.

The harness kills the server (``SIGKILL`` to its process group) after a random, seeded delay
of ``interval`` seconds from the moment it answered ``/healthz``, but never before the
clients have had at least one new action accepted since that moment (so every kill lands in
live traffic), then starts it again on the same port and database.

Honest accounting. Each client process appends every *answered* action to its journal (a
JSON line, flushed at once): ``ack`` for an accepted outcome (including one answered as a
duplicate of a re-sent action: the version is the original one), ``reject`` for a refusal.
An action whose outcome the client never learned is in neither. When the harness asks the
clients to stop, each bot finishes the action it has in flight (waiting through reconnects),
and only then does the client report itself *settled*, with the number of actions still
unresolved (which must be 0: anything else is a hang).

Checks, all from the clients' journals and status files and from the store:

* convergence: with every client settled and the last server alive, each bot must be
  connected and hold exactly the store's head version of its table, with its view equal (as
  JSON, and by hash) to the view of its player in the table loaded from the SQLite file
  (:meth:`StateSynchronizer.load`, which also checks every stored hash). The harness polls
  until all bots agree or ``timeout`` runs out;
* then the server is killed one last time (so nothing more is written) and the log is read
  with :meth:`Store.read_log`: every acknowledged ``(client_id, seq)`` must be in its table's
  log exactly once, at the version the client was told, with the player, type and payload
  it sent; no ``(client_id, seq)`` may appear twice; no action the client was told was
  rejected may be in the log; every player action in the log must have been answered; and
  :func:`~statesync.replay.replay` must re-run each table's whole log with no divergence.

Cleanup: every child runs in its own process group, and whatever happens (a failed check,
an exception, Ctrl-C) the harness SIGKILLs the groups and reaps them before returning. If
the harness itself is killed, the children notice that their parent changed and exit.

``python -m statesync.testing.chaos --kills 50`` runs a long campaign with a progress line
and prints a summary; the exit status is 0 only if every check passed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from statesync.client import Backoff, connect
from statesync.games.holdem import Holdem, legal_actions
from statesync.hashing import state_hash
from statesync.replay import replay
from statesync.rng import Rng
from statesync.store.sqlite import SQLiteStore
from statesync.synchronizer import SYSTEM_CLIENT, StateSynchronizer

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from statesync.client import ActionResult, Table

__all__ = ["GAME_REF", "BotSpec", "ChaosReport", "campaign", "layout", "main"]

GAME_REF = "statesync.games.holdem:Holdem"
STACK = 10**7
"""Starting chips: deep enough that no table's game ends during a campaign."""
SECRET_ENV = "STATESYNC_SECRET"
"""How the server and ``statesync token`` get the shared token secret (``load_secret``)."""
WEIGHTS = {"check": 6, "call": 6, "fold": 2, "bet": 2, "raise": 1, "all_in": 0}
"""How often a bot picks each legal action (the demo's bots: never all in, so stacks last)."""
_CLI = "import sys; from statesync.cli import main; sys.exit(main(sys.argv[1:]))"
"""The ``statesync`` command, run by the Python of the harness."""
_SERVE = """\
import os, signal, sys, threading, time
from statesync.cli import main
parent = os.getppid()
def orphaned():  # the harness was killed: do not outlive it
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGKILL)
threading.Thread(target=orphaned, daemon=True).start()
sys.exit(main(sys.argv[1:]))
"""
"""The ``statesync`` command (for ``serve``), plus a watchdog thread."""
_POLL = 0.05
_STATUS_EVERY = 0.1


@dataclass(frozen=True, slots=True)
class BotSpec:
    """One bot: a player at a table, with its client id and token."""

    table: str
    player: str
    client_id: str
    token: str = ""


def layout(
    tables: int, clients: int, bots_per_client: int, seed: int
) -> tuple[dict[str, list[str]], list[list[BotSpec]]]:
    """The tables (id -> players) and each client process's bots (without tokens).

    Bots are dealt to the client processes round robin, so with as many tables as bots per
    client each process holds one player at every table.

    >>> tables, clients = layout(2, 2, 2, seed=1)
    >>> tables
    {'chaos-0': ['p0', 'p1'], 'chaos-1': ['p0', 'p1']}
    >>> [[(b.table, b.player) for b in c] for c in clients]
    [[('chaos-0', 'p0'), ('chaos-1', 'p0')], [('chaos-0', 'p1'), ('chaos-1', 'p1')]]
    """
    total = clients * bots_per_client
    if tables < 1 or total < 2 * tables:
        raise ValueError("every table needs at least two bots")
    if -(-total // tables) > Holdem.max_players:
        raise ValueError(f"at most {Holdem.max_players} bots per table")
    seats: dict[str, list[str]] = {f"chaos-{t}": [] for t in range(tables)}
    order: list[tuple[str, str]] = []
    for i in range(total):
        table = f"chaos-{i % tables}"
        player = f"p{len(seats[table])}"
        seats[table].append(player)
        order.append((table, player))
    order.sort(key=lambda tp: (tp[0], int(tp[1][1:])))
    per_client: list[list[BotSpec]] = [[] for _ in range(clients)]
    for i, (table, player) in enumerate(order):
        k = i % clients
        per_client[k].append(BotSpec(table, player, f"{table}.{player}.c{k}.s{seed}"))
    for bots in per_client:
        bots.sort(key=lambda b: b.table)
    return seats, per_client


# ---------------------------------------------------------------- files shared by processes


def _write_json(path: Path, data: Any) -> None:
    """Replace ``path`` atomically (readers see the old or the new file, never a part)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, sort_keys=True))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _canonical(value: Any) -> Any:
    """``value`` as it reads back from JSON (how views are compared across processes)."""
    return json.loads(json.dumps(value, sort_keys=True))


# ---------------------------------------------------------------- the client process


class _Journal:
    """The client's record of answered actions: one JSON line each, flushed before the
    bot moves on (so the harness can read it even if the process is killed)."""

    def __init__(self, path: Path) -> None:
        self._file: TextIO = path.open("a")
        self.accepted = 0
        self.duplicates = 0
        self.rejected: Counter[str] = Counter()

    def record(self, bot: BotSpec, kind: str, payload: Any, result: ActionResult) -> None:
        line: dict[str, Any] = {
            "table": bot.table,
            "player": bot.player,
            "client": bot.client_id,
            "seq": result.seq,
            "version": result.version,
            "type": kind,
            "payload": payload,
            "duplicate": result.duplicate,
        }
        if result.ok:
            line["kind"] = "ack"
            self.accepted += 1
            self.duplicates += result.duplicate
        else:
            line["kind"] = "reject"
            line["code"] = result.code
            self.rejected[result.code] += 1
        self._file.write(json.dumps(line, sort_keys=True) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


async def _bot(
    bot: BotSpec, table: Table, rng: Rng, stop: asyncio.Event, journal: _Journal
) -> None:
    """Act whenever it is this bot's turn, until ``stop``; the action in flight is always
    finished (its outcome awaited across reconnects) before returning."""
    me = bot.player
    while not stop.is_set():
        try:
            state = await table.wait_for(lambda s: s["game"]["turn"] == me, timeout=0.2)
        except TimeoutError:
            continue
        if stop.is_set():
            return
        choices = legal_actions(state, me)
        if not choices:  # the game is over (it should not be, with deep stacks)
            await asyncio.sleep(0.05)
            continue
        kind, payload = rng.choice(
            [c for c in choices for _ in range(WEIGHTS.get(c[0], 1))] or choices
        )
        result = await table.act(kind, payload)
        journal.record(bot, kind, payload, result)
        if not result.ok:  # refused (rate limit, stale view): pause, then look again
            await asyncio.sleep(0.02)


def _bot_status(bot: BotSpec, table: Table | None) -> dict[str, Any]:
    if table is None:
        return {"table": bot.table, "player": bot.player, "client": bot.client_id}
    view = table.state
    stats = table.stats
    return {
        "table": bot.table,
        "player": bot.player,
        "client": bot.client_id,
        "version": table.version,
        "hash": state_hash(view) if view is not None else None,
        "view": view,
        "connected": table.connected,
        "closed": table.closed,
        "pending": table.pending,
        "reconnects": stats["reconnects"],
        "desyncs": stats["desyncs"],
        "snapshots": stats["snapshots"],
    }


async def client(config_path: Path) -> int:
    """One client process: connect its bots, play until the harness creates the stop file,
    settle, then keep reporting until SIGTERM."""
    cfg = json.loads(config_path.read_text())  # noqa: ASYNC240 - before anything runs
    bots = [BotSpec(**b) for b in cfg["bots"]]
    seed: int = cfg["seed"]
    status_path, stop_path = Path(cfg["status"]), Path(cfg["stop"])
    journal = _Journal(Path(cfg["journal"]))
    parent = os.getppid()
    loop = asyncio.get_running_loop()
    exiting = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, exiting.set)
    stop = asyncio.Event()
    tables: dict[BotSpec, Table] = {}
    errors: list[str] = []
    phase = "connecting"
    unresolved = 0
    last: dict[str, Any] | None = None

    def report() -> None:
        nonlocal last
        data = {
            "index": cfg["index"],
            "pid": os.getpid(),
            "phase": phase,
            "accepted": journal.accepted,
            "duplicates": journal.duplicates,
            "rejected": dict(journal.rejected),
            "unresolved": unresolved,
            "errors": list(errors),
            "bots": [_bot_status(b, tables.get(b)) for b in bots],
        }
        if data != last:
            _write_json(status_path, data)
            last = data

    try:
        for b in bots:
            tables[b] = await connect(
                cfg["url"],
                b.token,
                client_id=b.client_id,
                backoff=Backoff(initial=0.05, maximum=1.0, rng=random.Random(b.client_id)),
                open_timeout=cfg["timeout"],
            )
        phase = "playing"
        report()
        tasks = {
            asyncio.create_task(
                _bot(b, t, Rng.derive(seed, "bot", b.client_id), stop, journal),
                name=b.client_id,
            ): b
            for b, t in tables.items()
        }
        while not stop_path.exists() and not exiting.is_set():  # noqa: ASYNC240 - a stat
            if any(t.done() for t in tasks):
                break  # a bot failed: report it below
            if os.getppid() != parent:
                raise RuntimeError("the harness vanished")
            report()
            await asyncio.sleep(_POLL)
        stop.set()
        phase = "stopping"
        report()
        # Told to exit (SIGTERM) before the stop file: the harness is aborting, no settling.
        done, hung = await asyncio.wait(tasks, timeout=0 if exiting.is_set() else cfg["timeout"])
        for task in done:
            if not task.cancelled() and (e := task.exception()) is not None:
                errors.append(f"bot {tasks[task].client_id}: {e!r}")
        for task in hung:
            errors.append(f"bot {tasks[task].client_id}: its action never resolved")
            task.cancel()  # the outcome was never learned: not acknowledged
        await asyncio.gather(*hung, return_exceptions=True)
        unresolved = sum(t.pending for t in tables.values())
        phase = "settled"
        while not exiting.is_set() and os.getppid() == parent:
            report()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_STATUS_EVERY):
                    await exiting.wait()
    except Exception as e:
        errors.append(f"client {cfg['index']}: {e!r}")
        phase = "failed"
        report()
        return 1
    finally:
        journal.close()
        for t in tables.values():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await t.close()
    return 0


# ---------------------------------------------------------------- the harness


@dataclass
class ChaosReport:
    """What a campaign saw. ``ok`` when every check passed (see the module docstring)."""

    kills: int = 0
    restarts: int = 0
    clients: int = 0
    """Client processes."""
    bots: int = 0
    tables: int = 0
    acknowledged: int = 0
    """Actions the clients were told were accepted."""
    answered_as_duplicate: int = 0
    """Of those, answered as a duplicate of a re-sent action (committed before a kill)."""
    rejected: int = 0
    rejected_codes: dict[str, int] = field(default_factory=dict)
    found: int = 0
    """Acknowledged actions found in the log exactly once, at their version."""
    lost: int = 0
    duplicated: int = 0
    """``(client_id, seq)`` pairs that appear more than once in a log."""
    rejected_applied: int = 0
    """Actions the client was told were rejected, yet in the log."""
    unanswered_in_log: int = 0
    """Player actions in the log no client was told about."""
    unresolved: int = 0
    """Actions still without an outcome when the clients settled (a hang)."""
    converged: int = 0
    """Bots holding exactly the store's view of their player at the head version."""
    reconnects: int = 0
    desyncs: int = 0
    versions: int = 0
    """Sum of the tables' head versions."""
    replayed: int = 0
    """Versions re-run through the rules with no divergence."""
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.errors
            and self.lost == 0
            and self.duplicated == 0
            and self.rejected_applied == 0
            and self.unanswered_in_log == 0
            and self.unresolved == 0
            and self.converged == self.bots
        )

    def summary(self) -> str:
        return (
            f"kills={self.kills} acknowledged={self.acknowledged} found={self.found} "
            f"lost={self.lost} duplicated={self.duplicated} "
            f"answered_as_duplicate={self.answered_as_duplicate} rejected={self.rejected} "
            f"rejected_applied={self.rejected_applied} unanswered_in_log={self.unanswered_in_log} "
            f"unresolved={self.unresolved} converged={self.converged}/{self.bots} "
            f"reconnects={self.reconnects} desyncs={self.desyncs} versions={self.versions} "
            f"replayed={self.replayed} clients={self.clients} tables={self.tables} "
            f"seconds={self.seconds:.1f}"
        )


class _Abort(Exception):
    """A check failed in a way that makes going on pointless (the message says which)."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _spawn(
    args: Sequence[str], log: Path, env: dict[str, str], cwd: Path
) -> asyncio.subprocess.Process:
    """Start ``args`` in a new session (its own process group), output appended to ``log``."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    finally:
        os.close(fd)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the process group of ``proc`` and reap it."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


async def _healthy(port: int) -> bool:
    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation (Ctrl-C)
    try:
        async with asyncio.timeout(1):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        async with asyncio.timeout(2):
            await writer.drain()
            line = await reader.readline()
        return line.startswith(b"HTTP/1.1 200")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class _ServerProcess:
    """``statesync serve`` on a fixed port and database, started and SIGKILLed at will."""

    def __init__(self, workdir: Path, db: Path, port: int, env: dict[str, str], timeout: float):
        self.workdir, self.db, self.port, self.timeout = workdir, db, port, timeout
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self) -> None:
        """Start it and return once ``/healthz`` answers (retrying if the port is busy)."""
        deadline = time.monotonic() + self.timeout
        while True:
            self.starts += 1
            log = self.workdir / f"server-{self.starts}.log"
            self.proc = proc = await _spawn(
                (
                    sys.executable,
                    "-c",
                    _SERVE,
                    "serve",
                    "--db",
                    str(self.db),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--game",
                    GAME_REF,
                ),
                log,
                self.env,
                self.workdir,
            )
            while proc.returncode is None and time.monotonic() < deadline:
                if await _healthy(self.port):
                    return
                await asyncio.sleep(_POLL)
            await _kill(proc)
            if time.monotonic() >= deadline:
                raise _Abort(f"the server did not start within {self.timeout} s: {_tail(log)}")
            await asyncio.sleep(0.2)  # exited early (the port still busy?): try again

    async def kill(self) -> None:
        if self.proc is not None:
            await _kill(self.proc)
            self.proc = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except FileNotFoundError:
        return "(no output)"


async def _create_tables(db: Path, seats: dict[str, list[str]], seed: int) -> None:
    store = await SQLiteStore.open(db)
    try:
        for i, (table_id, players) in enumerate(seats.items()):
            await StateSynchronizer.create(
                Holdem(),
                store,
                table_id,
                players=players,
                seed=seed * 1000 + i,
                config={"stack": STACK},
                game_ref=GAME_REF,
                clock=time.time,
            )
    finally:
        await store.close()


async def _mint_tokens(
    per_client: list[list[BotSpec]], env: dict[str, str], cwd: Path
) -> list[list[BotSpec]]:
    """Each bot with a token from ``statesync token`` (run with the server's secret)."""

    async def mint(b: BotSpec) -> BotSpec:
        args = ("token", "--table", b.table, "--player", b.player, "--client", b.client_id)
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-c", _CLI, *args),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=cwd,
        )
        try:
            out, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        if proc.returncode != 0:
            raise _Abort(f"statesync token failed: {err.decode(errors='replace')[-500:]}")
        return BotSpec(b.table, b.player, b.client_id, out.decode().strip())

    return [list(await asyncio.gather(*(mint(b) for b in bots))) for bots in per_client]


class _Clients:
    """The client processes and their status files."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[asyncio.subprocess.Process] = []
        self.stop_path = workdir / "stop"

    def status_path(self, k: int) -> Path:
        return self.workdir / f"client-{k}.status.json"

    def journal_path(self, k: int) -> Path:
        return self.workdir / f"client-{k}.acks.jsonl"

    async def spawn(
        self, per_client: list[list[BotSpec]], url: str, seed: int, limit: float
    ) -> None:
        env = {k: v for k, v in os.environ.items() if k != SECRET_ENV}  # clients hold tokens
        for k, bots in enumerate(per_client):
            config = self.workdir / f"client-{k}.json"
            _write_json(
                config,
                {
                    "index": k,
                    "url": url,
                    "seed": seed,
                    "timeout": limit,
                    "bots": [
                        {
                            "table": b.table,
                            "player": b.player,
                            "client_id": b.client_id,
                            "token": b.token,
                        }
                        for b in bots
                    ],
                    "status": str(self.status_path(k)),
                    "journal": str(self.journal_path(k)),
                    "stop": str(self.stop_path),
                },
            )
            args = (sys.executable, "-m", "statesync.testing.chaos", "client", str(config))
            log = self.workdir / f"client-{k}.log"
            self.procs.append(await _spawn(args, log, env, self.workdir))

    def statuses(self) -> list[dict[str, Any] | None]:
        return [_read_json(self.status_path(k)) for k in range(len(self.procs))]

    def check_alive(self) -> None:
        for k, proc in enumerate(self.procs):
            if proc.returncode is not None:
                log = self.workdir / f"client-{k}.log"
                status = _read_json(self.status_path(k)) or {}
                raise _Abort(
                    f"client {k} exited with {proc.returncode}: {status.get('errors')} "
                    f"{_tail(log, 1500)}"
                )

    async def wait_phase(self, phases: set[str], limit: float, what: str) -> None:
        deadline = time.monotonic() + limit
        while True:
            statuses = self.statuses()
            if all(s is not None and s["phase"] in phases for s in statuses):
                return
            self.check_alive()
            if time.monotonic() > deadline:
                late = [k for k, s in enumerate(statuses) if s is None or s["phase"] not in phases]
                raise _Abort(f"clients {late} not {what} after {limit} s")
            await asyncio.sleep(_POLL)

    def accepted(self) -> int:
        return sum(s["accepted"] for s in self.statuses() if s is not None)

    async def stop(self) -> None:
        """SIGTERM (the clients close their tables), then SIGKILL whatever is left."""
        for proc in self.procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        waits = [asyncio.ensure_future(p.wait()) for p in self.procs]
        if waits:
            await asyncio.wait(waits, timeout=5)
        for proc in self.procs:
            await _kill(proc)


async def _wait_progress(
    clients: _Clients, server: _ServerProcess, baseline: int, limit: float
) -> None:
    """Wait until the clients have had more than ``baseline`` actions accepted."""
    deadline = time.monotonic() + limit
    while clients.accepted() <= baseline:
        clients.check_alive()
        if not server.alive:
            raise _Abort("the server exited by itself")
        if time.monotonic() > deadline:
            raise _Abort(
                f"no action accepted within {limit} s of a restart "
                f"(still {baseline}): did the clients reconnect?"
            )
        await asyncio.sleep(_POLL)


async def _converge(db: Path, clients: _Clients, report: ChaosReport, limit: float) -> list[str]:
    """Poll until every bot holds the store's head and view; returns the last mismatches."""
    deadline = time.monotonic() + limit
    store = await SQLiteStore.open(db)
    try:
        while True:
            mismatches: list[str] = []
            converged = 0
            loaded: dict[str, StateSynchronizer] = {}
            for k, status in enumerate(clients.statuses()):
                assert status is not None
                for bot in status["bots"]:
                    table_id, player = bot["table"], bot["player"]
                    if table_id not in loaded:
                        try:
                            loaded[table_id] = await StateSynchronizer.load(
                                store, table_id, Holdem()
                            )
                        except Exception as e:  # a torn read while the server writes
                            mismatches.append(f"{table_id}: cannot load yet: {e!r}")
                            continue
                    sync = loaded[table_id]
                    problem = None
                    if not bot.get("connected"):
                        problem = "not connected"
                    elif bot.get("pending"):
                        problem = f"{bot['pending']} actions pending"
                    elif bot["version"] != sync.version:
                        problem = f"version {bot['version']} != store head {sync.version}"
                    elif bot["hash"] != sync.view_hash(player):
                        problem = f"view hash {bot['hash']} != {sync.view_hash(player)}"
                    elif bot["view"] != _canonical(sync.view(player)):
                        problem = "view differs from the store's (same hash?)"
                    if problem is None:
                        converged += 1
                    else:
                        mismatches.append(f"client {k} {bot['client']}: {problem}")
            report.converged = converged
            if not mismatches or time.monotonic() > deadline:
                return mismatches
            clients.check_alive()
            await asyncio.sleep(0.2)
    finally:
        await store.close()


def _read_journals(
    clients: _Clients, report: ChaosReport
) -> tuple[dict[tuple[str, str, int], dict[str, Any]], set[tuple[str, str, int]]]:
    acked: dict[tuple[str, str, int], dict[str, Any]] = {}
    rejected: set[tuple[str, str, int]] = set()
    codes: Counter[str] = Counter()
    report.answered_as_duplicate = 0
    for k in range(len(clients.procs)):
        path = clients.journal_path(k)
        if not path.exists():
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            try:
                entry = json.loads(line)
            except ValueError:
                report.errors.append(f"client {k} journal line {n} is torn")
                continue
            key = (entry["table"], entry["client"], entry["seq"])
            if key in acked or key in rejected:
                report.errors.append(f"{key} was answered twice to the client")
            if entry["kind"] == "ack":
                acked[key] = entry
                report.answered_as_duplicate += bool(entry["duplicate"])
            else:
                rejected.add(key)
                codes[entry["code"]] += 1
    report.acknowledged = len(acked)
    report.rejected = len(rejected)
    report.rejected_codes = dict(sorted(codes.items()))
    return acked, rejected


async def _verify_log(
    db: Path, tables: Sequence[str], clients: _Clients, report: ChaosReport, *, settled: bool
) -> None:
    """Account for every answered action against the store (the server must be dead).
    Unless the clients ``settled``, actions may have been in flight: a logged action no
    client heard of is then not an error."""
    acked, rejected = _read_journals(clients, report)
    in_log: dict[tuple[str, str, int], list[int]] = {}
    records: dict[tuple[str, int], Any] = {}
    store = await SQLiteStore.open(db)
    try:
        for table_id in tables:
            stored = await store.load(table_id, retain=10**12)  # from the oldest checkpoint
            head = stored.head
            report.versions += head
            for r in await store.read_log(table_id, 1, head):
                a = r.action
                if a is None or a.client_id == SYSTEM_CLIENT:
                    continue
                in_log.setdefault((table_id, a.client_id, a.seq), []).append(r.version)
                records[(table_id, r.version)] = a
            result = replay(stored, Holdem())
            report.replayed += stored.checkpoint.version + result.checked
            if not result.ok:
                report.errors.append(f"{table_id}: replay diverged at {result.divergence}")
    finally:
        await store.close()
    for key, versions in in_log.items():
        if len(versions) > 1:
            report.duplicated += 1
            report.errors.append(f"{key} is in the log {len(versions)} times: {versions}")
    missing: list[str] = []
    for key, entry in acked.items():
        versions = in_log.get(key, [])
        a = records.get((key[0], entry["version"]))
        if (
            versions == [entry["version"]]
            and a is not None
            and (a.player_id, a.type, _canonical(a.payload))
            == (entry["player"], entry["type"], entry["payload"])
        ):
            report.found += 1
        else:
            missing.append(f"{key}@{entry['version']} (log: {versions})")
    report.lost = len(missing)
    if missing:
        report.errors.append(f"{len(missing)} acknowledged actions lost: {missing[:5]}")
    applied = sorted(rejected & in_log.keys())
    report.rejected_applied = len(applied)
    if applied:
        report.errors.append(f"actions answered as rejected are in the log: {applied[:5]}")
    unanswered = sorted(in_log.keys() - acked.keys() - rejected)
    report.unanswered_in_log = len(unanswered) if settled else 0
    if unanswered and settled:
        report.errors.append(f"actions in the log no client heard of: {unanswered[:5]}")


async def campaign(
    workdir: Path,
    kills: int,
    *,
    seed: int = 1,
    clients: int = 4,
    bots_per_client: int = 3,
    tables: int = 3,
    interval: tuple[float, float] = (0.5, 2.0),
    timeout: float = 30.0,  # noqa: ASYNC109 - bounds many waits, not one call
    progress: Callable[[ChaosReport], None] | None = None,
) -> ChaosReport:
    """Run a chaos campaign in ``workdir`` (see the module docstring): ``kills`` SIGKILLs of
    a live server under load from ``clients`` processes of ``bots_per_client`` bots each,
    spread over ``tables`` tables. ``interval`` bounds the random delay before each kill;
    ``timeout`` bounds every wait (start, progress after a restart, settling, converging),
    whose expiry is reported as an error. Every child process is killed before returning.
    """
    lo, hi = interval
    if not 0 <= lo <= hi:
        raise ValueError("interval must be (low, high) with 0 <= low <= high")
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - before anything runs
    rng = Rng(seed)
    seats, per_client = layout(tables, clients, bots_per_client, seed)
    report = ChaosReport(clients=clients, bots=clients * bots_per_client, tables=tables)
    db = workdir / "chaos.db"
    # The secret as the server loads it (load_secret): the same for `statesync token`.
    env = {**os.environ, SECRET_ENV: secrets.token_hex(32)}
    await _create_tables(db, seats, seed)
    server = _ServerProcess(workdir, db, _free_port(), env, timeout)
    procs = _Clients(workdir)
    settled = False
    try:
        try:
            per_client = await _mint_tokens(per_client, env, workdir)
            await server.start()
            url = f"ws://127.0.0.1:{server.port}/ws"
            await procs.spawn(per_client, url, seed, timeout)
            await procs.wait_phase({"playing"}, timeout, "connected")
            baseline = 0
            for _ in range(kills):
                await asyncio.sleep(lo + (hi - lo) * rng.random())
                await _wait_progress(procs, server, baseline, timeout)
                await server.kill()
                report.kills += 1
                await server.start()
                report.restarts += 1
                # Status files lag by _POLL; a restart takes longer than that, so the
                # count they give now is all answered by the server just killed.
                baseline = procs.accepted()
                if progress is not None:
                    _live(report, procs)
                    progress(report)
            await _wait_progress(procs, server, baseline, timeout)  # the last one serves too
            procs.stop_path.touch()
            await procs.wait_phase({"settled"}, timeout + 10, "settled")
            settled = True
            mismatches = await _converge(db, procs, report, timeout)
            if mismatches:
                report.errors.append(f"{len(mismatches)} bots did not converge: {mismatches[:5]}")
        except _Abort as e:
            report.errors.append(str(e))
        finally:
            await server.kill()  # SIGKILL: the store stays exactly as the clients saw it
            statuses = procs.statuses()
            await procs.stop()
        _live(report, procs, statuses)
        for k, status in enumerate(statuses):
            if status is not None:
                report.errors.extend(f"client {k}: {e}" for e in status["errors"])
                report.unresolved += status["unresolved"]
        await _verify_log(db, list(seats), procs, report, settled=settled)
    finally:
        await server.kill()
        for proc in procs.procs:
            await _kill(proc)
    report.seconds = time.monotonic() - started
    return report


def _live(
    report: ChaosReport, clients: _Clients, seen: list[dict[str, Any] | None] | None = None
) -> None:
    """Set the clients' counters in ``report`` from their status files (or ``seen``)."""
    statuses = [s for s in (clients.statuses() if seen is None else seen) if s is not None]
    report.acknowledged = sum(s["accepted"] for s in statuses)
    report.answered_as_duplicate = sum(s["duplicates"] for s in statuses)
    report.rejected = sum(sum(s["rejected"].values()) for s in statuses)
    report.reconnects = sum(b.get("reconnects", 0) for s in statuses for b in s["bots"])
    report.desyncs = sum(b.get("desyncs", 0) for s in statuses for b in s["bots"])


# ---------------------------------------------------------------- command line


def _progress_line(kills: int, started: float) -> Callable[[ChaosReport], None]:
    def show(r: ChaosReport) -> None:
        print(
            f"\rkill {r.kills:>4}/{kills}  acknowledged {r.acknowledged:>7}  "
            f"as duplicate {r.answered_as_duplicate:>4}  rejected {r.rejected:>5}  "
            f"reconnects {r.reconnects:>5}  desyncs {r.desyncs}  "
            f"{time.monotonic() - started:>6.1f} s",
            end="",
            flush=True,
        )

    return show


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["client"]:
        if len(args) != 2:
            print("usage: python -m statesync.testing.chaos client CONFIG", file=sys.stderr)
            return 2
        return asyncio.run(client(Path(args[1])))
    parser = argparse.ArgumentParser(
        prog="python -m statesync.testing.chaos",
        description="SIGKILL a live statesync server under load from client processes",
    )
    parser.add_argument("--kills", type=int, default=50, help="server kills (50)")
    parser.add_argument("--seed", type=int, default=1, help="seed of kill times and bots (1)")
    parser.add_argument("--clients", type=int, default=4, help="client processes (4)")
    parser.add_argument("--bots", type=int, default=3, help="bots per client process (3)")
    parser.add_argument("--tables", type=int, default=3, help="tables (3)")
    parser.add_argument("--min-interval", type=float, default=0.5, help="seconds (0.5)")
    parser.add_argument("--max-interval", type=float, default=2.0, help="seconds (2.0)")
    parser.add_argument("--timeout", type=float, default=30.0, help="bound of every wait (30)")
    parser.add_argument("--workdir", help="keep the database, logs and journals here")
    ns = parser.parse_args(args)
    if ns.kills < 0:
        parser.error("--kills must not be negative")
    started = time.monotonic()

    async def run(workdir: Path) -> ChaosReport:
        return await campaign(
            workdir,
            ns.kills,
            seed=ns.seed,
            clients=ns.clients,
            bots_per_client=ns.bots,
            tables=ns.tables,
            interval=(ns.min_interval, ns.max_interval),
            timeout=ns.timeout,
            progress=_progress_line(ns.kills, started),
        )

    try:
        if ns.workdir:
            report = asyncio.run(run(Path(ns.workdir)))
        else:
            with tempfile.TemporaryDirectory(prefix="statesync-chaos-") as tmp:
                report = asyncio.run(run(Path(tmp)))
    except ValueError as e:
        parser.error(str(e))
    print()
    print(report.summary())
    if report.rejected_codes:
        print("rejections:", ", ".join(f"{c}={n}" for c, n in report.rejected_codes.items()))
    for error in report.errors:
        print("ERROR:", error)
    print("OK" if report.ok else "FAILED")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
