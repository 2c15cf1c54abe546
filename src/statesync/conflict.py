"""Deterministic conflict resolution: the order of a batch, and exactly-once dedupe.

Actions that reach a table in one batch are ordered by a key that depends only on the actions
and the table's version, never on arrival jitter or client clocks: older ``base_version``
first (the action was made earlier in the table's own time), then a seeded hash of
``(version, client_id, seq)`` so no client always wins ties. Each client's own actions keep
their ``seq`` order inside the batch, whatever order they arrived in.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import xxhash

from statesync.actions import Accepted, PlayerAction

if TYPE_CHECKING:
    from collections.abc import Iterable

    from statesync.actions import Outcome


def order_batch(actions: Iterable[PlayerAction], version: int) -> list[PlayerAction]:
    """The deterministic order in which a batch arriving at ``version`` is applied.

    >>> from statesync.actions import PlayerAction as A
    >>> batch = [A("b", "cb", 2, 5, "x"), A("a", "ca", 1, 4, "x"), A("b", "cb", 1, 5, "x")]
    >>> [(a.client_id, a.seq) for a in order_batch(batch, 7)][0]
    ('ca', 1)
    """
    acts = list(actions)

    def key(a: PlayerAction) -> tuple[int, int, str, int]:
        tie = xxhash.xxh3_64_intdigest(f"{version}:{a.client_id}:{a.seq}".encode())
        return (a.base_version, tie, a.client_id, a.seq)

    slots = sorted(acts, key=key)
    # Give each client's slots to its actions in seq order.
    per_client: dict[str, list[PlayerAction]] = {}
    for a in acts:
        per_client.setdefault(a.client_id, []).append(a)
    for lst in per_client.values():
        lst.sort(key=lambda a: a.seq)
    taken: dict[str, int] = {}
    out: list[PlayerAction] = []
    for a in slots:
        i = taken.get(a.client_id, 0)
        out.append(per_client[a.client_id][i])
        taken[a.client_id] = i + 1
    return out


class Dedupe:
    """Remembers the outcome of each client's recent ``seq`` numbers.

    A seq seen before returns its remembered outcome; a seq at or below a client's *floor* (the
    newest forgotten one) cannot be told from a replay and is refused by the caller.

    >>> d = Dedupe(window=2)
    >>> d.lookup("c", 1) is None
    True
    """

    def __init__(self, window: int = 1024) -> None:
        if window < 1:
            raise ValueError("window must be positive")
        self.window = window
        self._seen: dict[str, OrderedDict[int, Outcome]] = {}
        self._floor: dict[str, int] = {}

    def lookup(self, client_id: str, seq: int) -> Outcome | None:
        """The remembered outcome of ``(client_id, seq)``, or ``None`` if it is new."""
        seen = self._seen.get(client_id)
        if seen is None:
            return None
        return seen.get(seq)

    def too_old(self, client_id: str, seq: int) -> bool:
        """True when ``seq`` is at or below the client's forgotten range."""
        return seq <= self._floor.get(client_id, -1) and self.lookup(client_id, seq) is None

    def record(self, client_id: str, seq: int, outcome: Outcome) -> None:
        """Remember the outcome of ``(client_id, seq)``."""
        seen = self._seen.get(client_id)
        if seen is None:  # not setdefault: that would build a dict per call
            seen = self._seen[client_id] = OrderedDict()
        seen[seq] = outcome
        if len(seen) > self.window:
            oldest = next(iter(seen))
            del seen[oldest]
            self._floor[client_id] = max(self._floor.get(client_id, -1), oldest)

    def forget(self, client_id: str, seq: int) -> None:
        """Undo :meth:`record` (used when a batch is rolled back after a store failure)."""
        seen = self._seen.get(client_id)
        if seen is not None:
            seen.pop(seq, None)

    def clients(self) -> int:
        return len(self._seen)

    def last_seq(self, client_id: str) -> int:
        """The highest ``seq`` of ``client_id`` remembered or forgotten (0 if none): a
        reconnecting client continues from one more.

        >>> d = Dedupe()
        >>> d.last_seq("c")
        0
        """
        seen = self._seen.get(client_id)
        top = max(seen) if seen else 0
        return max(top, self._floor.get(client_id, 0))

    def export(self) -> dict[str, Any]:
        """The durable part of this memory: per client, the forgotten floor and the
        ``[seq, version]`` of each remembered *accepted* action (refusals are not durable:
        an action refused before a restart is judged again if it is retried after it)."""
        out: dict[str, Any] = {}
        for client in sorted(self._seen.keys() | self._floor.keys()):
            accepted = [[seq, o.version] for seq, o in self._seen.get(client, {}).items() if o.ok]
            out[client] = {"floor": self._floor.get(client, -1), "accepted": accepted}
        return out

    @classmethod
    def restore(cls, data: dict[str, Any], window: int, owners: dict[str, str]) -> Dedupe:
        """A memory holding what :meth:`export` wrote (``owners`` names each client's player)."""
        d = cls(window)
        for client, entry in data.items():
            if entry["floor"] >= 0:
                d._floor[client] = entry["floor"]
            player = owners.get(client, "")
            for seq, version in entry["accepted"]:
                d.record(client, seq, Accepted(PlayerAction(player, client, seq, 0, ""), version))
        return d
