"""The asyncio server: one single-writer actor per table, and the transport in front of it."""
