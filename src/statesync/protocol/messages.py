"""The messages of protocol versions 1 and 2 and their byte encoding.

Every WebSocket *binary* message carries exactly one protocol message: a MessagePack array
whose first item is the message's integer tag and whose other items are its fields, in the
order declared below (``[tag, field1, field2, ...]``). Unknown tags, wrong field counts or
types, and trailing bytes are rejected with :class:`ProtocolError`. ``docs/protocol.md``
specifies each message for implementers in other languages.

Client to server: :class:`Hello` (first message, once), :class:`Act`, :class:`Resync`,
:class:`Ping`, :class:`Bye`. Server to client: :class:`Welcome`, :class:`Snapshot`,
:class:`Update`, :class:`SharedUpdate` (version 2 only), :class:`Result`, :class:`Error`,
:class:`Pong`.

>>> data = encode(Act(seq=1, base_version=0, type="place", payload={"cell": 4}))
>>> data.hex()
'95020100a5706c61636581a463656c6c04'
>>> decode_client(data)
Act(seq=1, base_version=0, type='place', payload={'cell': 4})
"""

from __future__ import annotations

from typing import Any, Final, TypeAlias

import msgspec

from statesync.errors import StateSyncError

PROTOCOL_VERSION: Final = 2
"""The newest version this module speaks; :class:`Hello` lists the versions a client speaks,
and the server chooses the highest one both speak. Version 2 adds :class:`SharedUpdate`."""
SUPPORTED_VERSIONS: Final = (1, 2)


class ProtocolError(StateSyncError):
    """A message is malformed, unknown, oversized, or not allowed in the session's state.
    ``code`` is one of the ``protocol/...`` codes in :mod:`statesync.protocol.codes`."""

    code = "protocol/malformed"


class _Msg(
    msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True, tag_field="tag"
):
    pass


# ---------------------------------------------------------------- client -> server


class Hello(_Msg, tag=1, frozen=True):
    """Opens a session. ``token`` carries the identity (table, player or spectator);
    ``client_id`` names this client instance for dedupe of its action ``seq`` numbers.
    On a reconnect, ``version``/``epoch``/``hash`` say what the client holds (``version``
    -1: nothing), and the server answers with a delta from there when it can."""

    versions: list[int]
    token: str
    client_id: str
    version: int = -1
    epoch: int = 0
    hash: bytes = b""


class Act(_Msg, tag=2, frozen=True):
    """An action. ``seq`` increases by one per action of this ``client_id`` (from 1) and is
    kept across reconnects: a re-sent action with a seq the table has seen is answered
    with its original outcome and does not take effect twice."""

    seq: int
    base_version: int
    type: str
    payload: Any = None


class Resync(_Msg, tag=3, frozen=True):
    """The client's state failed its hash check (or it lost track): send a snapshot."""

    version: int


class Ping(_Msg, tag=4, frozen=True):
    """Heartbeat; answered with :class:`Pong` carrying the same ``nonce``."""

    nonce: int


class Bye(_Msg, tag=5, frozen=True):
    """The client is leaving; the server closes the connection. ``leave`` also gives up the
    player's seat at the table."""

    leave: bool = False


# ---------------------------------------------------------------- server -> client


class Welcome(_Msg, tag=10, frozen=True):
    """The answer to :class:`Hello`: the version chosen and who the token says you are.
    ``player`` is ``None`` for a spectator. ``next_seq`` is one more than the highest
    ``seq`` of this client the table remembers (re-send pending actions from there)."""

    version: int
    table: str
    player: str | None
    client_id: str
    next_seq: int


class Snapshot(_Msg, tag=11, frozen=True):
    """The whole of your view at ``version``: ``state`` is the view (``game``, ``seats``,
    ``players`` with only your entry). ``hash`` is :func:`~statesync.state_hash` of
    ``state`` as 16 bytes. Resets the delta decoder of the connection."""

    version: int
    epoch: int
    hash: bytes
    state: dict[str, Any]


