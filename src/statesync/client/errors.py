"""The errors of the client SDK; all derive from :class:`~statesync.errors.StateSyncError`::

    StateSyncError
    ├── ClientClosedError        the client is closed: by close(), or it cannot go on
    │   └── ServerRefusedError   the server refused the session for good (auth/..., version)
    └── ConnectTimeoutError      connect() saw no snapshot within open_timeout (a TimeoutError)

Connection losses are not errors: the client reconnects by itself and ``act()`` keeps waiting.
"""

from __future__ import annotations

from statesync.errors import StateSyncError


class ClientClosedError(StateSyncError):
    """The client is closed and cannot send or receive any more: :meth:`Table.close` was
    called, or the background connection stopped for good (see :attr:`__cause__`).

    >>> raise ClientClosedError("closed by the user")
    Traceback (most recent call last):
    ...
    statesync.client.errors.ClientClosedError: closed by the user
    """

    code = "client/closed"


class ServerRefusedError(ClientClosedError):
    """The server refused the session with a fatal error that retrying cannot fix (a bad,
    expired or foreign token: ``auth/...``; no common protocol version). ``code`` is the
    server's code; ``server_message`` its explanation.

    >>> e = ServerRefusedError("auth/expired", "token expired")
    >>> e.code, str(e)
    ('auth/expired', 'server refused the session: auth/expired (token expired)')
    """

    code = "client/refused"

    def __init__(self, code: str, message: str = "") -> None:
        text = f"server refused the session: {code}" + (f" ({message})" if message else "")
        super().__init__(text, code=code)
        self.server_message = message


class ConnectTimeoutError(StateSyncError, TimeoutError):
    """``connect()`` did not receive the table's first snapshot within ``open_timeout``
    (the server is unreachable, or does not answer). Also a :class:`TimeoutError`.

    >>> isinstance(ConnectTimeoutError("no snapshot"), TimeoutError)
    True
    """

    code = "client/connect_timeout"
