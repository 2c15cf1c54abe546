"""The rules interface a game author implements, and the layout of a table's state.

A table's full state is one dict with four sections::

    {
      "game":    <public game state, seen by everyone>,
      "seats":   {player_id: {"connected": bool}},      # kept by the engine, public
      "players": {player_id: <that player's private state>},
      "secret":  <server-only state: the deck, hidden dice, ...>,
    }

A player's *view* is ``{"game": ..., "seats": ..., "players": {me: <mine>}}``; a spectator's is
the same with ``"players": {}``. ``"secret"`` never leaves the server. Every delta, snapshot and
hash a player receives is computed from that view, so hidden information cannot leak through a
hash either. Cards revealed at a showdown are copied by the rules into ``"game"``.

Write a game by subclassing :class:`Game`::

    class Counter(Game):
        name = "counter"

        def setup(self, players, config, rng):
            return {"game": {"count": 0}}

        def validate(self, state, action, ctx):
            if action.type != "add":
                return reasons.UNKNOWN_TYPE
            return None

        def apply(self, draft, action, ctx):
            draft["game"]["count"] += 1
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from statesync import reasons

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from statesync.actions import PlayerAction
    from statesync.rng import Rng
    from statesync.value import Value

SECTIONS = ("game", "seats", "players", "secret")
PUBLIC_SECTIONS = ("game", "seats")


@dataclass(frozen=True, slots=True)
class Context:
    """What the rules may know besides the state: everything here is deterministic.

    ``version`` is the version the action will create; ``rng`` is seeded from the table seed
    and that version, so a replay draws the same numbers; ``players`` are the seated players,
    sorted; ``config`` is the table's configuration.
    """

    version: int
    players: tuple[str, ...]
    rng: Rng
    config: Value


class Game:
    """Base class for a game's rules. Override :meth:`setup`, :meth:`validate` and
    :meth:`apply`; the other hooks have sensible defaults.

    Rules must be deterministic: use ``ctx.rng`` for randomness, never the clock, and never
    iterate a dict or set where the order could differ between runs in a way that changes the
    result (stores keep dict order, but the hash ignores it and other clients may not).
    """

    name: ClassVar[str] = "game"
    """Identifier used in logs, stores and the CLI."""
    min_players: ClassVar[int] = 1
    max_players: ClassVar[int] = 16
    strict_base: ClassVar[bool] = False
    """When True, an action whose ``base_version`` is behind the current version is rejected
    (``action/stale_base``) instead of being re-validated against the current state."""
    allow_disconnected: ClassVar[bool] = False
    """When False, actions from a seat marked disconnected are rejected."""
    tick_rate: ClassVar[float] = 0.0
    """Simulation steps (:meth:`tick`) per second, and the rate a server coalesces updates
    at; 0 means a turn-based game that sends an update after every action."""

    def setup(self, players: Sequence[str], config: Value, rng: Rng) -> dict[str, Any]:
        """The initial state: a dict with ``"game"`` and optionally ``"players"`` (private
        state per player) and ``"secret"``. ``players`` are the players seated at creation.
        Raise :class:`~statesync.errors.GameError` (or ``ValueError``) for a bad ``config``."""
        raise NotImplementedError

    def validate(self, state: dict[str, Any], action: PlayerAction, ctx: Context) -> str | None:
        """``None`` if ``action`` is legal in ``state``, else a stable reason code.

        ``state`` is the full table state (read it, never modify it). The engine has already
        checked that the actor is seated (and connected, unless :attr:`allow_disconnected`).
        Raise :class:`~statesync.errors.ActionRejected` to add a message or detail.
        """
        raise NotImplementedError

    def apply(self, draft: Any, action: PlayerAction, ctx: Context) -> None:
        """Apply a validated action by mutating ``draft`` (a dict-like view of the full state;
        mutations are recorded as the delta). Raising here rejects the action; nothing is
        applied."""
        raise NotImplementedError

    def join(self, draft: Any, player_id: str, ctx: Context) -> str | None:
        """A player takes a seat (``draft["seats"][player_id]`` already exists). Return a
        reason code to refuse (the default refuses beyond :attr:`max_players`) and set up the
        player's private state, which defaults to ``{}``."""
        if len(draft["seats"]) > self.max_players:
            return reasons.TABLE_FULL
        draft["players"].setdefault(player_id, {})
        return None

    def leave(self, draft: Any, player_id: str, ctx: Context) -> None:
        """A player leaves; the engine removes their seat and private state afterwards."""

    def connection_changed(self, draft: Any, player_id: str, connected: bool, ctx: Context) -> None:
        """A seated player's connection dropped or came back (``draft["seats"]`` is updated
        by the engine). Games may fold a disconnected player, pause a clock, and so on."""

    def tick(self, draft: Any, ctx: Context) -> None:
        """Advance a real-time game by one simulation step (movement, timers, NPCs). The
        server calls it :attr:`tick_rate` times per second as the system action ``$tick``;
        turn-based games leave it alone."""

    def is_over(self, state: dict[str, Any]) -> bool:
        """True once the game has ended; further actions are rejected with
        ``action/game_over``."""
        return False

    def hidden_values(self, state: dict[str, Any], player_id: str | None) -> Iterator[Value]:
        """Values that ``player_id`` (``None``: a spectator) must never see. The simulator's
        leak oracle checks that none of them appears in bytes sent to that player. The default
        yields every scalar in other players' private state and in ``"secret"``; override to
        narrow it down (short values like ``0`` or ``""`` make the oracle useless)."""
        for pid, private in state.get("players", {}).items():
            if pid != player_id:
                yield from _scalars(private)
        yield from _scalars(state.get("secret"))


def _scalars(value: Value) -> Iterator[Value]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _scalars(v)
    elif isinstance(value, list):
        for v in value:
            yield from _scalars(v)
    elif value is not None:
        yield value


def view_of(state: dict[str, Any], player_id: str | None) -> dict[str, Any]:
    """The view of ``state`` that ``player_id`` may see (``None``: a spectator).

    >>> s = {"game": {}, "seats": {"a": {}}, "players": {"a": {"c": 1}, "b": {"c": 2}},
    ...      "secret": {"deck": []}}
    >>> view_of(s, "a")
    {'game': {}, 'seats': {'a': {}}, 'players': {'a': {'c': 1}}}
    """
    players = state.get("players", {})
    mine = {player_id: players[player_id]} if player_id is not None and player_id in players else {}
    return {"game": state.get("game"), "seats": state.get("seats", {}), "players": mine}
