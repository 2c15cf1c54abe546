"""One simulation run: a server, its store, clients and faults, all from one seed.

Theory of operation
-------------------
:func:`simulate` builds a :class:`World` on a fresh :class:`~statesync.sim.loop.SimLoop` and
runs it to the end. Everything that varies comes from ``random.Random(seed)``: the number of
players, link latencies, think times, clock skews, and when each fault strikes. The code under
test is the real thing -- :class:`~statesync.server.ws.Server`'s connection handling,
:class:`~statesync.server.connection.Connection`, the table actors, the sans-I/O protocol
sessions on both ends, the synchronizer, the wire codec -- on the simulated network of
:mod:`statesync.sim.net` and the store stack of :mod:`statesync.sim.store`.

A run has three phases:

1. **Play** (``SimGame.play_seconds`` of virtual time): bots act; faults strike -- latency
   spikes (loss), dropped connections, half-open connections whose late frames arrive after
   the reconnect (reordering, duplication), re-sent old actions, partitions, server crashes
   and restarts from the store, store write failures, lost commit acknowledgements and store
   outages.
2. **Heal**: faults stop and bots stop acting; the run waits (up to :data:`HEAL_LIMIT`) until
   the server is up and every client is connected, has every action answered and holds the
   server's current version of its view.
3. **Check**: each client's view equals the server's view for its player, and its hash; the
   live table equals the table loaded from the store (every stored hash checked) and the log
   replayed through the rules; every action a client saw accepted is in the log exactly once,
   at the version it was told; no action answered as rejected is in the log; nothing in the
   log was not sent; no client saw a desync or an internal error; the server logged no error
   and no task died; and the leak oracle found nothing.

The :class:`SimResult` lists every problem found, counters, and a fingerprint of everything
delivered on the network: the same seed gives the same fingerprint on any machine.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
import random
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from statesync import reasons
from statesync.game import view_of
from statesync.hashing import state_hash
from statesync.protocol.limits import Limits
from statesync.replay import replay
from statesync.server.auth import TokenSigner
from statesync.server.metrics import Metrics
from statesync.server.ws import Server
from statesync.sim.bots import GAMES, policy_for
from statesync.sim.client import SimClient
from statesync.sim.loop import GROUP, SimLoop
from statesync.sim.net import Link, Network
from statesync.sim.oracle import LeakOracle
from statesync.sim.store import ObservedStore, ProcessStore
from statesync.store.faults import FaultyStore
from statesync.synchronizer import SYSTEM_CLIENT, StateSynchronizer

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from statesync.game import Game
    from statesync.sim.bots import SimGame
    from statesync.sim.net import Wire

__all__ = ["FAULTS", "SimResult", "parse_faults", "simulate"]

FAULTS: Final = ("loss", "drop", "reorder", "dup", "partition", "crash", "store", "skew")
"""The fault kinds ``--faults`` can name (``all`` and ``none`` are shorthands)."""

HEAL_LIMIT: Final = 60.0
"""Virtual seconds the heal phase may take before the run counts as not converged."""
CLIENT_GIVES_UP: Final = 3.0
"""A client gives a stalled connection up after this many seconds of its own clock."""
LIMITS: Final = Limits(idle_timeout=6.0, heartbeat_interval=3.0, handshake_timeout=3.0)
"""The server's limits in the simulation (short timeouts, so partitions trip them)."""
SECRET: Final = b"statesync-simulation-secret-0000"

_log = logging.getLogger("statesync")


def parse_faults(spec: str) -> tuple[str, ...]:
    """``"all"``, ``"none"`` or a comma-separated subset of :data:`FAULTS`, as a sorted tuple.

    >>> parse_faults("crash,drop")
    ('crash', 'drop')
    >>> parse_faults("none")
    ()
    >>> parse_faults("flood")
    Traceback (most recent call last):
    ...
    ValueError: unknown fault 'flood' (choose from all, none, loss, drop, ...)
    """
    spec = spec.strip()
    if spec == "all":
        return tuple(sorted(FAULTS))
    if spec in ("none", ""):
        return ()
    names = {s.strip() for s in spec.split(",") if s.strip()}
    for name in sorted(names):
        if name not in FAULTS:
            choices = ", ".join(("all", "none", *FAULTS))
            raise ValueError(f"unknown fault {name!r} (choose from {choices})")
    return tuple(sorted(names))


