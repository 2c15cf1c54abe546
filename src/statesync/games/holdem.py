"""No-limit Texas hold'em for 2 to 9 players, with side pots and hidden hole cards.

Theory of operation
-------------------
One table plays hand after hand until one player holds every chip. A hand walks
``preflop -> flop -> turn -> river -> showdown``; everything between two player actions
(closing a betting round, dealing the next street, the showdown, paying the pots, starting the
next hand) happens inside the :meth:`Holdem.apply` of the action that triggered it, so a state
always waits for exactly one player (``game["turn"]``), or for more players to join
(``round == "waiting"``), or for nobody (``game["winner"]`` is set).

State layout::

    game = {
      "seats": [{"name": player_id, "chips": int, "bet": int, "committed": int,
                 "status": "active" | "folded" | "allin" | "out",
                 "last_action": str | None, "acted": bool}],      # table order
      "small_blind": int, "big_blind": int,
      "hand": int, "dealer": seat index, "turn": player_id | None,
      "round": "waiting" | "preflop" | "flop" | "turn" | "river" | "showdown",
      "board": [card], "pot": int,                                 # every chip bet this hand
      "pots": [{"amount": int, "eligible": [player_id]}],          # as of the last street
      "current_bet": int, "min_raise": int,
      "log": [str],                                                # the last LOG_SIZE events
      "result": None | {"hand", "board", "shown": {pid: cards}, "categories": {pid: str},
                        "winners": [pid], "payouts": {pid: int}},  # the last finished hand
      "winner": player_id | None,                                  # set when the game is over
    }
    players[pid] = {"cards": [card, card]}      # [] when not dealt in
    secret = {"deck": [card]}                   # the undealt cards; dealing pops the end

``bet`` is this street's bet, ``committed`` the whole hand's; ``acted`` means the player has
acted since the last full raise. ``result`` keeps the last hand (the next one starts at once):
``shown`` holds the hole cards of the players who reached the showdown, and is empty when the
hand was won by everyone else folding.

Rules worth knowing
-------------------
* Blinds are posted at the start of a hand; heads-up, the dealer posts the small blind and acts
  first before the flop, last after it. A short stack posts what it has and is all in; the
  amount to call is still the full big blind.
* ``bet {"amount": n}`` opens a street (``n >= big_blind``); ``raise {"to": n}`` names the new
  *total* bet of the street, at least ``current_bet + min_raise``, where ``min_raise`` is the
  size of the last full bet or raise (the big blind at first). ``call`` and ``check`` take no
  payload; ``all_in`` puts every chip in and is a call, a bet or a raise depending on the
  amount. Payloads of ``fold``/``check``/``call``/``all_in`` are ignored.
* An all-in raise smaller than ``min_raise`` does not reopen the betting: players who already
  acted may only call or fold (:data:`NOT_REOPENED`). Several short all-ins never add up to a
  reopening.
* A betting round ends when every active player has acted and matched the bet, or when at most
  one active player is left with nothing to call. An uncalled part of a bet goes back to its
  owner when the round closes. With fewer than two players able to bet, the board is dealt out.
* Side pots are split by the levels of the all-in players' contributions; chips of folded
  players at a level no live player reached go to the last pot. Each pot goes to the best hand
  among the players eligible for it; a tie splits it evenly and *all* odd chips go to the
  tied winner sitting first to the left of the dealer.
* Players with no chips left are ``"out"``; the game is over when only one seated player has
  chips. A player who joins mid-hand sits folded until the next hand; a player who leaves folds,
  and forfeits their stack (their seat disappears at the next hand).
* A player who disconnects while it is their turn is folded (a turn timer for later turns is the
  server's business: this rule only stops the table from stalling on the spot).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final

from statesync import reasons
from statesync.draft import peek
from statesync.errors import GameError
from statesync.game import Game
from statesync.games.poker_hands import DECK, award, category_name, evaluate, side_pots

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from statesync.actions import PlayerAction
    from statesync.game import Context
    from statesync.rng import Rng
    from statesync.value import Value

WAITING: Final = "holdem/waiting_for_players"
"""No hand is being played: fewer than two players have chips."""
CANNOT_CHECK: Final = "holdem/cannot_check"
"""There is a bet to call: call, raise or fold."""
NOTHING_TO_CALL: Final = "holdem/nothing_to_call"
"""The player's bet already matches: check instead."""
CANNOT_BET: Final = "holdem/cannot_bet"
"""The street already has a bet (the big blind counts): raise instead."""
CANNOT_RAISE: Final = "holdem/cannot_raise"
"""There is no bet to raise: bet instead."""
NOT_REOPENED: Final = "holdem/betting_not_reopened"
"""Only a short all-in raised since this player acted: they may call or fold, not raise."""
BET_TOO_SMALL: Final = "holdem/bet_too_small"
"""A bet below the big blind (go all in to bet less)."""
RAISE_TOO_SMALL: Final = "holdem/raise_too_small"
"""A raise to less than ``current_bet + min_raise`` (go all in to raise less)."""
NOT_ENOUGH_CHIPS: Final = "holdem/not_enough_chips"
"""The bet or raise needs more chips than the player has (use ``all_in``)."""

