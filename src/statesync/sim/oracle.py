"""The leak oracle: no byte sent to a player may carry another player's hidden values.

Games mark what is hidden with :meth:`Game.hidden_values(state, player)
<statesync.game.Game.hidden_values>` (hold'em: the other players' hole cards and the undealt
deck, minus what the player can already see). The oracle sees every frame the server sends
(before the network decides whether it arrives), decodes it exactly as the client would --
with its own mirror of the connection's delta decoder -- and collects every value in it: the
keys and scalars of snapshots and deltas, and the words of result and error messages. Any of
them that is hidden from the frame's receiver *in the authoritative state at the frame's
version* is a leak. (Hashes are covered by the end-of-run check that each client's state equals
the server's view: a client's hash check passes only if the hash is of that view.)

Compressed delta payloads are decoded before looking, so a leak cannot hide inside deflate
output, and a value does not count as a leak merely because its bytes happen to occur in
compressed data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from statesync.errors import StateSyncError
from statesync.ops import Add, Replace, Set, Splice, Test
from statesync.protocol.messages import (
    Error,
    ProtocolError,
    Result,
    SharedUpdate,
    Snapshot,
    Update,
    Welcome,
    decode_server,
)
from statesync.wire import WireDecoder

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from statesync.delta import Delta
    from statesync.game import Game

__all__ = ["LeakOracle"]

_WORD = re.compile(r"[A-Za-z0-9_]+")


@dataclass(slots=True)
class _Watch:
    table: str
    player: str | None
    decoder: WireDecoder = field(default_factory=WireDecoder)
    shared: WireDecoder = field(default_factory=WireDecoder)


class LeakOracle:
    """Checks every frame sent to a client (see the module docstring).

    ``state_at(table, version)`` returns the authoritative full state of ``table`` at
    ``version`` (``None`` if unknown); ``latest(table)`` the newest one. Problems are appended
    to :attr:`leaks`.
    """

    def __init__(
        self,
        game: Game,
        state_at: Callable[[str, int], dict[str, Any] | None],
        latest: Callable[[str], tuple[int, dict[str, Any]] | None],
    ) -> None:
        self.game = game
        self._state_at = state_at
        self._latest = latest
        self._watch: dict[object, _Watch] = {}
        self._hidden: dict[tuple[str, int, str | None], frozenset[tuple[type, Any]]] = {}
        self.leaks: list[str] = []
        self.frames = 0
        self.values = 0

    def watch(self, wire: object, table: str, player: str | None) -> None:
        """Start following ``wire``, a connection of ``player`` at ``table``."""
        self._watch[wire] = _Watch(table, player)

    def check(self, wire: object, data: bytes) -> None:
        """Look at one frame the server sent on ``wire``."""
        w = self._watch.get(wire)
        if w is None:
            return
        self.frames += 1
        try:
            m = decode_server(data)
        except ProtocolError as e:
            self.leaks.append(f"the server sent an undecodable frame: {e}")
            return
        version: int | None = None
        values: list[Any] = []
        if isinstance(m, Snapshot):
            w.decoder, w.shared = WireDecoder(), WireDecoder()
            version = m.version
            _collect(m.state, values)
        elif isinstance(m, Update):
            version = m.version
            try:
                delta = w.decoder.decode(m.delta)
            except StateSyncError as e:
                self.leaks.append(f"an update the oracle cannot decode: {e}")
                return
            _collect_delta(delta, values)
        elif isinstance(m, SharedUpdate):
            version = m.version
            if m.reset:
                w.shared.reset()
            try:
                _collect_delta(w.shared.decode(m.shared), values)
                if m.delta is not None:
                    _collect_delta(w.decoder.decode(m.delta), values)
            except StateSyncError as e:
                self.leaks.append(f"an update the oracle cannot decode: {e}")
                return
        elif isinstance(m, Result | Error):
            values.append(m.code)
            values.extend(_WORD.findall(m.message))
        elif isinstance(m, Welcome):
            values.extend((m.table, m.player, m.client_id))
        if not values:
            return
        self.values += len(values)
        hidden = self._hidden_for(w, version)
        if hidden is None:
            self.leaks.append(f"no authoritative state of {w.table!r} at version {version}")
            return
        found = sorted({repr(v) for v in values if (type(v), v) in hidden})
        if found:
            kind = type(m).__name__
            self.leaks.append(
                f"{kind} v{version} to {w.player or 'a spectator'} at {w.table} "
                f"carries hidden {', '.join(found)}"
            )

    def _hidden_for(self, w: _Watch, version: int | None) -> frozenset[tuple[type, Any]] | None:
        if version is None:
            latest = self._latest(w.table)
            if latest is None:
                return frozenset()
            version, state = latest
        else:
            found = self._state_at(w.table, version)
            if found is None:
                return None
            state = found
        key = (w.table, version, w.player)
        hidden = self._hidden.get(key)
        if hidden is None:
            hidden = frozenset(_typed(self.game.hidden_values(state, w.player)))
            if len(self._hidden) > 4096:
                self._hidden.clear()
            self._hidden[key] = hidden
        return hidden


def _typed(values: Iterable[Any]) -> Iterator[tuple[type, Any]]:
    for v in values:
        yield (type(v), v)


def _collect(value: Any, out: list[Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            out.append(k)
            _collect(v, out)
    elif isinstance(value, list | tuple):
        for v in value:
            _collect(v, out)
    elif value is not None:
        out.append(value)


def _collect_delta(delta: Delta, out: list[Any]) -> None:
    for op in delta.ops:
        out.extend(p for p in op.path if isinstance(p, str))
        if isinstance(op, Set | Add | Replace | Test):
            _collect(op.value, out)
        elif isinstance(op, Splice):
            _collect(list(op.insert), out)
