"""Per-player views: one global delta, filtered per viewer instead of N whole-state diffs.

Visibility is structural (see :mod:`statesync.game`): ``"game"`` and ``"seats"`` are public,
``"players"/<id>`` belongs to that player, ``"secret"`` to nobody. So filtering an operation
only looks at the first one or two items of its path, and a view's hash is combined from
cached section hashes in constant time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from statesync.delta import Delta
from statesync.game import view_of
from statesync.hashing import _MEMO_LIMIT, T_DICT, P, format_hash, key_weight
from statesync.ops import Set

if TYPE_CHECKING:
    from statesync.hashing import IncrementalHash
    from statesync.ops import Op


class _Full:
    __slots__ = ()

    def __repr__(self) -> str:
        return "FULL"


FULL: Final = _Full()
"""Viewer meaning "the whole state, secrets included" (the server and its replicas)."""

Viewer = str | None | _Full
"""A player id, ``None`` for a spectator, or :data:`FULL`."""


def filter_delta(delta: Delta, viewer: Viewer) -> Delta:
    """The part of a full-state delta that ``viewer`` may see.

    >>> d = Delta((Set(("game", "pot"), 30), Set(("players", "bob", "cards"), ["Ah", "Kd"])))
    >>> [op.path for op in filter_delta(d, "alice").ops]
    [('game', 'pot')]
    """
    if viewer is FULL:
        return delta
    ops = delta.ops
    out: list[Op] = []
    kept = 0
    for op in ops:
        path = op.path
        # Inline fast paths for the common cases (a public section, a player's own part);
        # everything else goes through filter_op.
        if path:
            section = path[0]
            if section == "game" or section == "seats":
                out.append(op)
                kept += 1
                continue
            if section == "players" and len(path) > 1:
                if path[1] == viewer:
                    out.append(op)
                    kept += 1
                continue
        f = filter_op(op, viewer)  # type: ignore[arg-type]
        if f is not None:
            out.append(f)
            if f is op:
                kept += 1
    if kept == len(ops):
        return delta
    return Delta(tuple(out))


def touched_players(delta: Delta) -> frozenset[str] | None:
    """The players whose private section ``delta`` changes, or ``None`` when it replaces the
    whole state or the whole ``players`` section (then every view needs its own filtering).
    A viewer not in the set -- a spectator included -- sees exactly
    ``filter_delta(delta, None)``.

    >>> d = Delta((Set(("game", "pot"), 30), Set(("players", "bob", "chips"), 70)))
    >>> touched_players(d)
    frozenset({'bob'})
    """
    touched: set[str] = set()
    for op in delta.ops:
        path = op.path
        if not path:
            return None
        if path[0] == "players":
            if len(path) == 1:
                return None
            touched.add(path[1])  # type: ignore[arg-type]
    return frozenset(touched)


def filter_op(op: Op, viewer: str | None) -> Op | None:
    """``op`` as ``viewer`` sees it, or ``None`` when it touches nothing they may see."""
    path = op.path
    if not path:
        if isinstance(op, Set) and isinstance(op.value, dict):
            return Set((), view_of(op.value, viewer))
        return op
    section = path[0]
    if section in ("game", "seats"):
        return op
    if section == "players":
        if len(path) == 1:
            if isinstance(op, Set) and isinstance(op.value, dict):
                mine = op.value.get(viewer) if viewer is not None else None
                has = viewer is not None and viewer in op.value
                return Set(path, {viewer: mine} if has else {})  # type: ignore[dict-item]
            return None
        return op if path[1] == viewer else None
    return None


_K_GAME, _K_SEATS, _K_PLAYERS = key_weight("game"), key_weight("seats"), key_weight("players")
_SECTION_WEIGHTS: Final = {"players": _K_PLAYERS, "secret": key_weight("secret")}
# A view's "players" section is {} or {viewer: mine}: its share of the view's hash is
# K("players") * (T_DICT + K(viewer) * H(mine)), split into a constant and a per-viewer weight.
_PLAYERS_BASE: Final = _K_PLAYERS * T_DICT % P
_viewer_weights: dict[str, int] = {}


def _viewer_weight(viewer: str) -> int:
    """``K("players") * K(viewer)`` modulo ``P`` (memoized: a table asks for the same few)."""
    w = _viewer_weights.get(viewer)
    if w is None:
        if len(_viewer_weights) >= _MEMO_LIMIT:
            _viewer_weights.clear()
        w = _viewer_weights[viewer] = _K_PLAYERS * key_weight(viewer) % P
    return w


def public_hash_part(hasher: IncrementalHash, state: dict[str, Any]) -> int:
    """The part of every view's hash that does not depend on the viewer (game and seats),
    reduced modulo ``P``: :func:`view_hash` with ``public=`` reuses it across the viewers of
    one version.

    That is ``T_DICT + K("game") * H(game) + K("seats") * H(seats)``, which is the root hash
    minus the terms of the other sections (``"players"``, ``"secret"``). It is computed that
    way: the hasher then keeps those sections' hashes current, not the game's, and most
    writes go to the game (a write costs one more update per cached section above it)."""
    if "game" not in state or "seats" not in state:  # the view holds them all the same
        return (
            T_DICT
            + _K_GAME * hasher.subtree(state, ("game",))
            + _K_SEATS * hasher.subtree(state, ("seats",))
        ) % P
    part = hasher.root
    for section in state:
        if section != "game" and section != "seats":
            w = _SECTION_WEIGHTS.get(section) or key_weight(section)
            part -= w * hasher.subtree(state, (section,))
    return part % P


def private_hash_part(hasher: IncrementalHash, state: dict[str, Any], viewer: str | None) -> int:
    """The rest of ``viewer``'s view hash, reduced modulo ``P``: the term of their
    ``"players"`` section, which depends on ``state["players"][viewer]`` alone (``None``, a
    spectator or a player without private state: on nothing)."""
    part = _PLAYERS_BASE
    if viewer is not None and viewer in state["players"]:
        part += _viewer_weight(viewer) * hasher.subtree(state, ("players", viewer))
    return part % P


def view_hash(
    hasher: IncrementalHash, state: dict[str, Any], viewer: Viewer, public: int | None = None
) -> str:
    """The hash of ``viewer``'s view of ``state``, from cached section hashes: the sum of
    :func:`public_hash_part` and :func:`private_hash_part`."""
    if viewer is FULL:
        return hasher.hex
    if public is None:
        public = public_hash_part(hasher, state)
    return format_hash((public + private_hash_part(hasher, state, viewer)) % P)  # type: ignore[arg-type]


__all__ = [
    "FULL",
    "Viewer",
    "filter_delta",
    "filter_op",
    "private_hash_part",
    "public_hash_part",
    "touched_players",
    "view_hash",
]