REASONS: Final = frozenset(
    {
        WAITING,
        CANNOT_CHECK,
        NOTHING_TO_CALL,
        CANNOT_BET,
        CANNOT_RAISE,
        NOT_REOPENED,
        BET_TOO_SMALL,
        RAISE_TOO_SMALL,
        NOT_ENOUGH_CHIPS,
        reasons.NOT_YOUR_TURN,
        reasons.GAME_OVER,
        reasons.UNKNOWN_TYPE,
        reasons.INVALID_PAYLOAD,
    }
)
"""Every reason code :meth:`Holdem.validate` returns."""

ACTIONS: Final = ("fold", "check", "call", "bet", "raise", "all_in")
"""The action types."""
STREETS: Final = ("preflop", "flop", "turn", "river")
"""Betting rounds in order."""
LOG_SIZE: Final = 10
"""Entries kept in ``game["log"]``."""

_LIVE: Final = ("active", "allin")
_STREET_CARDS: Final = {"flop": 3, "turn": 1, "river": 1}


@dataclass(frozen=True, slots=True)
class HoldemConfig:
    """Table configuration, read from the table's ``config`` dict by :meth:`parse`."""

    small_blind: int = 10
    big_blind: int = 20
    stack: int = 1000
    """Starting chips of every player..."""
    stacks: dict[str, int] = field(default_factory=dict)
    """...except these (``{"player_id": chips}``), handy for tests and tournaments."""

    @classmethod
    def parse(cls, config: Value) -> HoldemConfig:
        """Read ``{"small_blind", "big_blind", "stack", "stacks"}`` (all optional; other keys
        are ignored). Raises :class:`ValueError` when a value is not a positive int or the
        small blind exceeds the big blind."""
        if config is None:
            return cls()
        if not isinstance(config, dict):
            raise ValueError("holdem config must be a dict")
        default = cls()
        sb, bb, stack = (
            _positive(key, config.get(key, getattr(default, key)))
            for key in ("small_blind", "big_blind", "stack")
        )
        stacks = config.get("stacks", {})
        if not isinstance(stacks, dict):
            raise ValueError("holdem config 'stacks' must be a dict")
        if sb > bb:
            raise ValueError("holdem small blind must not exceed the big blind")
        return cls(sb, bb, stack, {pid: _positive(pid, v) for pid, v in stacks.items()})

    def stack_for(self, player_id: str) -> int:
        """Starting chips of ``player_id``."""
        return self.stacks.get(player_id, self.stack)


