"""What a store keeps of a table, as plain records, and their byte encoding.

A table is stored as three kinds of record:

* :class:`TableMeta` -- written once: which game, its seed and config, the first players;
* :class:`LogRecord` -- one per version: the accepted action, the forward delta (native ops),
  the full-state hash after it, the epoch and a timestamp;
* :class:`Checkpoint` -- now and then: the full state at a version with its hash, plus what
  the engine must remember across a restart (dedupe memory, client owners, the epoch's fork).

The encodings are MessagePack (msgspec) of plain values. They are *storage* encodings, not
hash inputs: dict order is kept as it was in memory so that a restored table iterates its
dicts in the same order as the live one did (rules may iterate dicts; replay must agree).

>>> from statesync.ops import Set
>>> from statesync.delta import Delta
>>> d = Delta((Set(("game", "n"), 2),))
>>> decode_delta(encode_delta(d)) == d
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from statesync.actions import PlayerAction
from statesync.delta import Delta
from statesync.errors import StoreCorruptError
from statesync.ops import Remove, Set, Splice

if TYPE_CHECKING:
    from statesync.value import Value

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()

_SET, _REMOVE, _SPLICE = 0, 1, 2
RECORD_FORMAT = 1
"""Version of the record encodings below; stored with every table's meta."""


@dataclass(frozen=True, slots=True)
class TableMeta:
    """How a table was created: enough to re-run its log through the rules.

    ``game`` is an import reference (``"statesync.games.holdem:Holdem"``) or ``""``.
    """

    table_id: str
    game: str = ""
    seed: int = 0
    config: Value = None
    players: tuple[str, ...] = ()
    created: float = 0.0
    format: int = RECORD_FORMAT

    def encode(self) -> bytes:
        return _encoder.encode(
            {
                "format": self.format,
                "table_id": self.table_id,
                "game": self.game,
                "seed": self.seed,
                "config": self.config,
                "players": list(self.players),
                "created": self.created,
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> TableMeta:
        raw = _load(data, "table meta")
        try:
            return cls(
                table_id=raw["table_id"],
                game=raw["game"],
                seed=raw["seed"],
                config=raw["config"],
                players=tuple(raw["players"]),
                created=float(raw["created"]),
                format=raw["format"],
            )
        except (KeyError, TypeError) as e:
            raise StoreCorruptError(f"table meta is malformed: {e!r}") from e


@dataclass(frozen=True, slots=True)
class LogRecord:
    """The durable record of one version: ``action`` (``None`` for a replicated delta)
    turned the state at ``version - 1`` into the state at ``version`` by ``delta``, whose
    full-state hash is ``hash``."""

    version: int
    epoch: int
    action: PlayerAction | None
    delta: Delta
    hash: str
    timestamp: float = 0.0

    def encode_action(self) -> bytes:
        return encode_action(self.action)

    def encode_delta(self) -> bytes:
        return encode_delta(self.delta)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The full state of a table at ``version`` (with its ``hash``) and the engine's memory.

    ``dedupe`` maps a client id to its forgotten-seq floor and the ``[seq, version]`` pairs of
    its remembered accepted actions; ``owners`` maps client ids to the player they act for.
    """

    version: int
    epoch: int
    hash: str
    state: dict[str, Any]
    timestamp: float = 0.0
    dedupe: dict[str, Any] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        return _encoder.encode(
            {
                "version": self.version,
                "epoch": self.epoch,
                "hash": self.hash,
                "state": self.state,
                "timestamp": self.timestamp,
                "dedupe": self.dedupe,
                "owners": self.owners,
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> Checkpoint:
        raw = _load(data, "checkpoint")
        try:
            return cls(
                version=raw["version"],
                epoch=raw["epoch"],
                hash=raw["hash"],
                state=raw["state"],
                timestamp=float(raw["timestamp"]),
                dedupe=raw["dedupe"],
                owners=raw["owners"],
            )
        except (KeyError, TypeError) as e:
            raise StoreCorruptError(f"checkpoint is malformed: {e!r}") from e


def encode_delta(delta: Delta) -> bytes:
    """Bytes of a delta of native ops (``[[0, path, value] | [1, path] | [2, path, i, d,
    insert]...]``). Raises :class:`ValueError` for a non-native op (history holds none)."""
    out: list[Any] = []
    for op in delta.ops:
        t = type(op)
        if t is Set:
            out.append([_SET, op.path, op.value])  # type: ignore[union-attr]
        elif t is Remove:
            out.append([_REMOVE, op.path])
        elif t is Splice:
            out.append([_SPLICE, op.path, op.index, op.delete, op.insert])  # type: ignore[union-attr]
        else:
            raise ValueError(f"cannot store a non-native op: {op!r}")
    return _encoder.encode(out)


def decode_delta(data: bytes) -> Delta:
    """The delta :func:`encode_delta` wrote. Raises
    :class:`~statesync.errors.StoreCorruptError` for bytes it did not write."""
    raw = _load(data, "delta")
    ops: list[Set | Remove | Splice] = []
    try:
        for item in raw:
            kind = item[0]
            path = tuple(item[1])
            if kind == _SET and len(item) == 3:
                ops.append(Set(path, item[2]))
            elif kind == _REMOVE and len(item) == 2:
                ops.append(Remove(path))
            elif kind == _SPLICE and len(item) == 5:
                ops.append(Splice(path, int(item[2]), int(item[3]), tuple(item[4])))
            else:
                raise StoreCorruptError(f"unknown stored op {item!r}")
    except (IndexError, TypeError, ValueError) as e:
        raise StoreCorruptError(f"stored delta is malformed: {e!r}") from e
    return Delta(tuple(ops))


def encode_action(action: PlayerAction | None) -> bytes:
    """Bytes of an action (``nil`` for none)."""
    if action is None:
        return _encoder.encode(None)
    a = action
    return _encoder.encode([a.player_id, a.client_id, a.seq, a.base_version, a.type, a.payload])


def decode_action(data: bytes) -> PlayerAction | None:
    """The action :func:`encode_action` wrote."""
    raw = _load(data, "action")
    if raw is None:
        return None
    try:
        player, client, seq, base, kind, payload = raw
        return PlayerAction(str(player), str(client), int(seq), int(base), str(kind), payload)
    except (TypeError, ValueError) as e:
        raise StoreCorruptError(f"stored action is malformed: {e!r}") from e


def _load(data: bytes, what: str) -> Any:
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, TypeError, ValueError, RecursionError) as e:
        raise StoreCorruptError(f"stored {what} cannot be decoded: {e}") from e
