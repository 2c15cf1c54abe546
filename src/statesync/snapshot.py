"""Snapshots and versioned deltas: what a client receives to catch up."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from statesync.hashing import state_hash

if TYPE_CHECKING:
    from statesync.delta import Delta
    from statesync.value import Value


@dataclass(frozen=True, slots=True)
class StateSnapshot:
    """The whole state (or one player's view of it) at ``version``.

    ``hash`` is :func:`~statesync.state_hash` of :meth:`to_state`. A player's snapshot holds
    only that player's entry in ``player_states`` and no ``secret_state``; a server's full
    snapshot holds everything. ``timestamp`` comes from the clock the synchronizer was given
    (0.0 without one) and never enters a hash. ``epoch`` changes when a table is rolled back
    or restored, so versions from another epoch are not mistaken for these.

    >>> snap = StateSnapshot.of(3, {"game": {"n": 1}, "seats": {}, "players": {}})
    >>> snap.verify()
    True
    """

    version: int
    hash: str
    game_state: Value
    player_states: dict[str, Value]
    timestamp: float = 0.0
    seats: dict[str, Value] = field(default_factory=dict)
    secret_state: Value = None
    full: bool = False
    """True for the server's full state (with every player's private state and the secret)."""
    epoch: int = 0
    viewer: str | None = None
    """Whose view this is: a player id, or ``None`` for a spectator or a full snapshot."""

    @classmethod
    def of(
        cls,
        version: int,
        state: dict[str, Any],
        *,
        timestamp: float = 0.0,
        epoch: int = 0,
        viewer: str | None = None,
    ) -> StateSnapshot:
        """Snapshot of a state tree with the four (or, for a view, three) sections."""
        full = "secret" in state
        return cls(
            version=version,
            hash=state_hash(state),
            game_state=state.get("game"),
            player_states=dict(state.get("players", {})),
            timestamp=timestamp,
            seats=dict(state.get("seats", {})),
            secret_state=state.get("secret") if full else None,
            full=full,
            epoch=epoch,
            viewer=None if full else viewer,
        )

    def to_state(self) -> dict[str, Any]:
        """The state tree this snapshot holds (the tree its ``hash`` is computed over)."""
        out: dict[str, Any] = {
            "game": self.game_state,
            "seats": dict(self.seats),
            "players": dict(self.player_states),
        }
        if self.full:
            out["secret"] = self.secret_state
        return out

    def verify(self) -> bool:
        """True when the contents hash to ``hash``."""
        try:
            return state_hash(self.to_state()) == self.hash
        except Exception:
            return False


@dataclass(frozen=True, slots=True)
class StateDelta:
    """The change from ``base_version`` to ``version``, squashed into one :class:`Delta`.

    ``hash`` is the hash of the state (or view) the receiver must hold after applying it.
    """

    base_version: int
    version: int
    delta: Delta
    hash: str
    epoch: int = 0