@dataclass
class SimResult:
    """What one run found. ``ok`` when :attr:`problems` is empty."""

    game: str
    seed: int
    faults: tuple[str, ...]
    problems: list[str] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    fingerprint: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def command(self) -> str:
        """The one-line command that runs this seed again, exactly."""
        faults = ",".join(self.faults) or "none"
        return f"statesync sim --game {self.game} --seed {self.seed} --faults {faults}"


def simulate(game: str, seed: int, faults: tuple[str, ...] | str = "all") -> SimResult:
    """Run one seed of ``game`` (a key of :data:`~statesync.sim.bots.GAMES`) with the given
    faults, and return what it found. Deterministic: same arguments, same result.

    >>> r = simulate("tictactoe", 7, "none")
    >>> r.ok, r.stats["accepted"] > 0
    (True, True)
    """
    if game not in GAMES:
        raise ValueError(f"unknown game {game!r} (choose from {', '.join(GAMES)})")
    chosen = parse_faults(faults) if isinstance(faults, str) else tuple(sorted(faults))
    result = SimResult(game, seed, chosen)
    loop = SimLoop()
    world = World(loop, GAMES[game], seed, frozenset(chosen), result)
    handler = _ErrorLog(world)
    _log.addHandler(handler)
    try:
        loop.run_until_complete(world.run())
    except Exception as e:  # a crash of the simulation itself is a finding too
        result.problems.append(f"the simulation failed: {type(e).__name__}: {e}")
    finally:
        _log.removeHandler(handler)
        _shutdown(loop)
    result.fingerprint = world.fingerprint.hexdigest()
    return result


def _shutdown(loop: SimLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.close()


class _ErrorLog(logging.Handler):
    """Errors the live server logs are findings; a dead incarnation's are not."""

    def __init__(self, world: World) -> None:
        super().__init__(logging.ERROR)
        self.world = world

    def emit(self, record: logging.LogRecord) -> None:
        if not self.world.from_dead_process():
            exc = f" ({record.exc_info[1]!r})" if record.exc_info else ""
            self.world.problem(f"the server logged: {record.getMessage()}{exc}")


class _Process:
    """One incarnation of the server process."""

    def __init__(self, world: World, number: int) -> None:
        self.number = number
        self.group = f"server-{number}"
        self.store = ProcessStore(world.faulty, world.rng, world.store_latency)
        game = world.game
        self.server = Server(
            game,
            self.store,
            world.signer,
            limits=LIMITS,
            tick_rate=game.tick_rate or None,
            clock=world.loop.time,
            metrics=Metrics(),
        )
        self.wires: list[Wire] = []
        self.context = contextvars.copy_context()
        self.context.run(GROUP.set, self.group)
        self.tasks: set[asyncio.Task[None]] = set()
        self._spawn(self.server._tick_loop())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro, context=self.context)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def accept(self, wire: Wire) -> None:
        self.wires.append(wire)
        self._spawn(self.server._handle(wire.server))  # type: ignore[arg-type]