class Holdem(Game):
    """No-limit Texas hold'em; see the module docstring for the state layout and rules.

    ``config``: ``{"small_blind": 10, "big_blind": 20, "stack": 1000}`` (the defaults), and
    optionally ``"stacks": {player_id: chips}``.
    """

    name: ClassVar[str] = "holdem"
    min_players: ClassVar[int] = 2
    max_players: ClassVar[int] = 9

    def setup(self, players: Sequence[str], config: Value, rng: Rng) -> dict[str, Any]:
        """Seat ``players`` in sorted order and deal the first hand (with two or more).
        Raises :class:`ValueError` for more than nine players or a malformed config."""
        cfg = HoldemConfig.parse(config)
        order = sorted(players)
        if len(order) > self.max_players:
            raise ValueError(f"holdem seats at most {self.max_players} players")
        game: dict[str, Any] = {
            "seats": [_new_seat(p, cfg.stack_for(p), "active") for p in order],
            "small_blind": cfg.small_blind,
            "big_blind": cfg.big_blind,
            "hand": 0,
            "dealer": 0,
            "turn": None,
            "round": "waiting",
            "board": [],
            "pot": 0,
            "pots": [],
            "current_bet": 0,
            "min_raise": cfg.big_blind,
            "log": [],
            "result": None,
            "winner": None,
        }
        players_state: dict[str, Any] = {p: {"cards": []} for p in order}
        state = {"game": game, "players": players_state, "secret": {"deck": []}}
        _settle(state, rng, _start_hand(state, rng, first=True))
        return state

    def validate(self, state: dict[str, Any], action: PlayerAction, ctx: Context) -> str | None:
        """``None`` if ``action`` is legal, else one of :data:`REASONS`."""
        return _check(state["game"], action.player_id, action.type, action.payload)

    def apply(self, draft: Any, action: PlayerAction, ctx: Context) -> None:
        """Apply a validated action, then run the table until someone must act again."""
        _act(draft, action.player_id, action.type, action.payload, ctx.rng)

    def join(self, draft: Any, player_id: str, ctx: Context) -> str | None:
        """Seat the player at the end of the table with a starting stack. They sit folded
        until the next hand; if the table was waiting, a hand starts now. Refuses with
        ``"action/table_full"`` beyond nine players and :data:`~statesync.reasons.GAME_OVER`
        once the game has ended."""
        refused = super().join(draft, player_id, ctx)
        if refused is not None:
            return refused
        g = draft["game"]
        if g["winner"] is not None:
            return reasons.GAME_OVER
        stack = HoldemConfig.parse(ctx.config).stack_for(player_id)
        draft["players"][player_id] = {"cards": []}
        waiting = g["round"] == "waiting"
        i = _find(g, player_id)
        if i is None:
            g["seats"].append(_new_seat(player_id, stack, "active" if waiting else "folded"))
        else:  # back before the seat they left was cleared
            seat = g["seats"][i]
            if seat.get("left"):
                del seat["left"]
                seat["chips"] = stack
        if waiting:
            _settle(draft, ctx.rng, _start_hand(draft, ctx.rng, first=g["hand"] == 0))
        return None

    def leave(self, draft: Any, player_id: str, ctx: Context) -> None:
        """Fold the player out of the hand in progress and forfeit their stack; the table
        moves on if they were in the way."""
        g = draft["game"]
        i = _find(g, player_id)
        if i is None:
            return
        seats = g["seats"]
        if g["turn"] is None:  # no hand in progress: just free the seat
            del seats[i]
            if i < g["dealer"]:
                g["dealer"] -= 1
            return
        seat = seats[i]
        seat["left"] = True
        seat["chips"] = 0
        if seat["status"] in _LIVE:
            seat["status"] = "folded"
            seat["last_action"] = "fold"
        _log(g, f"{player_id} leaves")
        turn = _index(g, g["turn"])
        _settle(draft, ctx.rng, i if turn == i else (turn - 1) % len(seats))

    def connection_changed(self, draft: Any, player_id: str, connected: bool, ctx: Context) -> None:
        """Fold a player who disconnects while it is their turn."""
        if not connected and draft["game"]["turn"] == player_id:
            _act(draft, player_id, "fold", None, ctx.rng, note=" (disconnected)")

    def is_over(self, state: dict[str, Any]) -> bool:
        """True once one player holds every chip in play."""
        return state["game"]["winner"] is not None

    def hidden_values(self, state: dict[str, Any], player_id: str | None) -> Iterator[Value]:
        """Hole cards of the other players and the undealt deck, as card strings, minus the
        cards ``player_id`` can already see (the board, their own cards, the last showdown):
        the same string there is public information, not a leak."""
        g = state["game"]
        players = state.get("players", {})
        visible = set(g["board"])
        if g["result"] is not None:
            visible.update(g["result"]["board"])
            for cards in g["result"]["shown"].values():
                visible.update(cards)
        if player_id in players:
            visible.update(players[player_id].get("cards", []))
        for pid in sorted(players):
            if pid != player_id:
                yield from (c for c in players[pid].get("cards", []) if c not in visible)
        secret = state.get("secret") or {}
        yield from (c for c in secret.get("deck", []) if c not in visible)


