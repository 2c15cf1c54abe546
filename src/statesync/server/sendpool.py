"""Send workers: the writes of a large fan-out shared with helper processes.

A flush that hands the same frame to a thousand spectators spends most of its time in the
kernel: each small TCP write costs several microseconds (on loopback it also runs the
receiver's side). One Python process cannot spread that over cores -- threads serialize on
the GIL between two writes -- so a :class:`SendPool` of ``workers`` helper processes
(:mod:`statesync.server.send_worker`) takes a share of the writes. Measured in
docs/benchmarks.md ("Session 8").

How a frame is shared out:

* A :class:`~statesync.server.connection.Connection` offers a frame through :meth:`take`
  only when the frame goes to at least :attr:`SendPool.min_audience` connections and nothing
  is queued for its socket, not even in the transport's buffer (a worker writes to the
  socket itself: its frame would overtake those bytes). Of every ``SHARE * workers + 1``
  such offers the server keeps one for itself and passes the others to the workers in turn
  (:data:`SHARE`: the server also does every connection's own work). The server writes its
  share after the flush, once every batch is on its way, so the workers start as early as
  they can.
* The pool batches a lane's takes per frame (:attr:`SendPool.batch` sockets, 50 by default)
  and sends each batch as soon as it is full, the rest once the current callback returns
  (``call_soon``), with the sockets' descriptors attached (``SCM_RIGHTS``): the worker holds
  them only while it writes, so a socket the server closes is not kept open.
* Until the worker answers, the connection writes nothing to that socket (its own frames
  wait, and so do the WebSocket library's: :meth:`MessageConnection.hold_writes
  <statesync.server.connection.MessageConnection.hold_writes>`). The answer says which
  writes fell short; the connection writes the rest of the frame itself, first, so frames
  never interleave (see :meth:`Connection.offload_done
  <statesync.server.connection.Connection.offload_done>`).
* A command that cannot be sent (the worker is behind) ends its takes as not written: the
  connections write the frame themselves. A worker that dies, or that :meth:`check` kills
  because a command has waited :data:`STUCK_AFTER` seconds, ends the takes it was sent as
  unknown: it may have written part of a frame, so those connections are dropped and their
  clients resume from the versions they hold. A dead worker's lane takes nothing more; the
  server logs it and counts it in ``send_worker_failures_total``. Workers ignore the
  signals a process group gets (Ctrl-C, ``timeout``, a service manager) and end when the
  server closes their socket, so a graceful stop can still use them.

The pool is the server's: :meth:`start` when the server starts, :meth:`close` after the last
connection has closed.
"""

from __future__ import annotations

import array
import asyncio
import logging
import socket
import sys
import time
from typing import TYPE_CHECKING, Final, Protocol

from statesync.server import send_worker

if TYPE_CHECKING:
    from collections.abc import Callable

    from statesync.server.metrics import Metrics

__all__ = ["SendPool", "Taker"]

log = logging.getLogger(__name__)

BATCH: Final = 50
"""Default :attr:`SendPool.batch`: sockets per command. Small enough that a worker starts
writing soon after the flush starts, large enough that a command's cost (a message with the
descriptors attached) is small beside its writes."""
SHARE: Final = 5
"""Of every ``SHARE * workers + 1`` writes of a fan-out, the server writes one itself and the
workers the others, in turn. The server also does every connection's own work (its Python
part costs about half a write), and its writes come after that; measured on 1,000 spectators
with one worker, this split ended the server's and the worker's parts closest together."""
MIN_AUDIENCE: Final = 64
"""Default :attr:`SendPool.min_audience`: below this many receivers of one frame, handing
writes to another process costs more than it saves."""
STUCK_AFTER: Final = 5.0
"""Seconds after which a command still unanswered means its worker is stuck
(:meth:`SendPool.check`): a command's writes never block, so it takes milliseconds."""
START_TIMEOUT: Final = 10.0
"""Seconds a worker has to say it is ready."""
NOT_SENT: Final = -2
"""``offload_done`` value for a take the worker never saw: nothing was written."""
UNKNOWN: Final = send_worker.FAILED
"""``offload_done`` value for a write that failed, or that a dead worker may have begun."""


class Taker(Protocol):
    """What the pool needs of a connection (:class:`~statesync.server.connection.Connection`)."""

    def offload_done(self, frame: bytes, written: int) -> None:
        """The worker is done with ``frame``: ``written`` bytes of it went out (``len(frame)``:
        all; :data:`NOT_SENT`: none, the worker never had it; :data:`UNKNOWN`: the write
        failed or its fate is unknown)."""


class _Lane:
    """One worker process and what it has been given."""

    __slots__ = ("conns", "dead", "fds", "frame", "index", "process", "sock")

    def __init__(
        self, index: int, process: asyncio.subprocess.Process, sock: socket.socket
    ) -> None:
        self.index = index
        self.process = process
        self.sock = sock
        self.dead = False
        self.frame: bytes | None = None
        """The frame of the batch being gathered (``conns`` and ``fds``)."""
        self.conns: list[Taker] = []
        self.fds: list[int] = []