class World:
    """Everything of one run (see the module docstring)."""

    def __init__(
        self,
        loop: SimLoop,
        sim_game: SimGame,
        seed: int,
        faults: frozenset[str],
        result: SimResult,
    ) -> None:
        self.loop = loop
        self.sim_game = sim_game
        self.game: Game = sim_game.make()
        self.rng = random.Random(f"statesync-sim/{sim_game.name}/{seed}")
        self.faults = faults
        self.result = result
        self.stats = result.stats
        self.fingerprint = hashlib.blake2b(digest_size=16)
        self.signer = TokenSigner(SECRET)
        self.observed = ObservedStore()
        rng = self.rng
        self.faulty = FaultyStore(
            self.observed,
            fail_rate=rng.uniform(0.0, 0.03) if "store" in faults else 0.0,
            seed=rng.randrange(2**32),
        )
        self.store_latency = rng.uniform(0.0, 0.004)
        self.oracle = LeakOracle(self.game, self.observed.state_at, self.observed.latest)
        self.network = Network(
            loop, rng, accept=self._accept, observe=self.oracle.check, trace=self._trace
        )
        self.process: _Process | None = None
        self.processes = 0
        self._dead_groups: set[str] = set()
        self._task_group: weakref.WeakKeyDictionary[asyncio.Task[Any], str] = (
            weakref.WeakKeyDictionary()
        )
        self.clients: list[SimClient] = []
        self.tables: dict[str, list[str]] = {}
        self.chaos = bool(faults)
        self.slack = int(2 * self.game.tick_rate)
        """How many versions a client may be behind at the end (real-time tables move on)."""
        loop.set_exception_handler(self._loop_error)

    # ------------------------------------------------------------------ bookkeeping

    def problem(self, text: str) -> None:
        if len(self.result.problems) < 50:
            self.result.problems.append(text)

    def _trace(self, number: int, kind: str, data: bytes) -> None:
        f = self.fingerprint
        f.update(f"{self.loop.time():.6f} {number} {kind} {len(data)}\n".encode())
        f.update(data)

    def from_dead_process(self) -> bool:
        """True when the running task belongs to a crashed server incarnation."""
        try:
            task = asyncio.current_task(self.loop)
        except RuntimeError:
            return False
        group = self.loop.group_of(task) if task is not None else None
        return group in self._dead_groups

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        task = context.get("task") or context.get("future")
        group = self.loop.group_of(task) if isinstance(task, asyncio.Task) else None
        if group in self._dead_groups:
            return
        exc = context.get("exception")
        self.problem(f"unhandled error in the event loop: {context.get('message')} {exc!r}")

    # ------------------------------------------------------------------ setup

    async def run(self) -> None:
        await self._setup()
        self._start_server()
        for i, client in enumerate(self.clients):
            client.start(0.01 * i + self.rng.random() * 0.2)
        if self.chaos:
            self._schedule_chaos()
        await asyncio.sleep(self.sim_game.play_seconds)
        self._heal()
        if await self._converged():
            await self._check()
        self._check_events()

    async def _setup(self) -> None:
        sg, rng = self.sim_game, self.rng
        skewed = "skew" in self.faults
        loss = rng.uniform(0.0, 0.1) if "loss" in self.faults else 0.0
        for t in range(sg.tables):
            table = f"{sg.name}-{t}"
            n = rng.randint(*sg.players)
            players = [f"p{i}" for i in range(n)]
            self.tables[table] = players
            await StateSynchronizer.create(
                self.game, self.observed, table, players=players, config=sg.config,
                seed=rng.randrange(2**32), game_ref=f"statesync.sim:{sg.name}",
            )  # fmt: skip
            policy = policy_for(sg)
            for who in [*players, None]:
                client_id = f"{who or 'watcher'}-{t}"
                link = Link(
                    latency=rng.uniform(0.001, 0.05), jitter=rng.uniform(0.0, 0.02), loss=loss
                )
                self.clients.append(
                    SimClient(
                        loop=self.loop,
                        network=self.network,
                        game=self.game,
                        table=table,
                        player=who,
                        token=self.signer.issue(table, who, ttl=10**6, now=0.0),
                        client_id=client_id,
                        rng=random.Random(rng.randrange(2**63)),
                        link=link,
                        skew=rng.uniform(0.9, 1.1) if skewed else 1.0,
                        think=sg.think * rng.uniform(0.5, 2.0),
                        policy=policy if who is not None else None,
                    )
                )

    def _start_server(self) -> None:
        self.process = _Process(self, self.processes)
        self.processes += 1
        self.stats["server_starts"] += 1

    def _accept(self, wire: Wire) -> bool:
        process = self.process
        if process is None:
            return False
        client = wire.client
        assert isinstance(client, SimClient)
        self.oracle.watch(wire, client.table, client.player)
        process.accept(wire)
        return True

    # ------------------------------------------------------------------ faults

    def _schedule_chaos(self) -> None:
        kinds = [k for k in ("drop", "dup", "partition", "crash", "store") if k in self.faults]
        if not kinds:
            return
        mean = {"drop": 1.5, "dup": 1.0, "partition": 3.0, "crash": 3.0, "store": 3.0}
        for kind in kinds:
            self._after(self.rng.expovariate(1.0 / mean[kind]), self._strike, kind, mean[kind])

    def _after(self, seconds: float, callback: Any, *args: Any) -> None:
        self.loop.call_at(self.loop.time() + seconds, callback, *args)

    def _strike(self, kind: str, mean: float) -> None:
        if not self.chaos:
            return
        self._after(self.rng.expovariate(1.0 / mean), self._strike, kind, mean)
        rng = self.rng
        if kind == "drop":
            wires = [c.wire for c in self.clients if c.wire is not None and not c.wire.cut]
            if wires:
                wire = rng.choice(wires)
                late = rng.uniform(0.0, 2.0) if "reorder" in self.faults else 0.0
                wire.drop(late)
        elif kind == "dup":
            if rng.choice(self.clients).resend_old_act():
                self.stats["dup_resends"] += 1
        elif kind == "partition":
            seconds = rng.uniform(0.1, 8.0)
            for client in rng.sample(self.clients, k=rng.randint(1, len(self.clients))):
                self._partition(client, seconds)
        elif kind == "crash":
            if self.process is not None:
                self.loop.create_task(self._crash(rng.uniform(0.05, 1.5)))
        elif kind == "store":
            self._store_fault()

    def _partition(self, client: SimClient, seconds: float) -> None:
        wire = client.wire
        if wire is None or wire.cut:
            return
        wire.stall(seconds)
        if seconds > CLIENT_GIVES_UP * client.skew:

            def give_up() -> None:
                if client.wire is wire:
                    self.stats["client_gave_up"] += 1
                    client.disconnect()

            self._after(CLIENT_GIVES_UP * client.skew, give_up)

    def _store_fault(self) -> None:
        rng, faulty = self.rng, self.faulty
        pick = rng.random()
        if pick < 0.4:
            faulty.lose_next_ack()
            self.stats["store_lost_acks"] += 1
        elif pick < 0.7:
            faulty.fail_next(rng.randint(1, 3))
            self.stats["store_failures"] += 1
        else:
            faulty.down = True
            self.stats["store_outages"] += 1

            def up() -> None:
                faulty.down = False

            self._after(rng.uniform(0.1, 1.5), up)

    async def _crash(self, downtime: float) -> None:
        process = self.process
        if process is None:
            return
        self.process = None
        self.stats["crashes"] += 1
        process.store.dead = True
        self._dead_groups.add(process.group)
        for wire in process.wires:
            wire.sever()
        for _ in range(100):
            tasks = self.loop.tasks_of(process.group)
            if not tasks:
                break
            for task in tasks:
                task.cancel()
            await asyncio.sleep(0)
        else:
            self.problem("the crashed server's tasks would not stop")
        await asyncio.sleep(downtime)
        if self.process is None:
            self._start_server()

    def _heal(self) -> None:
        self.chaos = False
        self.faulty.fail_rate = 0.0
        self.faulty.pending_failures = 0
        self.faulty.lost_acks = 0
        self.faulty.down = False
        for client in self.clients:
            client.acting = False

    # ------------------------------------------------------------------ the end

    async def _converged(self) -> bool:
        start = self.loop.time()
        while self.loop.time() < start + HEAL_LIMIT:
            if self.process is None:
                self._start_server()
            if not self._lagging():
                self.stats["heal_ms"] = round(1000 * (self.loop.time() - start))
                return True
            await asyncio.sleep(0.05)
        for text in self._lagging()[:10]:
            self.problem(f"did not converge within {HEAL_LIMIT:.0f} s after healing: {text}")
        return False

    def _lagging(self) -> list[str]:
        process = self.process
        if process is None:
            return ["the server is down"]
        out = []
        for client in self.clients:
            actor = process.server.tables.get(client.table)
            if not client.open:
                out.append(f"{client.client_id} is not connected")
            elif client.session.pending:
                out.append(f"{client.client_id} waits for {sorted(client.session.pending)}")
            elif actor is None:
                out.append(f"{client.table} is not loaded")
            elif client.session.version < 0 or not (
                0 <= actor.sync.version - client.session.version <= self.slack
            ):
                out.append(
                    f"{client.client_id} holds v{client.session.version}, "
                    f"the table is at v{actor.sync.version}"
                )
        return out

    async def _check(self) -> None:
        """The end state: each table against its store, its log and its clients."""
        process = self.process
        assert process is not None
        for table in self.tables:
            actor = process.server.tables[table]
            await actor.drain()
            await self._check_table(table, actor.sync)

    def _check_events(self) -> None:
        """What happened on the way: desyncs, internal errors, leaks; and the counters."""
        stats = self.stats
        for client in self.clients:
            for d in client.desyncs:
                self.problem(f"{client.client_id} desynced at v{d.version}: {d.reason}")
            if client.errors.get("server/internal"):
                self.problem(f"{client.client_id} got server/internal errors")
            stats["desyncs"] += len(client.desyncs)
            stats["reconnects"] += max(0, client.welcomes - 1)
            stats["errors"] += sum(client.errors.values())
        stats["leaks"] += len(self.oracle.leaks)
        for leak in self.oracle.leaks:
            self.problem(f"leak: {leak}")
        net = self.network
        stats.update(
            frames_to_server=net.sent_to_server,
            frames_to_clients=net.sent_to_client,
            drops=net.drops,
            partitions=net.partitions,
            refused=net.refused,
            oracle_frames=self.oracle.frames,
            oracle_values=self.oracle.values,
            store_injected=self.faulty.injected,
        )

    async def _check_table(self, table: str, live: StateSynchronizer) -> None:
        stats = self.stats
        store = self.observed
        # The table as stored: every hash checked on load, and the log re-run by the rules.
        stored = await StateSynchronizer.load(store, table, self.game)
        if (stored.version, stored.hash) != (live.version, live.hash) or stored.state != live.state:
            self.problem(
                f"{table}: the live table (v{live.version} {live.hash}) differs from the store "
                f"(v{stored.version} {stored.hash})"
            )
        observed = self.observed.latest(table)
        if observed is None or observed[0] != live.version or observed[1] != live.state:
            self.problem(f"{table}: the log's deltas do not add up to the live state")
        report = replay(await store.load(table, retain=10**9), self.game)
        if not report.ok:
            self.problem(f"{table}: replaying the log diverges: {report.divergence}")
        stats["versions"] += live.version
        # Every client holds the server's view of its player at its version, and its hash
        # (the version is the table's, or on a real-time table at most ``slack`` behind).
        for client in (c for c in self.clients if c.table == table):
            replica = client.session.replica
            full = self.observed.state_at(table, client.session.version)
            if replica is None or full is None:
                self.problem(f"{client.client_id}: holds no state of the current epoch")
                continue
            view = view_of(full, client.player)
            if replica.state != view:
                self.problem(f"{client.client_id}: its state is not its view at v{replica.version}")
            elif replica.hash != state_hash(view):
                self.problem(
                    f"{client.client_id}: its hash is not its view's at v{replica.version}"
                )
            if replica.version == live.version and replica.hash != live.view_hash(client.player):
                self.problem(f"{client.client_id}: the server's view hash is not its view's")
        # Acknowledged actions: each in the log once, at its version; nothing extra.
        log = await store.read_log(table, 1, live.version)
        where: dict[tuple[str, int], list[int]] = {}
        for record in log:
            action = record.action
            if action is not None and action.client_id != SYSTEM_CLIENT:
                where.setdefault((action.client_id, action.seq), []).append(record.version)
        by_id = {c.client_id: c for c in self.clients if c.table == table}
        for (client_id, seq), versions in where.items():
            if len(versions) > 1:
                self.problem(f"{table}: {client_id} #{seq} took effect {len(versions)} times")
            sender = by_id.get(client_id)
            if sender is None or seq not in sender.sent:
                self.problem(f"{table}: {client_id} #{seq} is in the log but was never sent")
        for sender in by_id.values():
            self._check_answers(table, sender, where)

    def _check_answers(
        self, table: str, client: SimClient, where: dict[tuple[str, int], list[int]]
    ) -> None:
        stats = self.stats
        for seq in client.sent:
            answers = client.answers.get(seq, [])
            stats["actions"] += 1
            if not answers:
                self.problem(f"{client.client_id} #{seq} was never answered")
                continue
            if len(answers) > 1:
                stats["answered_twice"] += 1
            logged = where.get((client.client_id, seq), [])
            accepted = {a.version for a in answers if a.ok}
            if len(accepted) > 1:
                self.problem(f"{client.client_id} #{seq} was accepted at {sorted(accepted)}")
            if accepted:
                stats["accepted"] += 1
                if logged != sorted(accepted):
                    self.problem(
                        f"{client.client_id} #{seq} was acknowledged at v{min(accepted)} but "
                        f"the log has it at {logged or 'no version'}"
                    )
            else:
                stats["rejected"] += 1
                codes = sorted({a.code for a in answers})
                for code in codes:
                    stats[f"rejected:{code}"] += 1
                # A rejection is the truth when it is given; the same action re-sent later
                # (a duplicate, or a retry) may still be applied after it -- but never at or
                # before the version the rejection was given at.
                for a in answers:
                    if logged and logged[0] <= a.version:
                        self.problem(
                            f"{client.client_id} #{seq} was answered {a.code} at v{a.version} "
                            f"but had taken effect at v{logged[0]}"
                        )
                if logged:
                    stats["applied_after_rejection"] += 1
                if reasons.STORE_UNAVAILABLE in codes:
                    stats["store_refusals"] += 1
