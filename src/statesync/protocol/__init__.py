"""The statesync wire protocol, sans I/O: typed messages and the session state machines of
both ends. Bytes in, bytes and events out, the clock passed in; no sockets, no asyncio.
``docs/protocol.md`` specifies it for implementers in other languages."""