class SendPool:
    """``workers`` send-worker processes that take a share of large fan-outs (see the module
    docstring). ``min_audience``: a frame is shared out only when this many connections
    receive it in one flush; ``batch``: sockets per command to a worker.

    ``on_done`` (for benchmarks) is called with the time (``time.monotonic()``) at which a
    worker finished each command. ``metrics``, when given, has ``send_workers`` (serving),
    ``send_worker_writes_total`` and ``send_worker_failures_total`` kept current."""

    def __init__(
        self,
        workers: int,
        *,
        min_audience: int = MIN_AUDIENCE,
        batch: int = BATCH,
        on_done: Callable[[float], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("a SendPool needs at least one worker")
        self.workers = workers
        self.min_audience = min_audience
        if not 1 <= batch <= send_worker.MAX_FDS:
            raise ValueError(f"batch must be from 1 to {send_worker.MAX_FDS}")
        self.batch = batch
        self.on_done = on_done
        self.metrics = metrics
        self._lanes: list[_Lane] = []
        self._turn = 0
        self._next_command = 0
        self._pending: dict[int, tuple[_Lane, bytes, list[Taker], float]] = {}
        """Commands sent and not answered: lane, frame, connections in order, and when the
        command was sent (``time.monotonic()``)."""
        self._drained = asyncio.Event()
        """Set while no command is waiting for its answer."""
        self._drained.set()
        self._local: list[tuple[Taker, int, bytes]] = []
        """The server's own share of this flush: written by :meth:`_send_all`."""
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.stats = {"commands": 0, "taken": 0, "local": 0, "short": 0, "failed": 0}
        """Writes ``taken`` by workers (in ``commands``) and kept by this process
        (``local``); writes that fell ``short`` and takes whose command ``failed`` to go."""

    @property
    def pids(self) -> list[int]:
        """The workers' process ids (for CPU and memory accounting)."""
        return [lane.process.pid for lane in self._lanes]

    @property
    def alive(self) -> int:
        """How many workers are serving."""
        return sum(not lane.dead for lane in self._lanes)

    async def start(self) -> None:
        """Start the workers and wait until each is ready. Raises :class:`OSError` if one
        cannot be started (those already started are stopped)."""
        if self._loop is not None:
            raise RuntimeError("a SendPool can be started once")
        self._loop = loop = asyncio.get_running_loop()
        script = send_worker.__file__
        for index in range(self.workers):
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-I",
                    script,
                    str(theirs.fileno()),
                    pass_fds=(theirs.fileno(),),
                    stdin=asyncio.subprocess.DEVNULL,
                )
            except OSError:
                ours.close()
                raise
            finally:
                theirs.close()
            ours.setblocking(False)
            lane = _Lane(index, process, ours)
            self._lanes.append(lane)
            try:
                ready = await asyncio.wait_for(loop.sock_recv(ours, 16), START_TIMEOUT)
            except (OSError, TimeoutError):
                ready = b""
            if ready != send_worker.READY:
                await self.close(grace=0.1)
                raise OSError(f"statesync send worker {index} did not start")
            loop.add_reader(ours.fileno(), self._answered, lane)
        if self.metrics is not None:
            self.metrics.set("send_workers", len(self._lanes))

    def take(self, conn: Taker, fd: int, frame: bytes) -> bool:
        """Have ``frame`` written to socket ``fd`` of ``conn`` by a worker, or by this process
        once the current callback returns (True), or leave it to the caller (False: the frame
        is too large for a command, or the worker whose turn it is has died). After True,
        ``conn.offload_done`` is called exactly once, later, never from within this call."""
        lanes = self._lanes
        if not lanes or len(frame) > send_worker.MAX_COMMAND:
            return False  # not started, or too large
        turn = self._turn = (self._turn + 1) % (SHARE * len(lanes) + 1)
        if turn == SHARE * len(lanes):
            self._local.append((conn, fd, frame))
            self.stats["local"] += 1
        else:
            lane = lanes[turn % len(lanes)]
            if lane.dead:
                return False
            if lane.frame is not frame:
                self._send(lane)
                lane.frame = frame
            lane.conns.append(conn)
            lane.fds.append(fd)
            self.stats["taken"] += 1
            if len(lane.fds) >= self.batch:
                self._send(lane)
        if not self._scheduled:
            self._scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._send_all)
        return True

    def _send_all(self) -> None:
        """After the flush: send what the lanes gathered, then write the server's own share
        (while the workers write theirs)."""
        self._scheduled = False
        for lane in self._lanes:
            self._send(lane)
        local, self._local = self._local, []
        if not local:
            return
        write = send_worker.write_once  # as a worker writes (its FAILED is UNKNOWN)
        for conn, fd, frame in local:
            written = write(fd, frame)
            if written != len(frame):
                self.stats["short"] += 1
            try:
                conn.offload_done(frame, written)
            except Exception:  # pragma: no cover - offload_done handles its own failures
                log.exception("statesync send pool: a connection failed to take its answer")
        if self.on_done is not None:
            self.on_done(time.monotonic())

    def _send(self, lane: _Lane) -> None:
        """Send the batch gathered on ``lane`` (if any) as one command."""
        conns, frame = lane.conns, lane.frame
        if not conns or frame is None:
            return
        fds = lane.fds
        lane.conns, lane.fds, lane.frame = [], [], None
        command = self._next_command = (self._next_command + 1) & 0xFFFFFFFF
        header = send_worker.COMMAND.pack(command)
        try:
            lane.sock.sendmsg(
                [header, frame], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
            )
        except OSError as e:  # full (the worker is behind) or gone: write them ourselves
            if not isinstance(e, BlockingIOError):
                self._lost(lane, e)
            self.stats["failed"] += len(conns)
            self._loop_call(conns, frame, NOT_SENT)
            return
        self.stats["commands"] += 1
        self._pending[command] = (lane, frame, conns, time.monotonic())
        self._drained.clear()

    def _loop_call(self, conns: list[Taker], frame: bytes, written: int) -> None:
        """Tell ``conns`` on the next loop turn (never from within :meth:`take`)."""
        assert self._loop is not None
        for conn in conns:
            self._loop.call_soon(conn.offload_done, frame, written)

    def _answered(self, lane: _Lane) -> None:
        """A packet from ``lane``'s worker: the answer to one command (or the end)."""
        try:
            packet = lane.sock.recv(send_worker.ANSWER.size + 6 * send_worker.MAX_FDS)
        except BlockingIOError:
            return
        except OSError as e:
            self._lost(lane, e)
            return
        if not packet:
            self._lost(lane, None)
            return
        command, done = send_worker.ANSWER.unpack_from(packet)
        entry = self._pending.pop(command, None)
        if entry is None:  # pragma: no cover - the worker answers only what it was sent
            log.error("send worker %d answered an unknown command %d", lane.index, command)
            return
        _, frame, conns, _ = entry
        if not self._pending:
            self._drained.set()
        short: dict[int, int] = {}
        for index, written in send_worker.SHORT.iter_unpack(packet[send_worker.ANSWER.size :]):
            short[index] = written
        self.stats["short"] += len(short)
        if self.metrics is not None:
            self.metrics.inc("send_worker_writes_total", len(conns))
        size = len(frame)
        for i, conn in enumerate(conns):
            try:
                conn.offload_done(frame, short.get(i, size))
            except Exception:  # pragma: no cover - offload_done handles its own failures
                log.exception("statesync send pool: a connection failed to take its answer")
        if self.on_done is not None:
            self.on_done(done)

    def _lost(self, lane: _Lane, error: BaseException | None) -> None:
        """``lane``'s worker is gone: nothing more goes to it, and its takes end (the
        unsent ones as not written, the sent ones as unknown)."""
        if lane.dead:
            return
        lane.dead = True
        if not self._closed:
            log.error("statesync send worker %d stopped (%s)", lane.index, error or "closed")
            if self.metrics is not None:
                self.metrics.inc("send_worker_failures_total")
        if self.metrics is not None:
            self.metrics.set("send_workers", self.alive)
        assert self._loop is not None
        self._loop.remove_reader(lane.sock.fileno())
        unsent, frame = lane.conns, lane.frame
        lane.conns, lane.fds, lane.frame = [], [], None
        if unsent and frame is not None:
            self._loop_call(unsent, frame, NOT_SENT)
        for command, (owner, sent, conns, _) in list(self._pending.items()):
            if owner is lane:
                del self._pending[command]
                self._loop_call(conns, sent, UNKNOWN)
        if not self._pending:
            self._drained.set()

    def check(self) -> None:
        """Kill a worker that has left a command unanswered for :data:`STUCK_AFTER` seconds
        (its writes never block, so it is stuck); its end is then handled as any worker's
        death. The server calls this every second."""
        now = time.monotonic()
        for lane, _, _, sent in list(self._pending.values()):
            if now - sent > STUCK_AFTER and not lane.dead and lane.process.returncode is None:
                log.error("statesync send worker %d is stuck: killing it", lane.index)
                lane.process.kill()

    async def close(self, grace: float = 5.0) -> None:
        """Let the workers answer what they were sent (for up to ``grace`` seconds each step),
        then stop them (closing their control sockets ends them; a worker still running after
        that is killed)."""
        if self._closed:
            return
        if self._scheduled:
            self._send_all()
        try:
            await asyncio.wait_for(self._drained.wait(), grace)
        except TimeoutError:
            log.warning("statesync send workers: %d commands unanswered", len(self._pending))
        self._closed = True
        for lane in self._lanes:
            self._lost(lane, None)
            lane.sock.close()
        for lane in self._lanes:
            try:
                await asyncio.wait_for(lane.process.wait(), grace)
            except TimeoutError:
                lane.process.kill()
                await lane.process.wait()
