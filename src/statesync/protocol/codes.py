"""Stable error codes of the protocol (sent in :class:`~statesync.protocol.messages.Error`
and, for refused actions, in :class:`~statesync.protocol.messages.Result`).

Codes never change meaning and are never reused. Action outcomes use the reason codes of
:mod:`statesync.reasons` (``action/...``, ``store/...``) and the game's own.
"""

from __future__ import annotations

from typing import Final

MALFORMED: Final = "protocol/malformed"
"""The bytes are not a valid message (bad MessagePack, wrong fields or types)."""
UNKNOWN_TYPE: Final = "protocol/unknown_type"
"""The message tag is not one this protocol version defines."""
NOT_BINARY: Final = "protocol/not_binary"
"""A text frame: every message is a binary WebSocket message."""
TOO_LARGE: Final = "protocol/too_large"
"""The message is larger than the server's limit."""
HANDSHAKE_REQUIRED: Final = "protocol/handshake_required"
"""The first message of a connection must be Hello."""
UNEXPECTED: Final = "protocol/unexpected"
"""A message that is not allowed in the session's state (a second Hello)."""
UNSUPPORTED_VERSION: Final = "protocol/unsupported_version"
"""No protocol version in common."""
BAD_CLIENT_ID: Final = "protocol/bad_client_id"
"""client_id is empty, too long, or starts with '$' (reserved)."""
HANDSHAKE_TIMEOUT: Final = "protocol/handshake_timeout"
IDLE_TIMEOUT: Final = "protocol/idle_timeout"
TOO_MANY_ERRORS: Final = "protocol/too_many_errors"
"""The connection sent too many bad messages and is closed."""
RATE_LIMITED: Final = "protocol/rate_limited"
"""The action was refused because the connection exceeds its action rate (retry later)."""
SPECTATOR: Final = "protocol/spectator"
"""A spectator's token cannot act."""
BYE: Final = "protocol/bye"
"""The client closed the session."""
SHUTDOWN: Final = "server/shutdown"
"""The server is shutting down; reconnect later."""
NO_TABLE: Final = "server/no_table"
"""The token's table does not exist on this server."""
NOT_SEATED: Final = "server/not_seated"
"""The token's player has no seat and the table refused to seat them."""
UNAVAILABLE: Final = "server/unavailable"
"""The table cannot be loaded now (its store failed, or it is damaged); the connection is
closed. Reconnect later."""
INTERNAL: Final = "server/internal"
"""The server failed while serving this connection (a bug, or the store is unreachable); the
connection is closed. Reconnect later: acknowledged actions are durable."""
WRONG_CLIENT: Final = "auth/wrong_client"
"""The token is pinned to another client id than the one the Hello names."""