def legal_actions(state: Mapping[str, Any], player_id: str) -> list[tuple[str, Value]]:
    """A representative set of legal actions of ``player_id``: fold, check or call, the
    smallest bet or raise and twice that, and all in. Empty when it is not their turn."""
    g = state["game"]
    if g["winner"] is not None or g["turn"] != player_id:
        return []
    bb, current, step = g["big_blind"], g["current_bet"], g["min_raise"]
    candidates: list[tuple[str, Value]] = [
        ("fold", None),
        ("check", None),
        ("call", None),
        ("bet", {"amount": bb}),
        ("bet", {"amount": 2 * bb}),
        ("raise", {"to": current + step}),
        ("raise", {"to": current + 2 * step}),
        ("all_in", None),
    ]
    return [(t, p) for t, p in candidates if _check(g, player_id, t, p) is None]


# --- validation: read-only, works on plain states and drafts alike -------------------------


def _check(g: Any, player_id: str, kind: str, payload: Value) -> str | None:
    if g["winner"] is not None:
        return reasons.GAME_OVER
    rule = _RULES.get(kind)
    if rule is None:
        return reasons.UNKNOWN_TYPE
    if g["turn"] is None:
        return WAITING
    if g["turn"] != player_id:
        return reasons.NOT_YOUR_TURN
    return rule(g, g["seats"][_index(g, player_id)], payload)


def _rule_free(g: Any, seat: Any, payload: Value) -> str | None:
    return None


def _rule_check(g: Any, seat: Any, payload: Value) -> str | None:
    return CANNOT_CHECK if g["current_bet"] > seat["bet"] else None


def _rule_call(g: Any, seat: Any, payload: Value) -> str | None:
    return NOTHING_TO_CALL if g["current_bet"] <= seat["bet"] else None


def _rule_bet(g: Any, seat: Any, payload: Value) -> str | None:
    amount = _int_field(payload, "amount")
    if amount is None:
        return reasons.INVALID_PAYLOAD
    if g["current_bet"] > 0:
        return CANNOT_BET
    if amount < g["big_blind"]:
        return BET_TOO_SMALL
    if amount > seat["chips"]:
        return NOT_ENOUGH_CHIPS
    return None


def _rule_raise(g: Any, seat: Any, payload: Value) -> str | None:
    to = _int_field(payload, "to")
    if to is None:
        return reasons.INVALID_PAYLOAD
    if g["current_bet"] == 0:
        return CANNOT_RAISE
    if seat["acted"]:
        return NOT_REOPENED
    if to - seat["bet"] > seat["chips"]:
        return NOT_ENOUGH_CHIPS
    if to < g["current_bet"] + g["min_raise"]:
        return RAISE_TOO_SMALL
    return None


def _rule_all_in(g: Any, seat: Any, payload: Value) -> str | None:
    raises = seat["bet"] + seat["chips"] > g["current_bet"]
    return NOT_REOPENED if raises and seat["acted"] else None


_RULES: Final[dict[str, Callable[[Any, Any, Value], str | None]]] = {
    "fold": _rule_free,
    "check": _rule_check,
    "call": _rule_call,
    "bet": _rule_bet,
    "raise": _rule_raise,
    "all_in": _rule_all_in,
}


def _int_field(payload: Value, key: str) -> int | None:
    if isinstance(payload, dict):
        value = payload.get(key)
        if type(value) is int:
            return value
    return None


# --- the table machine: everything below mutates a draft -----------------------------------


