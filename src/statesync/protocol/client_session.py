"""The client end of a connection, as a state machine: bytes in, events and bytes out.

The session keeps the client's replica of its view (a
:class:`~statesync.synchronizer.StateSynchronizer` following the server's deltas), its
delta decoder, and the actions it sent that have no answer yet. It survives reconnects:
:meth:`ClientSession.connect` starts a new connection with a ``Hello`` that says which
version, epoch and hash the client holds, so the server can answer with a delta; after the
``Welcome`` every unanswered action is re-sent with its original ``seq`` (the table answers a
repeat with the original outcome, so none takes effect twice).

Every update is checked: the view after applying it must hash to the update's ``hash``. On
a mismatch (or an update that does not apply) the session counts a desync, reports a
:class:`Desynced` event and asks the server for a snapshot -- never silent.

With the game's rules, :attr:`ClientSession.state` is *predicted*: the authoritative view
with the client's own pending actions applied on top (re-applied after every authoritative
update). Randomness and hidden information are not available to the client, so a
prediction may differ; the authoritative update replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from statesync.actions import PlayerAction
from statesync.delta import Delta
from statesync.draft import Draft
from statesync.errors import StateSyncError
from statesync.game import Context
from statesync.protocol.messages import (
    SUPPORTED_VERSIONS,
    Act,
    Bye,
    Error,
    Hello,
    Ping,
    Pong,
    ProtocolError,
    Result,
    Resync,
    SharedUpdate,
    Snapshot,
    Update,
    Welcome,
    decode_server,
    encode,
)
from statesync.rng import Rng
from statesync.snapshot import StateDelta, StateSnapshot
from statesync.synchronizer import StateSynchronizer
from statesync.wire import WireDecoder

if TYPE_CHECKING:
    from statesync.game import Game

DISCONNECTED: Final = "disconnected"
HANDSHAKE: Final = "handshake"
OPEN: Final = "open"


@dataclass(frozen=True, slots=True)
class Welcomed:
    """The server accepted the handshake; ``player`` is ``None`` for a spectator."""

    table: str
    player: str | None
    resent: int
    """How many unanswered actions were re-sent."""


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The authoritative view moved to ``version`` (``snapshot``: by a full snapshot)."""

    version: int
    snapshot: bool


@dataclass(frozen=True, slots=True)
class ActionResult:
    """The server's answer to the action with ``seq``."""

    seq: int
    ok: bool
    version: int
    code: str
    message: str
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Desynced:
    """An update did not produce the state the server said it would; a snapshot was
    requested. ``expected``/``actual`` are view hashes (``actual`` "" if it did not apply)."""

    version: int
    expected: str
    actual: str
    reason: str


@dataclass(frozen=True, slots=True)
class ServerError:
    """The server reported an error; after a ``fatal`` one it closes the connection."""

    code: str
    message: str
    fatal: bool


Event = Welcomed | StateChanged | ActionResult | Desynced | ServerError


