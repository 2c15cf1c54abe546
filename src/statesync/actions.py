"""Player actions and their outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from statesync.value import Value


@dataclass(frozen=True, slots=True)
class PlayerAction:
    """One action a player asks the table to take.

    ``(client_id, seq)`` identifies it for dedupe: a retried action takes effect once.
    ``base_version`` is the version the client saw when it acted. On a server, ``player_id``
    and ``client_id`` come from the authenticated session, never from the message body.

    >>> a = PlayerAction("alice", "alice-phone", 1, 0, "place", {"cell": 4})
    >>> a.player_id, a.seq, a.payload
    ('alice', 1, {'cell': 4})
    """

    player_id: str
    client_id: str
    seq: int
    base_version: int
    type: str
    payload: Value = None


@dataclass(frozen=True, slots=True)
class Accepted:
    """The action took effect and created ``version``."""

    action: PlayerAction
    version: int
    duplicate: bool = False
    """True when this is the remembered outcome of an earlier delivery of the same action."""

    @property
    def ok(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class Rejected:
    """The action was refused; ``code`` is a stable reason code (:mod:`statesync.reasons`)."""

    action: PlayerAction
    code: str
    message: str = ""
    version: int = 0
    """The table's version when the action was refused."""
    duplicate: bool = False
    detail: dict[str, object] = field(default_factory=dict, compare=False)

    @property
    def ok(self) -> bool:
        return False


Outcome = Accepted | Rejected