def _act(draft: Any, player_id: str, kind: str, payload: Any, rng: Rng, note: str = "") -> None:
    g = draft["game"]
    i = _index(g, player_id)
    seat = g["seats"][i]
    plain = peek(seat)  # read before any write below
    if kind == "fold":
        seat["status"] = "folded"
        text = "folds"
    elif kind == "check":
        text = "checks"
    elif kind == "call":
        amount = min(g["current_bet"] - plain["bet"], plain["chips"])
        _put(g, seat, amount)
        text = f"calls {amount}"
    elif kind == "bet":
        _put(g, seat, payload["amount"])
        _raise_to(g, i, payload["amount"])
        text = f"bets {payload['amount']}"
    elif kind == "raise":
        _put(g, seat, payload["to"] - plain["bet"])
        _raise_to(g, i, payload["to"])
        text = f"raises to {payload['to']}"
    else:
        level = plain["bet"] + plain["chips"]
        _put(g, seat, plain["chips"])
        if level > g["current_bet"]:
            _raise_to(g, i, level)
        text = f"is all in for {level}"
    seat["acted"] = True
    seat["last_action"] = kind
    _log(g, f"{player_id} {text}{note}")
    _settle(draft, rng, i)


def _settle(draft: Any, rng: Rng, anchor: int | None) -> None:
    """Run the table forward until a player must act (the first one after seat ``anchor``
    who owes an action), or no hand can start. ``anchor`` None: no hand in progress."""
    while anchor is not None:
        g = draft["game"]
        plain = peek(g)  # read-only scans: no proxy per seat
        live = [i for i, s in enumerate(plain["seats"]) if s["status"] in _LIVE]
        if len(live) == 1:
            _win_uncontested(g, live[0])
            anchor = _start_hand(draft, rng, first=False)
        elif not _round_complete(plain):
            g["turn"] = _next_to_act(plain, anchor)
            return
        else:
            _close_round(g)
            if g["round"] == "river":
                _showdown(draft)
                anchor = _start_hand(draft, rng, first=False)
            else:
                _deal_street(draft)
                anchor = g["dealer"]


def _start_hand(draft: Any, rng: Rng, *, first: bool) -> int | None:
    """Move the button, clear departed seats, deal, post blinds; return the big blind's seat,
    or None when fewer than two players have chips (the game waits or is over)."""
    g = draft["game"]
    seats = g["seats"]
    button = _next_button(peek(seats), g["dealer"], first)
    for i in reversed(range(len(seats))):
        if peek(seats)[i].get("left"):
            del seats[i]
    for i in range(len(seats)):
        _reset_seat(seats, i)
    g["turn"] = None
    g["current_bet"] = 0
    with_chips = [s["name"] for s in peek(seats) if s["chips"] > 0]
    if len(with_chips) < 2 or button is None:
        if len(with_chips) == 1 and len(seats) > 1:
            g["winner"] = with_chips[0]
            _log(g, f"{with_chips[0]} wins the game")
        else:
            g["round"] = "waiting"
            if len(g["board"]):
                g["board"] = []
        return None
    dealer = next(i for i, s in enumerate(peek(seats)) if s["name"] == button)
    g["dealer"] = dealer
    g["hand"] += 1
    g["round"] = "preflop"
    if len(g["board"]):
        g["board"] = []
    plain = peek(seats)
    order = _around(len(plain), dealer, lambda i: plain[i]["status"] == "active")
    _deal(draft, order, rng)
    sb, bb = (dealer, order[0]) if len(order) == 2 else (order[0], order[1])
    _post(g, sb, g["small_blind"], "small_blind")
    _post(g, bb, g["big_blind"], "big_blind")
    g["current_bet"] = g["big_blind"]
    g["min_raise"] = g["big_blind"]
    _log(g, f"hand {g['hand']}: {button} deals")
    return bb


def _next_button(seats: Any, dealer: int, first: bool) -> str | None:
    n = len(seats)
    for k in range(n):
        seat = seats[(dealer + k + (0 if first else 1)) % n]
        if seat["chips"] > 0 and not seat.get("left"):
            return str(seat["name"])
    return None


def _reset_seat(seats: Any, i: int) -> None:
    plain = peek(seats)[i]
    fresh = (
        ("status", "active" if plain["chips"] > 0 else "out"),
        ("bet", 0),
        ("committed", 0),
        ("acted", False),
        ("last_action", None),
    )
    if any(_differs(plain[key], value) for key, value in fresh):
        seat = seats[i]
        for key, value in fresh:
            if _differs(plain[key], value):  # the draft would skip it, at a higher cost
                seat[key] = value


