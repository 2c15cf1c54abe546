"""Fan-out encoding: the public part of an update is encoded once for a whole table.

Every viewer of a table sees the same ``"game"`` and ``"seats"`` sections; only
``"players"/<id>`` differs. So an update is split into a *public* part, encoded once by one
:class:`~statesync.wire.WireEncoder` whose stream every viewer of the table decodes, and a
*private* part per player whose own section changed, encoded with that player's encoder.
Nine players and a thousand spectators cost one public encode per update, plus one small
private encode for each player whose hand changed.

Sections are disjoint, so applying the public operations and then a player's private ones
gives exactly that player's filtered view of the delta (:func:`~statesync.views.filter_delta`).
A delta that replaces a whole section or the root cannot be split: :meth:`UpdateEncoder.encode`
returns ``None`` and the caller sends snapshots instead.

    >>> from statesync.delta import Delta
    >>> from statesync.ops import Set
    >>> enc = UpdateEncoder()
    >>> update = enc.encode(Delta((Set(("game", "pot"), 30), Set(("players", "ann", "n"), 1))))
    >>> sorted(update.private)
    ['ann']
    >>> dec = UpdateDecoder()
    >>> dec.decode(update.public, update.private.get("ann")).ops[1].path
    ('players', 'ann', 'n')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from statesync.delta import Delta
from statesync.wire import WireDecoder, WireEncoder

if TYPE_CHECKING:
    from statesync.ops import Op

__all__ = ["EncodedUpdate", "UpdateDecoder", "UpdateEncoder", "split_delta"]

PUBLIC = ("game", "seats")


def split_delta(delta: Delta) -> tuple[Delta, dict[str, Delta]] | None:
    """``(public, {player_id: private})``, or ``None`` when an operation spans sections (a
    root or whole-section replacement). Operations on ``"secret"`` are dropped."""
    public: list[Op] = []
    private: dict[str, list[Op]] = {}
    for op in delta.ops:
        path = op.path
        head = path[0] if path else None
        if head == "game" or head == "seats":  # PUBLIC, spelled out: this runs per operation
            public.append(op)
        elif len(path) < 2:
            if head != "secret":
                return None
        elif head == "players":
            private.setdefault(path[1], []).append(op)  # type: ignore[arg-type]
        elif head != "secret":
            return None
    if len(public) == len(delta.ops):
        return delta, {}  # all public (most actions): the delta itself
    return Delta(tuple(public)), {p: Delta(tuple(ops)) for p, ops in private.items()}


@dataclass(frozen=True, slots=True)
class EncodedUpdate:
    """One update for every viewer of a table: ``public`` goes to all of them, and
    ``private[player_id]`` additionally to that player only."""

    public: bytes
    private: dict[str, bytes] = field(default_factory=dict)


class UpdateEncoder:
    """The server side of fan-out encoding for one table (one public stream, one private
    stream per player). Not for spectators joining mid-stream: a viewer must start decoding
    from the same message as the encoder (after a snapshot both sides :meth:`reset`)."""

    def __init__(self) -> None:
        self.public = WireEncoder()
        self.private: dict[str, WireEncoder] = {}

    def encode(self, delta: Delta) -> EncodedUpdate | None:
        """Encode one full-state delta (from the table's history); ``None`` if it cannot be
        split (send snapshots)."""
        parts = split_delta(delta)
        if parts is None:
            return None
        public, private = parts
        encoded: dict[str, bytes] = {}
        for pid, ops in private.items():
            enc = self.private.get(pid)
            if enc is None:
                enc = self.private[pid] = WireEncoder()
            encoded[pid] = enc.encode(ops)
        return EncodedUpdate(self.public.encode(public), encoded)

    def reset(self, player_id: str | None = None) -> None:
        """Restart one player's private stream, or every stream when ``player_id`` is None."""
        if player_id is not None:
            self.private.pop(player_id, None)
            return
        self.public.reset()
        self.private.clear()


class UpdateDecoder:
    """The client side: decodes the public stream and this player's private stream."""

    def __init__(self) -> None:
        self.public = WireDecoder()
        self.private = WireDecoder()

    def decode(self, public: bytes, private: bytes | None = None) -> Delta:
        """The player's delta: the public operations, then the private ones. Raises
        :class:`~statesync.errors.WireError` for malformed bytes (reset both ends then)."""
        ops = self.public.decode(public).ops
        if private is not None:
            ops = ops + self.private.decode(private).ops
        return Delta(ops)

    def reset(self) -> None:
        """Forget both streams (after a snapshot)."""
        self.public.reset()
        self.private.reset()
