"""Fan-out encoding: the public part of an update is encoded once for a whole table.

Every viewer of a table sees the same ``"game"`` and ``"seats"`` sections; only
``"players"/<id>`` differs. So besides each connection's own delta stream, a table keeps one
*shared stream* (:class:`SharedStream`): a :class:`~statesync.wire.WireEncoder` whose output
every in-step subscriber of the table decodes. An update then goes out as one *chunk* of the
shared stream, encoded once per table and flush, plus each viewer's *private* operations
(usually none) on the connection's own stream. Nine players and a thousand spectators cost one
public encode per update (protocol version 2, ``SharedUpdate``; docs/protocol.md section 4).

A subscriber is *in step* when its connection has decoded every chunk of the stream's current
generation so far, in order; its :class:`SharedCursor` says how far it got. Connections that
are not in step (a new one, one after a snapshot, one that skipped a chunk while lagging) get
the whole update on their own stream, as in version 1, until the table starts a new
generation (:meth:`SharedStream.reset`), whose first chunk tells every receiver to reset its
shared decoder. :meth:`SharedStream.wants_reset` is the policy: at once when at least as many
subscribers are behind as in step, else only after :data:`RESET_AFTER` chunks (a reset costs
every in-step subscriber a chunk encoded with a cold dictionary).

Sections are disjoint, so applying the public operations and then a viewer's private ones
gives exactly that viewer's delta. A delta with an operation that spans sections (a root or
whole-``"players"`` replacement) cannot be split: :func:`split_view` returns ``None`` and the
whole update goes on each connection's own stream.

    >>> from statesync.delta import Delta
    >>> from statesync.ops import Set
    >>> delta = Delta((Set(("game", "pot"), 30), Set(("players", "ann", "n"), 1)))
    >>> public, private = split_view(delta)
    >>> [op.path for op in public.ops], [op.path for op in private.ops]
    ([('game', 'pot')], [('players', 'ann', 'n')])
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from statesync.delta import EMPTY, Delta
from statesync.wire import WireEncoder

if TYPE_CHECKING:
    from statesync.ops import Op
    from statesync.snapshot import StateDelta

__all__ = [
    "RESET_AFTER",
    "SharedChunk",
    "SharedCursor",
    "SharedStream",
    "SplitUpdate",
    "split_view",
]

RESET_AFTER: Final = 8
"""Chunks a shared stream runs before it may restart for a minority of subscribers that are
not in step (with as many behind as in step, it restarts at once)."""

_generations = itertools.count(1)  # unique in the process: a cursor never matches a stale stream


def split_view(delta: Delta) -> tuple[Delta, Delta] | None:
    """``(public, private)``: the operations of a viewer's delta on ``"game"``/``"seats"``
    and those on ``"players"/<id>``, each in their original order; ``None`` when an operation
    spans sections (the root, or ``"players"`` as a whole). An all-public delta is returned
    as is (no copy)."""
    private: list[Op] = []
    public: list[Op] = []
    for op in delta.ops:
        path = op.path
        if not path:
            return None
        head = path[0]
        if head == "game" or head == "seats":
            public.append(op)
        elif head == "players" and len(path) > 1:
            private.append(op)
        else:
            return None  # a whole section, or one a view never holds
    if not private:
        return delta, EMPTY
    return Delta(tuple(public)), Delta(tuple(private))


class SharedCursor:
    """How far one connection's shared decoder has got: it decoded chunks ``0 .. next - 1``
    of generation ``generation`` (``0``: none, so not in step with any stream). Owned by the
    connection's session, which moves it as it sends chunks; read by the table actor."""

    __slots__ = ("generation", "next")

    def __init__(self) -> None:
        self.generation = 0
        self.next = 0

    def clear(self) -> None:
        """The client's shared decoder was reset (a snapshot): in step with nothing."""
        self.generation = 0
        self.next = 0


@dataclass(frozen=True, slots=True)
class SharedChunk:
    """Chunk ``index`` of generation ``generation`` of a table's shared stream: the public
    operations from ``base_version`` to ``version`` of ``epoch``, encoded (``data``). Chunk 0
    starts a generation: its receivers reset their shared decoder first."""

    generation: int
    index: int
    base_version: int
    version: int
    epoch: int
    data: bytes


