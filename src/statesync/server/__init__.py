"""The asyncio server: one single-writer actor per table, and the transport in front of it.

``Server`` (:mod:`statesync.server.ws`) serves tables to WebSocket clients; ``TableActor``
(:mod:`statesync.server.table`) is the single writer of one table; tokens are signed and
checked by :mod:`statesync.server.auth`; metrics are rendered by :mod:`statesync.server.metrics`.
"""