class ClientSession:
    """One client of one table (across reconnects).

    >>> c = ClientSession("token", "ann-laptop")
    >>> hello = c.connect()
    >>> c.phase
    'handshake'
    """

    def __init__(self, token: str, client_id: str, *, game: Game | None = None) -> None:
        self.token = token
        self.client_id = client_id
        self.game = game
        self.phase: str = DISCONNECTED
        self.table: str | None = None
        self.player: str | None = None
        self.replica: StateSynchronizer | None = None
        self.pending: dict[int, Act] = {}
        """Actions sent (or to send) without an answer, by seq."""
        self.next_seq = 1
        self.stats = {"desyncs": 0, "resyncs": 0, "snapshots": 0, "updates": 0, "bytes": 0}
        self._decoder = WireDecoder()
        self._shared = WireDecoder()
        """The decoder of the table's shared stream (protocol version 2)."""
        self._out: list[bytes] = []
        self._predicted: tuple[object, dict[str, Any]] | None = None
        self._awaiting_snapshot = False

    # ------------------------------------------------------------------ reading

    @property
    def version(self) -> int:
        """The authoritative version held (-1 before the first snapshot)."""
        return self.replica.version if self.replica is not None else -1

    @property
    def authoritative(self) -> dict[str, Any] | None:
        """The last view the server confirmed (read-only)."""
        return self.replica.state if self.replica is not None else None

    @property
    def state(self) -> dict[str, Any] | None:
        """The view to show: authoritative, plus own pending actions when the rules are
        known (prediction). Read-only."""
        replica = self.replica
        if replica is None:
            return None
        if self.game is None or not self.pending or self.player is None:
            return replica.state
        key = (replica.state, tuple(self.pending))
        cached = self._predicted
        if cached is None or cached[0] != key:
            cached = self._predicted = (key, self._predict(replica))
        return cached[1]

    def _predict(self, replica: StateSynchronizer) -> dict[str, Any]:
        game, state = self.game, replica.state
        assert game is not None
        assert self.player is not None
        players = tuple(sorted(state.get("seats", {})))
        version = replica.version
        for seq in sorted(self.pending):
            m = self.pending[seq]
            version += 1
            action = PlayerAction(
                self.player, self.client_id, seq, m.base_version, m.type, m.payload
            )
            ctx = Context(version, players, Rng(version), None)
            try:
                if game.validate(state, action, ctx) is not None:
                    break
                draft = Draft(state)
                game.apply(draft.root, action, ctx)
                state, _ = draft.finish()  # type: ignore[assignment]
            except Exception:  # the rules need what a client cannot see: stop predicting
                break
        return state

    # ------------------------------------------------------------------ connection

    def connect(self) -> bytes:
        """The ``Hello`` that opens a (new) connection; send it first."""
        self.phase = HANDSHAKE
        self._decoder = WireDecoder()
        self._shared = WireDecoder()
        self._awaiting_snapshot = False
        self._out = []
        replica = self.replica
        if replica is None:
            hello = Hello(list(SUPPORTED_VERSIONS), self.token, self.client_id)
        else:
            hello = Hello(
                list(SUPPORTED_VERSIONS),
                self.token,
                self.client_id,
                replica.version,
                replica.epoch,
                bytes.fromhex(replica.hash),
            )
        return encode(hello)

    def disconnected(self) -> None:
        """The connection dropped; pending actions stay pending for the next one."""
        self.phase = DISCONNECTED

    def act(self, type: str, payload: Any = None) -> int:
        """Queue an action; returns its ``seq``. It is sent now if the session is open, or
        after the next ``Welcome``."""
        seq = self.next_seq
        self.next_seq += 1
        m = Act(seq, max(self.version, 0), type, payload)
        self.pending[seq] = m
        if self.phase == OPEN:
            self._out.append(encode(m))
        return seq

    def ping(self, nonce: int) -> bytes:
        return encode(Ping(nonce))

    def bye(self, *, leave: bool = False) -> bytes:
        self.phase = DISCONNECTED
        return encode(Bye(leave))

    def data_to_send(self) -> list[bytes]:
        """Messages to send, in order."""
        out, self._out = self._out, []
        return out

    # ------------------------------------------------------------------ input

    def receive(self, data: bytes) -> list[Event]:
        """Handle one message from the server."""
        self.stats["bytes"] += len(data)
        try:
            m = decode_server(data)
        except ProtocolError as e:
            return [ServerError(e.code, f"undecodable server message: {e}", False)]
        if isinstance(m, Welcome):
            return [self._welcome(m)]
        if isinstance(m, Snapshot):
            return self._snapshot(m)
        if isinstance(m, Update | SharedUpdate):
            return self._update(m)
        if isinstance(m, Result):
            self.pending.pop(m.seq, None)
            return [ActionResult(m.seq, m.ok, m.version, m.code, m.message, m.duplicate)]
        if isinstance(m, Error):
            if m.fatal:
                self.phase = DISCONNECTED
            return [ServerError(m.code, m.message, m.fatal)]
        if isinstance(m, Pong):
            return []
        return []  # pragma: no cover - the decoder admits only server messages

    def _welcome(self, m: Welcome) -> Welcomed:
        self.phase = OPEN
        self.table, self.player = m.table, m.player
        self.next_seq = max(self.next_seq, m.next_seq)
        for seq in sorted(self.pending):
            self._out.append(encode(self.pending[seq]))
        return Welcomed(m.table, m.player, len(self.pending))

    def _snapshot(self, m: Snapshot) -> list[Event]:
        state = m.state
        snap = StateSnapshot(
            version=m.version,
            hash=m.hash.hex(),
            game_state=state.get("game"),
            player_states=dict(state.get("players") or {}),
            seats=dict(state.get("seats") or {}),
            epoch=m.epoch,
            viewer=self.player,
        )
        self._decoder = WireDecoder()
        self._shared = WireDecoder()
        self._awaiting_snapshot = False
        try:
            self.replica = StateSynchronizer.from_snapshot(snap)
        except StateSyncError as e:
            return self._desync(m.version, m.hash.hex(), "", f"snapshot rejected: {e}")
        self.stats["snapshots"] += 1
        return [StateChanged(m.version, True)]

    def _update(self, m: Update | SharedUpdate) -> list[Event]:
        if self._awaiting_snapshot:  # sent before the server saw our Resync: skip
            return []
        replica = self.replica
        if replica is None:
            return self._desync(m.version, m.hash.hex(), "", "update before any snapshot")
        try:
            if isinstance(m, SharedUpdate):
                if m.reset:
                    self._shared.reset()
                ops = self._shared.decode(m.shared).ops  # the public operations, then ours
                if m.delta is not None:
                    ops += self._decoder.decode(m.delta).ops
                delta = Delta(ops)
            else:
                delta = self._decoder.decode(m.delta)
            replica.apply(StateDelta(m.base_version, m.version, delta, m.hash.hex(), m.epoch))
        except StateSyncError as e:
            actual = getattr(e, "actual_hash", "")
            return self._desync(m.version, m.hash.hex(), actual, f"{type(e).__name__}: {e}")
        self.stats["updates"] += 1
        return [StateChanged(m.version, False)]

    def _desync(self, version: int, expected: str, actual: str, reason: str) -> list[Event]:
        self.stats["desyncs"] += 1
        self.stats["resyncs"] += 1
        self._awaiting_snapshot = True
        self._out.append(encode(Resync(self.version)))
        return [Desynced(version, expected, actual, reason)]