def _deal(draft: Any, order: list[int], rng: Rng) -> None:
    """Shuffle a fresh deck and deal two cards to each seat in ``order`` (one at a time)."""
    deck = list(DECK)
    rng.shuffle(deck)
    seats = peek(draft["game"]["seats"])
    hands: dict[int, list[str]] = {i: [] for i in order}
    for _ in range(2):
        for i in order:
            hands[i].append(deck.pop())
    players = draft["players"]
    for i in range(len(seats)):
        name = seats[i]["name"]
        cards = hands.get(i, [])
        if name not in players:
            players[name] = {"cards": cards}
        elif cards or len(peek(players)[name]["cards"]):
            players[name]["cards"] = cards
    draft["secret"] = {"deck": deck}


def _post(g: Any, i: int, blind: int, label: str) -> None:
    seat = g["seats"][i]
    _put(g, seat, min(blind, seat["chips"]))
    seat["last_action"] = label


def _put(g: Any, seat: Any, amount: int) -> None:
    """Move ``amount`` chips from ``seat``'s stack (a seat of ``g``) into its bet."""
    if amount <= 0:
        return
    plain = peek(seat)
    chips, bet, committed = plain["chips"], plain["bet"], plain["committed"]
    seat["chips"] = chips - amount
    seat["bet"] = bet + amount
    seat["committed"] = committed + amount
    g["pot"] += amount
    if chips == amount:
        seat["status"] = "allin"


def _raise_to(g: Any, i: int, level: int) -> None:
    """Seat ``i`` made the bet ``level``; a full raise reopens the betting for the others."""
    if level - g["current_bet"] >= g["min_raise"]:
        g["min_raise"] = level - g["current_bet"]
        seats = g["seats"]
        reopened = [
            j
            for j, seat in enumerate(peek(seats))
            if j != i and seat["status"] == "active" and seat["acted"]
        ]
        for j in reopened:
            seats[j]["acted"] = False
    g["current_bet"] = level


def _round_complete(g: Any) -> bool:
    """Every active player acted and matched the bet, or at most one is active and has
    nothing to call. ``g`` is a plain game section (:func:`peek` a draft's). (One pass: this
    runs after every action.)"""
    current = g["current_bet"]
    active = 0
    covered = done = True  # every active bet >= current / every active player is settled
    for s in g["seats"]:
        if s["status"] == "active":
            active += 1
            bet = s["bet"]
            if bet < current:
                covered = done = False
            elif bet != current or not s["acted"]:
                done = False
    return (active <= 1 and covered) or done


def _next_to_act(g: Any, anchor: int) -> str:
    """The first player after seat ``anchor`` who owes an action; ``g`` is a plain game
    section, as for :func:`_round_complete`."""
    current = g["current_bet"]
    seats = g["seats"]
    n = len(seats)
    for k in range(anchor + 1, anchor + n + 1):  # round the table once, after the anchor
        s = seats[k % n]
        if s["status"] == "active" and (not s["acted"] or s["bet"] < current):
            return str(s["name"])
    raise GameError("holdem: no player owes an action in an open betting round")


def _close_round(g: Any) -> None:
    """Return an uncalled bet, move the bets into the pots. (A folded player's bet is never
    uncalled, except one who left: that stays in the pot as dead money.)"""
    seats = g["seats"]
    bets = sorted((s["bet"], i) for i, s in enumerate(peek(seats)))
    top = peek(seats)[bets[-1][1]]
    if len(bets) > 1 and bets[-1][0] > bets[-2][0] and top["status"] in _LIVE:
        excess, seat = bets[-1][0] - bets[-2][0], seats[bets[-1][1]]
        seat["chips"] += excess
        seat["committed"] -= excess
        g["pot"] -= excess
        if seat["status"] == "allin":
            seat["status"] = "active"
        _log(g, f"{seat['name']} takes back {excess}")
    for i in range(len(seats)):
        if _differs(peek(seats)[i]["bet"], 0):
            seats[i]["bet"] = 0
    plain = peek(seats)
    live = [s["status"] in _LIVE for s in plain]
    names = [s["name"] for s in plain]
    g["pots"] = [
        {"amount": amount, "eligible": [names[i] for i in eligible]}
        for amount, eligible in side_pots([s["committed"] for s in plain], live)
    ]