class Update(_Msg, tag=12, frozen=True):
    """Your view went from ``base_version`` to ``version``: apply ``delta`` (bytes of the
    connection's :class:`~statesync.wire.WireDecoder`), then check ``hash``."""

    base_version: int
    version: int
    epoch: int
    hash: bytes
    delta: bytes


class SharedUpdate(_Msg, tag=16, frozen=True):
    """Protocol version 2: :class:`Update` with the public operations in ``shared``, the
    next chunk of the table's shared stream (a second decoder per connection, reset first
    when ``reset``), and the client's private operations, if any, in ``delta`` (the
    connection's own decoder). Apply the shared operations, then the private ones, then check
    ``hash``. The server leaves out trailing fields at their defaults, so the common case
    costs no more bytes than an :class:`Update`."""

    base_version: int
    version: int
    epoch: int
    hash: bytes
    shared: bytes
    delta: bytes | None = None
    reset: bool = False


class Result(_Msg, tag=13, frozen=True):
    """The outcome of the :class:`Act` with ``seq``: accepted at ``version`` (``code``
    empty), or rejected with a stable reason ``code`` while the table was at ``version``.
    ``duplicate``: this answers a re-sent action."""

    seq: int
    ok: bool
    version: int
    code: str = ""
    message: str = ""
    duplicate: bool = False


class Error(_Msg, tag=14, frozen=True):
    """A problem with the session or a message (not an action's outcome). After a
    ``fatal`` error the server closes the connection."""

    code: str
    message: str = ""
    fatal: bool = False


class Pong(_Msg, tag=15, frozen=True):
    """Answer to :class:`Ping`."""

    nonce: int


ClientMessage: TypeAlias = Hello | Act | Resync | Ping | Bye
ServerMessage: TypeAlias = Welcome | Snapshot | Update | SharedUpdate | Result | Error | Pong
Message: TypeAlias = ClientMessage | ServerMessage

_encoder = msgspec.msgpack.Encoder()
_client_decoder = msgspec.msgpack.Decoder(ClientMessage)
_server_decoder = msgspec.msgpack.Decoder(ServerMessage)


def encode(message: Message) -> bytes:
    """The bytes of one message (one WebSocket binary message)."""
    return _encoder.encode(message)


def encode_shared_update(
    base_version: int,
    version: int,
    epoch: int,
    hash: bytes,
    shared: bytes,
    delta: bytes | None,
    reset: bool,
) -> bytes:
    """The bytes of a :class:`SharedUpdate`, without the trailing fields at their defaults
    (``[16, base_version, version, epoch, hash, shared]`` when there is no private part and
    no reset)."""
    if reset:
        return _encoder.encode((16, base_version, version, epoch, hash, shared, delta, True))
    if delta is not None:
        return _encoder.encode((16, base_version, version, epoch, hash, shared, delta))
    return _encoder.encode((16, base_version, version, epoch, hash, shared))


def decode_client(data: bytes) -> ClientMessage:
    """Parse a message a client sent. Raises :class:`ProtocolError` for anything else."""
    return _decode(_client_decoder, data)  # type: ignore[no-any-return]


def decode_server(data: bytes) -> ServerMessage:
    """Parse a message a server sent. Raises :class:`ProtocolError` for anything else."""
    return _decode(_server_decoder, data)  # type: ignore[no-any-return]


def _decode(decoder: msgspec.msgpack.Decoder[Any], data: bytes) -> Any:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ProtocolError("expected a binary message", code="protocol/not_binary")
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as e:
        text = str(e)
        code = "protocol/unknown_type" if text.endswith("at `$[0]`") else "protocol/malformed"
        raise ProtocolError(f"invalid message: {text}", code=code) from None
    except (msgspec.DecodeError, RecursionError, ValueError, TypeError) as e:
        raise ProtocolError(f"undecodable message: {e}", code="protocol/malformed") from None
