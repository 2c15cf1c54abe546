"""Stable reason codes for rejected actions.

Codes are part of the protocol: they never change meaning and are never reused. Games add
their own under their own prefix (``"holdem/not_enough_chips"``); the engine's are below.
"""

from __future__ import annotations

from typing import Final

NOT_SEATED: Final = "action/not_seated"
"""The acting player has no seat at this table (or is a spectator)."""
NOT_YOUR_TURN: Final = "action/not_your_turn"
"""It is another player's turn."""
DISCONNECTED: Final = "action/disconnected"
"""The acting player is marked disconnected and the game refuses their actions."""
UNKNOWN_TYPE: Final = "action/unknown_type"
"""The game has no action of this type."""
INVALID_PAYLOAD: Final = "action/invalid_payload"
"""The payload is malformed for this action type (or not a valid state value)."""
ILLEGAL: Final = "action/illegal"
"""The rules forbid this action in the current state (games may use finer codes)."""
GAME_OVER: Final = "action/game_over"
"""The game has ended; no more actions are accepted."""
STALE_BASE: Final = "action/stale_base"
"""The action was made against an older version and the game's policy is strict."""
FUTURE_BASE: Final = "action/future_base"
"""The action claims a base version the table has not reached: a confused or forged client."""
SEQ_TOO_OLD: Final = "action/seq_too_old"
"""The sequence number is older than the dedupe window: it cannot be told from a replay."""
FORGED_IDENTITY: Final = "action/forged_identity"
"""The action names a player or client other than the authenticated session."""
RULES_FAILED: Final = "action/rules_failed"
"""The game's rules raised an unexpected error; the action was not applied."""
STORE_UNAVAILABLE: Final = "store/unavailable"
"""The store could not make the action durable; the table rolled back and it was not applied."""
TABLE_FULL: Final = "action/table_full"
"""The game refuses another player at this table."""
ALREADY_SEATED: Final = "action/already_seated"
"""The player already has a seat at this table."""
RESYNCING: Final = "action/resyncing"
"""The client is being resynchronized; the action must be retried after the snapshot."""

ALL: Final = frozenset(
    {
        NOT_SEATED,
        NOT_YOUR_TURN,
        DISCONNECTED,
        UNKNOWN_TYPE,
        INVALID_PAYLOAD,
        ILLEGAL,
        GAME_OVER,
        STALE_BASE,
        FUTURE_BASE,
        SEQ_TOO_OLD,
        FORGED_IDENTITY,
        RULES_FAILED,
        STORE_UNAVAILABLE,
        TABLE_FULL,
        ALREADY_SEATED,
        RESYNCING,
    }
)
"""Every engine reason code."""