class SplitUpdate:
    """One viewer's update as the table hands it to a connection that takes the shared
    stream: ``chunk`` (the table's public operations, encoded once), ``private`` (the viewer's
    other operations, to encode on the connection's own stream) and ``whole`` (the plain
    update, for a connection that is not in step with the stream). ``hash`` is
    ``whole.hash`` as the 16 bytes a message carries (converted once per viewer).

    A plain class with slots, not a frozen dataclass: one is made per viewer per flush, and
    its version fields are read per connection."""

    __slots__ = (
        "audience",
        "base_version",
        "chunk",
        "epoch",
        "frame",
        "hash",
        "message",
        "private",
        "version",
        "whole",
    )

    def __init__(self, whole: StateDelta, chunk: SharedChunk, private: Delta, hash: bytes) -> None:
        self.whole = whole
        self.chunk = chunk
        self.private = private
        self.hash = hash
        self.base_version = whole.base_version
        self.version = whole.version
        self.epoch = whole.epoch
        self.message: bytes | None = None
        """The encoded ``SharedUpdate`` for a connection in step with no private part, once
        one connection has made it: every other such connection of this viewer sends the
        very same bytes (a thousand spectators: one encode)."""
        self.frame: bytes | None = None
        """:attr:`message` as a WebSocket frame, likewise made once (by the server)."""
        self.audience = 1
        """How many connections the table hands this update to in this flush (a server may
        share the writes of a large audience out: :mod:`statesync.server.sendpool`)."""

    def __repr__(self) -> str:
        return (
            f"SplitUpdate(v{self.base_version}->v{self.version} e{self.epoch}, "
            f"chunk {self.chunk.generation}/{self.chunk.index}, {len(self.private)} private ops)"
        )


class SharedStream:
    """A table's shared stream: the encoder, its generation, the next chunk's index, and the
    version and epoch its in-step subscribers hold.

    >>> from statesync.ops import Set
    >>> stream = SharedStream()
    >>> stream.reset(0, 0)
    >>> chunk = stream.encode(Delta((Set(("game", "pot"), 30),)), 1)
    >>> (chunk.index, chunk.base_version, chunk.version), stream.version
    ((0, 0, 1), 1)
    """

    def __init__(self, *, max_message_size: int = 1 << 20) -> None:
        self._encoder = WireEncoder(max_message_size=max_message_size)
        self.generation = 0
        """0 until the first :meth:`reset`: no cursor is in step with it."""
        self.next = 0
        self.version = -1
        self.epoch = -1

    def in_step(self, cursor: SharedCursor) -> bool:
        """Whether ``cursor``'s connection can decode this stream's next chunk."""
        return cursor.generation == self.generation and cursor.next == self.next

    def wants_reset(self, in_step: int, behind: int) -> bool:
        """Whether to start a new generation for a flush in which ``in_step`` subscribers
        are in step and ``behind`` (at the same version) are not."""
        if not behind:
            return False
        return behind >= in_step or self.next >= RESET_AFTER

    def reset(self, version: int, epoch: int) -> None:
        """Start a new generation at ``version`` of ``epoch``: its first chunk resets every
        receiver's shared decoder."""
        self._encoder.reset()
        self.generation = next(_generations)
        self.next = 0
        self.version, self.epoch = version, epoch

    def skip(self, version: int, epoch: int) -> None:
        """The update to ``version`` had no public operations (or none that could be
        shared): the stream's subscribers are there without a chunk."""
        self.version, self.epoch = version, epoch

    def encode(self, public: Delta, version: int) -> SharedChunk:
        """The next chunk: ``public`` (the public operations from :attr:`version` to
        ``version``), encoded once for every in-step subscriber. Raises
        :class:`~statesync.errors.WireError` when it does not fit a message (the stream is
        then unchanged)."""
        data = self._encoder.encode(public)
        chunk = SharedChunk(self.generation, self.next, self.version, version, self.epoch, data)
        self.next += 1
        self.version = version
        return chunk
