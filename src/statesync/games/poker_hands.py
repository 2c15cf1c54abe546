"""Poker arithmetic: the best five-card hand out of five to seven cards, and pot splitting.

Cards are two-character strings, rank then suit: ``"Ah"``, ``"Td"``, ``"2c"``. Ranks are
``23456789TJQKA``, suits ``cdhs``.

:func:`evaluate` returns a :data:`HandValue`, a tuple of ints that compares the way hands do:
the category first (:data:`CATEGORIES`), then the ranks that break ties inside it, most
significant first (the pair before its kickers, the higher pair of two pairs before the lower).
Equal tuples are split pots. It looks at the seven cards at once instead of trying all 21
five-card subsets.

>>> evaluate(["Ah", "Kh", "Qh", "Jh", "Th", "2c", "3d"])
(8, 14)
>>> evaluate(["Ah", "2d", "3c", "4s", "5h"]) < evaluate(["2d", "3c", "4s", "5h", "6h"])
True
>>> category_name(evaluate(["Ah", "Ad", "Kc", "Ks", "2h", "7c", "9d"]))
'two_pair'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

RANKS: Final = "23456789TJQKA"
"""Rank characters, lowest first; a rank's value is its index plus 2 (the ace is 14)."""
SUITS: Final = "cdhs"
"""Suit characters: clubs, diamonds, hearts, spades."""
DECK: Final = tuple(rank + suit for suit in SUITS for rank in RANKS)
"""The 52 cards in a fixed order (shuffle a copy with :meth:`statesync.rng.Rng.shuffle`)."""
CATEGORIES: Final = (
    "high_card",
    "pair",
    "two_pair",
    "three_of_a_kind",
    "straight",
    "flush",
    "full_house",
    "four_of_a_kind",
    "straight_flush",
)
"""Hand categories, weakest first; ``CATEGORIES[value[0]]`` names a :data:`HandValue`."""

HandValue: TypeAlias = tuple[int, ...]
"""``(category, *tie_breaking_ranks)``: compare two of them with ``<`` / ``==``."""

_ACE: Final = 14


def card_rank(card: str) -> int:
    """The rank value of ``card``, 2..14; raises :class:`ValueError` for a malformed card."""
    if len(card) != 2 or card[0] not in RANKS or card[1] not in SUITS:
        raise ValueError(f"not a card: {card!r}")
    return RANKS.index(card[0]) + 2


def evaluate(cards: Iterable[str]) -> HandValue:
    """The value of the best five-card hand among ``cards`` (5 to 7 distinct cards).

    Raises :class:`ValueError` for malformed or repeated cards, or a wrong number of them.
    """
    hand = list(cards)
    if not 5 <= len(hand) <= 7 or len(set(hand)) != len(hand):
        raise ValueError(f"need 5 to 7 distinct cards, got {hand!r}")
    ranks = sorted((card_rank(c) for c in hand), reverse=True)
    by_suit: dict[str, list[int]] = {suit: [] for suit in SUITS}
    for card in hand:
        by_suit[card[1]].append(card_rank(card))
    flush = next((sorted(r, reverse=True) for r in by_suit.values() if len(r) >= 5), None)
    if flush is not None and (high := straight_high(flush)):
        return (8, high)
    counts = {rank: ranks.count(rank) for rank in ranks}
    distinct = sorted(counts, reverse=True)
    quads = [r for r in distinct if counts[r] == 4]
    trips = [r for r in distinct if counts[r] == 3]
    pairs = [r for r in distinct if counts[r] == 2]
    if quads:
        return (7, quads[0], max(r for r in distinct if r != quads[0]))
    if trips and (len(trips) > 1 or pairs):
        return (6, trips[0], max(trips[1:] + pairs))
    if flush is not None:
        return (5, *flush[:5])
    if high := straight_high(distinct):
        return (4, high)
    if trips:
        return (3, trips[0], *_kickers(distinct, trips[:1], 2))
    if len(pairs) > 1:
        return (2, pairs[0], pairs[1], *_kickers(distinct, pairs[:2], 1))
    if pairs:
        return (1, pairs[0], *_kickers(distinct, pairs[:1], 3))
    return (0, *distinct[:5])


def straight_high(ranks: Iterable[int]) -> int:
    """The top rank of the highest straight in ``ranks``, or 0; the wheel (A-2-3-4-5) is 5."""
    present = set(ranks)
    if _ACE in present:
        present.add(1)
    for high in range(_ACE, 4, -1):
        if all(high - k in present for k in range(5)):
            return high
    return 0


def category_name(value: HandValue) -> str:
    """The category of a :data:`HandValue` as a word from :data:`CATEGORIES`."""
    return CATEGORIES[value[0]]


def side_pots(committed: Sequence[int], live: Sequence[bool]) -> list[tuple[int, list[int]]]:
    """Split the chips of a hand into pots: ``[(amount, eligible seat indices)]``, main pot
    first. ``committed[i]`` is what seat ``i`` put in this hand; ``live[i]`` whether it can
    still win (not folded). Chips above every live player's level go to the last pot.

    >>> side_pots([100, 300, 300, 50], [True, True, True, False])
    [(350, [0, 1, 2]), (400, [1, 2])]
    """
    remaining = list(committed)
    pots: list[tuple[int, list[int]]] = []
    while contenders := [i for i, c in enumerate(remaining) if c > 0 and live[i]]:
        level = min(remaining[i] for i in contenders)
        taken = [min(c, level) for c in remaining]
        remaining = [c - t for c, t in zip(remaining, taken, strict=True)]
        pots.append((sum(taken), contenders))
    if dead := sum(remaining):
        if pots:
            pots[-1] = (pots[-1][0] + dead, pots[-1][1])
        else:
            pots.append((dead, [i for i, is_live in enumerate(live) if is_live]))
    return pots


def award(
    pots: Sequence[tuple[int, Sequence[int]]], values: Mapping[int, HandValue], dealer: int, n: int
) -> list[int]:
    """Chips won by each of ``n`` seats: every pot of :func:`side_pots` goes to the best
    ``values[seat]`` among its eligible seats. Tied winners split it evenly and all the odd
    chips go to the tied winner seated first to the left of seat ``dealer``.

    >>> award([(25, [0, 2])], {0: (1, 5), 2: (1, 5)}, dealer=0, n=3)
    [12, 0, 13]
    """
    payouts = [0] * n
    for amount, eligible in pots:
        best = max(values[i] for i in eligible)
        winners = sorted(
            (i for i in eligible if values[i] == best), key=lambda i: (i - dealer - 1) % n
        )
        share, odd = divmod(amount, len(winners))
        for i in winners:
            payouts[i] += share
        payouts[winners[0]] += odd
    return payouts


def _kickers(distinct: list[int], used: list[int], n: int) -> list[int]:
    return [r for r in distinct if r not in used][:n]
