"""The asyncio client SDK: a live, self-healing replica of one table over a WebSocket.

:func:`connect` opens a :class:`Table` and returns once the first snapshot arrived. The
table reconnects by itself (exponential :class:`Backoff` with jitter), resumes by delta,
re-sends unanswered actions (each takes effect once), checks every update's hash and heals a
desync with a snapshot. It stops only when closed, or when the server refuses the session for
good (:class:`ServerRefusedError`)::

    import statesync.client
    from statesync.games import TicTacToe

    async with statesync.client.connect(url, token, game=TicTacToe()) as table:
        outcome = await table.act("place", {"cell": 4})
        print(outcome.ok, outcome.version, table.state["game"]["board"])
        await table.wait_for(lambda state: state["game"]["status"] != "playing")
"""

from __future__ import annotations

from statesync.client.backoff import Backoff
from statesync.client.errors import ClientClosedError, ConnectTimeoutError, ServerRefusedError
from statesync.client.table import Table, connect, is_terminal
from statesync.client.updates import Updates
from statesync.protocol.client_session import ActionResult

__all__ = [
    "ActionResult",
    "Backoff",
    "ClientClosedError",
    "ConnectTimeoutError",
    "ServerRefusedError",
    "Table",
    "Updates",
    "connect",
    "is_terminal",
]
