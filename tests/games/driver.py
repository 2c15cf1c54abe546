"""A tiny stand-in for the engine, to test game rules on their own.

``Table`` keeps a full state (``game``/``seats``/``players``/``secret``), checks seating and
connection like the engine does, calls ``validate`` on the plain state (and checks it did not
modify it), and calls ``apply``/``join``/``leave``/``tick``/``connection_changed`` on a
*strict draft* of a copy: a MutableMapping / MutableSequence wrapper that is not a dict or
list, refuses non-plain values and floats, copies what is written into it (so a rule that
keeps mutating a list after writing it gets caught), and goes dead after the call (so a rule
that keeps a node between calls gets caught).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, MutableMapping, MutableSequence
from typing import Any

from statesync import reasons
from statesync.actions import PlayerAction
from statesync.game import Context, Game
from statesync.rng import Rng
from statesync.value import check_value, copy_value


class _Life:
    __slots__ = ("alive",)

    def __init__(self) -> None:
        self.alive = True


def _check_plain(value: Any) -> Any:
    if isinstance(value, DraftDict | DraftList):
        raise TypeError("write plain values into a draft, not draft nodes")
    check_value(value)
    _no_floats(value)
    return copy_value(value)


def _no_floats(value: Any) -> None:
    if type(value) is float:
        raise TypeError(f"games must not write floats: {value!r}")
    if type(value) is dict:
        for v in value.values():
            _no_floats(v)
    elif type(value) is list:
        for v in value:
            _no_floats(v)


def _wrap(value: Any, life: _Life) -> Any:
    if type(value) is dict:
        return DraftDict(value, life)
    if type(value) is list:
        return DraftList(value, life)
    return value


class DraftDict(MutableMapping[str, Any]):
    """Strict draft of a dict."""

    __slots__ = ("_d", "_life")

    def __init__(self, d: dict[str, Any], life: _Life) -> None:
        self._d = d
        self._life = life

    def _alive(self) -> None:
        if not self._life.alive:
            raise RuntimeError("a draft node was used after the call that received it")

    def __getitem__(self, key: str) -> Any:
        self._alive()
        return _wrap(self._d[key], self._life)

    def __setitem__(self, key: str, value: Any) -> None:
        self._alive()
        if type(key) is not str:
            raise TypeError(f"dict keys must be str, got {key!r}")
        self._d[key] = _check_plain(value)

    def __delitem__(self, key: str) -> None:
        self._alive()
        del self._d[key]

    def __iter__(self) -> Iterator[str]:
        self._alive()
        return iter(self._d)

    def __len__(self) -> int:
        self._alive()
        return len(self._d)


class DraftList(MutableSequence[Any]):
    """Strict draft of a list: int indices only (no slices)."""

    __slots__ = ("_l", "_life")

    def __init__(self, lst: list[Any], life: _Life) -> None:
        self._l = lst
        self._life = life

    def _alive(self) -> None:
        if not self._life.alive:
            raise RuntimeError("a draft node was used after the call that received it")

    def __getitem__(self, index: Any) -> Any:
        self._alive()
        if type(index) is not int:
            raise TypeError("draft lists take int indices only")
        return _wrap(self._l[index], self._life)

    def __setitem__(self, index: Any, value: Any) -> None:
        self._alive()
        if type(index) is not int:
            raise TypeError("draft lists take int indices only")
        self._l[index] = _check_plain(value)

    def __delitem__(self, index: Any) -> None:
        self._alive()
        if type(index) is not int:
            raise TypeError("draft lists take int indices only")
        del self._l[index]

    def __len__(self) -> int:
        self._alive()
        return len(self._l)

    def insert(self, index: int, value: Any) -> None:
        self._alive()
        self._l.insert(index, _check_plain(value))


class Table:
    """One table of ``game`` driven by hand: ``act``, ``tick``, ``join``, ``leave``..."""

    def __init__(
        self,
        game: Game,
        players: list[str],
        config: Any = None,
        seed: int = 0,
        *,
        strict: bool = True,
        resort: bool = False,
    ) -> None:
        """``strict``: hand the rules strict drafts instead of plain dicts. ``resort``: after
        every change, rebuild the state with sorted dict keys, as a store would return it."""
        self.game = game
        self.config = config
        self.seed = seed
        self.strict = strict
        self.resort = resort
        self.version = 0
        self.seq = 0
        initial = game.setup(list(players), config, Rng.derive(seed, 0))
        private = {p: {} for p in players}
        private.update(initial.get("players", {}))
        self.state: dict[str, Any] = {
            "game": initial["game"],
            "seats": {p: {"connected": True} for p in players},
            "players": private,
            "secret": initial.get("secret"),
        }
        check_value(self.state)

    @property
    def g(self) -> dict[str, Any]:
        """The public game section."""
        return self.state["game"]

    def ctx(self) -> Context:
        version = self.version + 1
        players = tuple(sorted(self.state["seats"]))
        return Context(version, players, Rng.derive(self.seed, version), self.config)

    def action(self, player: str, kind: str, payload: Any = None) -> PlayerAction:
        self.seq += 1
        return PlayerAction(player, player, self.seq, self.version, kind, payload)

    def validate(self, player: str, kind: str, payload: Any = None) -> str | None:
        """What the engine would answer, without applying anything."""
        seat = self.state["seats"].get(player)
        if seat is None:
            return reasons.NOT_SEATED
        if not seat["connected"] and not self.game.allow_disconnected:
            return reasons.DISCONNECTED
        before = copy.deepcopy(self.state)
        code = self.game.validate(self.state, self.action(player, kind, payload), self.ctx())
        assert self.state == before, "validate modified the state"
        return code

    def act(self, player: str, kind: str, payload: Any = None) -> str | None:
        """Validate, then apply; returns the rejection code or None."""
        code = self.validate(player, kind, payload)
        if code is None:
            action = self.action(player, kind, payload)
            self._mutate(lambda d, c: self.game.apply(d, action, c))
        return code

    def must(self, player: str, kind: str, payload: Any = None) -> None:
        """Act, and fail the test if the action is refused."""
        code = self.act(player, kind, payload)
        assert code is None, f"{player} {kind} {payload!r} refused: {code}"

    def tick(self) -> None:
        self._mutate(self.game.tick)

    def join(self, player: str) -> str | None:
        def run(draft: Any, ctx: Context) -> str | None:
            draft["seats"][player] = {"connected": True}
            return self.game.join(draft, player, ctx)

        return self._mutate(run)

    def leave(self, player: str) -> None:
        def run(draft: Any, ctx: Context) -> None:
            self.game.leave(draft, player, ctx)
            del draft["seats"][player]
            draft["players"].pop(player, None)

        self._mutate(run)

    def set_connected(self, player: str, connected: bool) -> None:
        def run(draft: Any, ctx: Context) -> None:
            draft["seats"][player]["connected"] = connected
            self.game.connection_changed(draft, player, connected, ctx)

        self._mutate(run)

    def _mutate(self, rules: Any) -> Any:
        """Run ``rules(draft, ctx)`` on a copy; keep it unless a reason code came back."""
        ctx = self.ctx()
        work = copy.deepcopy(self.state)
        life = _Life()
        draft = DraftDict(work, life) if self.strict else work
        try:
            refused = rules(draft, ctx)
        finally:
            life.alive = False
        if refused is None:
            check_value(work)
            self.state = json.loads(json.dumps(work, sort_keys=True)) if self.resort else work
            self.version += 1
        return refused
