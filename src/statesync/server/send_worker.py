"""A send worker: the process behind one lane of a :class:`~statesync.server.sendpool.SendPool`.

It writes the same bytes to many sockets, so that a large fan-out (a thousand spectators of one
table) uses more than the server's one core: on Linux each small TCP write costs several
microseconds of kernel time, and threads cannot share that out under the GIL.

Run as ``python send_worker.py FD``, where ``FD`` is its end of an ``AF_UNIX``
``SOCK_SEQPACKET`` socket pair (the pool starts it by path, so it imports nothing but the
standard library). Its first packet is ``ready``. Each command from the server is then one
packet::

    u32 command id (little-endian) | the bytes to write
    + SCM_RIGHTS: the sockets to write them to, in order

The worker writes the bytes to each socket once, without blocking (the sockets are the
server's own, non-blocking), closes its copies of the descriptors, and answers with one packet::

    u32 command id | f64 CLOCK_MONOTONIC when the last write returned
    | per socket not written whole, in order: u16 index, i32 bytes written (-1: the write failed)

It exits when the server's end closes, and only then: it ignores SIGINT, SIGTERM and SIGHUP,
which reach the whole process group when a terminal's Ctrl-C, ``timeout`` or a service
manager stops the server, so that the server's graceful shutdown can still use it. It never
reads from a socket and never writes anything
but the bytes it was given, so the server only has to keep its own writes to those sockets
out of the way until the answer comes (see :mod:`statesync.server.sendpool`).
"""

from __future__ import annotations

import array
import os
import signal
import socket
import struct
import sys
import time

MAX_FDS = 250
"""Sockets per command (Linux takes at most 253 descriptors in one message)."""
MAX_COMMAND = 1 << 16
"""Largest command packet: the pool offloads only frames smaller than this."""
READY = b"ready"
"""The first packet a worker sends: it is running and ignores the group's signals."""
COMMAND = struct.Struct("<I")
ANSWER = struct.Struct("<Id")
SHORT = struct.Struct("<Hi")
FAILED = -1
"""Bytes written, in an answer, for a write that failed."""


def write_once(fd: int, data: bytes | memoryview) -> int:
    """One non-blocking write of ``data`` to socket ``fd``: the bytes written (0 when its
    buffer is full), or :data:`FAILED` when the write failed (the peer is gone)."""
    try:
        return os.write(fd, data)
    except BlockingIOError:
        return 0
    except OSError:
        return FAILED


def serve(control: socket.socket) -> None:
    """Answer commands from ``control`` until it closes."""
    fd_space = socket.CMSG_SPACE(MAX_FDS * array.array("i").itemsize)
    close = os.close
    while True:
        try:
            packet, ancillary, _flags, _ = control.recvmsg(MAX_COMMAND + COMMAND.size, fd_space)
        except (ConnectionError, OSError):
            return
        if not packet:
            return
        fds = array.array("i")
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
        (command,) = COMMAND.unpack_from(packet)
        payload = memoryview(packet)[COMMAND.size :]
        size = len(payload)
        short: list[bytes] = []
        for i, fd in enumerate(fds):
            n = write_once(fd, payload)
            if n != size:
                short.append(SHORT.pack(i, n))
        done = time.monotonic()
        for fd in fds:
            close(fd)
        try:
            control.send(ANSWER.pack(command, done) + b"".join(short))
        except (ConnectionError, OSError):
            return


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: send_worker.py FD (started by statesync's SendPool)", file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    control = socket.socket(fileno=int(argv[1]))
    try:
        control.send(READY)
        serve(control)
    finally:
        control.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