def _deal_street(draft: Any) -> None:
    g = draft["game"]
    street = STREETS[STREETS.index(g["round"]) + 1]
    g["round"] = street
    deck = draft["secret"]["deck"]
    board = g["board"]
    for _ in range(_STREET_CARDS[street]):
        board.append(deck.pop())
    _log(g, street)
    g["current_bet"] = 0
    g["min_raise"] = g["big_blind"]
    seats = g["seats"]
    for i in range(len(seats)):
        plain = peek(seats)[i]
        if plain["status"] == "active" and _differs(plain["acted"], False):
            seats[i]["acted"] = False


def _showdown(draft: Any) -> None:
    g = draft["game"]
    g["round"] = "showdown"
    seats = g["seats"]
    n = len(seats)
    board = list(g["board"])
    live = [s["status"] in _LIVE for s in seats]
    cards = {i: list(draft["players"][seats[i]["name"]]["cards"]) for i in range(n) if live[i]}
    values = {i: evaluate(c + board) for i, c in cards.items()}
    pots = side_pots([s["committed"] for s in seats], live)
    payouts = award(pots, values, g["dealer"], n)
    for i, amount in enumerate(payouts):
        if amount:
            seats[i]["chips"] += amount
            _log(g, f"{seats[i]['name']} wins {amount} with {category_name(values[i])}")
    g["result"] = {
        "hand": g["hand"],
        "board": board,
        "shown": {seats[i]["name"]: c for i, c in cards.items()},
        "categories": {seats[i]["name"]: category_name(v) for i, v in values.items()},
        "winners": [seats[i]["name"] for i in range(n) if payouts[i]],
        "payouts": {seats[i]["name"]: p for i, p in enumerate(payouts) if p},
    }
    g["pot"] = 0
    g["pots"] = []


def _win_uncontested(g: Any, i: int) -> None:
    seat = g["seats"][i]
    amount = g["pot"]
    seat["chips"] += amount
    g["pot"] = 0
    g["pots"] = []
    g["result"] = {
        "hand": g["hand"],
        "board": list(g["board"]),
        "shown": {},
        "categories": {},
        "winners": [seat["name"]],
        "payouts": {seat["name"]: amount},
    }
    _log(g, f"{seat['name']} wins {amount}")


# --- small helpers ---------------------------------------------------------------------------


def _positive(key: str, value: Value) -> int:
    if type(value) is not int or value < 1:
        raise ValueError(f"holdem config {key!r} must be a positive int, got {value!r}")
    return value


def _new_seat(player_id: str, chips: int, status: str) -> dict[str, Value]:
    return {
        "name": player_id,
        "chips": chips,
        "bet": 0,
        "committed": 0,
        "status": status,
        "last_action": None,
        "acted": False,
    }


def _find(g: Any, player_id: str) -> int | None:
    for i, seat in enumerate(peek(g["seats"])):
        if seat["name"] == player_id:
            return i
    return None


def _index(g: Any, player_id: str) -> int:
    i = _find(g, player_id)
    if i is None:
        raise GameError(f"holdem: {player_id!r} has no seat in the game section")
    return i


def _around(n: int, start: int, keep: Callable[[int], bool]) -> list[int]:
    """Seat indices after ``start`` going round the table once (``start`` last)."""
    return [j for j in ((start + k) % n for k in range(1, n + 1)) if keep(j)]


def _log(g: Any, text: str) -> None:
    log = g["log"]
    log.append(text)
    for _ in range(len(log) - LOG_SIZE):
        del log[0]


def _differs(old: Value, new: Value) -> bool:
    """Whether writing scalar ``new`` over ``old`` is a change. (A draft records only real
    changes by itself; checking first on a plain node saves making its proxy.)"""
    return old != new or type(old) is not type(new)
