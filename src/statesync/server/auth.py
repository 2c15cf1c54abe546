"""Signed, expiring tokens: the only source of a connection's identity.

A token names a table, a player (or ``None`` for a spectator), an expiry time and optionally a
client id. The server trusts what a verified token says and nothing a client writes in a
message body. Anyone holding the secret can mint tokens, so the ``statesync token`` command and
the server must share it (see :func:`load_secret`)::

    >>> signer = TokenSigner(b"a secret of at least 16 bytes")
    >>> token = signer.issue("t1", "alice", ttl=60, now=1000.0)
    >>> signer.verify(token, now=1030.0, table="t1")
    Claims(table='t1', player='alice', expires=1060.0, client=None)
    >>> signer.verify(token, now=1060.0)
    Traceback (most recent call last):
    ...
    statesync.errors.AuthError: token expired at 1060.0

Format: ``base64url(payload) + "." + base64url(HMAC-SHA256(secret, payload))`` without
padding, where ``payload`` is the msgpack map ``{"t": table, "p": player, "e": expires,
"c": client}``. The signature is checked (in constant time) before the payload is decoded;
the payload must then be exactly what :meth:`TokenSigner.issue` would have written for those
claims (no unknown keys, no other encodings of the same values).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import msgspec

from statesync.errors import AuthError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "DEFAULT_SECRET_FILE",
    "MAX_TOKEN_CHARS",
    "MIN_SECRET_BYTES",
    "SECRET_ENV",
    "SECRET_FILE_ENV",
    "Claims",
    "TokenSigner",
    "load_secret",
]

MIN_SECRET_BYTES = 16
MAX_TOKEN_CHARS = 4096
SECRET_ENV = "STATESYNC_SECRET"
SECRET_FILE_ENV = "STATESYNC_SECRET_FILE"
DEFAULT_SECRET_FILE = ".statesync-secret"

_TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_HEX = re.compile(rb"(?:[0-9a-fA-F]{2})+")
_SIGNATURE_BYTES = hashlib.sha256().digest_size

_Name = Annotated[str, msgspec.Meta(min_length=1)]


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token says: who may connect to which table, until when.

    ``player`` is ``None`` for a spectator. ``expires`` is in the seconds of the clock passed
    to :meth:`TokenSigner.issue` (the server uses wall-clock time, ``time.time()``).
    ``client`` optionally pins the token to one client id.
    """

    table: str
    player: str | None
    expires: float
    client: str | None = None

    @property
    def spectator(self) -> bool:
        """True when the token grants watching only."""
        return self.player is None


class _Payload(msgspec.Struct, forbid_unknown_fields=True):
    t: _Name
    p: _Name | None
    e: float
    c: _Name | None

    def __post_init__(self) -> None:
        if not math.isfinite(self.e):
            raise ValueError("expiry must be finite")


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Payload)


class TokenSigner:
    """Issues and verifies tokens with one secret (HMAC-SHA256).

    Raises :class:`ValueError` for a secret that is not ``bytes`` or shorter than
    :data:`MIN_SECRET_BYTES`.
    """

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"a token secret must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret

    def __repr__(self) -> str:
        return "TokenSigner(<secret>)"  # never show the secret, even in a traceback

    def issue(
        self, table: str, player: str | None, *, ttl: float, now: float, client: str | None = None
    ) -> str:
        """A token for ``player`` (``None``: a spectator) at ``table``, valid for ``ttl``
        seconds after ``now``.

        Raises :class:`ValueError` for an empty table, player or client, or a ``ttl`` or
        ``now`` that is not finite (``ttl`` must also be positive).
        """
        for name, value in (("table", table), ("player", player), ("client", client)):
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{name} must be a non-empty string, got {value!r}")
        if not table:
            raise ValueError("table must be a non-empty string")
        if not (math.isfinite(ttl) and ttl > 0):
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
        if not math.isfinite(now):
            raise ValueError(f"now must be a finite number of seconds, got {now!r}")
        payload = _encoder.encode(_Payload(table, player, float(now + ttl), client))
        return f"{_b64encode(payload)}.{_b64encode(self._sign(payload))}"

    def verify(self, token: str, *, now: float, table: str | None = None) -> Claims:
        """The claims of ``token`` if it is well formed, signed with this secret, not expired
        at ``now`` and (when ``table`` is given) for that table.

        Anything a peer sends raises only :class:`~statesync.errors.AuthError`, whose ``code``
        is ``auth/malformed``, ``auth/bad_signature``, ``auth/expired`` or
        ``auth/wrong_table``. A non-finite ``now`` is a local bug and raises ``ValueError``.
        """
        if not math.isfinite(now):
            raise ValueError(f"now must be a finite number of seconds, got {now!r}")
        payload, signature = _split(token)
        if not hmac.compare_digest(self._sign(payload), signature):
            raise AuthError("token signature does not match", code="auth/bad_signature")
        claims = _decode_claims(payload)
        if now >= claims.expires:
            raise AuthError(f"token expired at {claims.expires!r}", code="auth/expired")
        if table is not None and claims.table != table:
            raise AuthError(
                f"token is for table {claims.table!r}, not {table!r}", code="auth/wrong_table"
            )
        return claims

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()


def _split(token: object) -> tuple[bytes, bytes]:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not _TOKEN.fullmatch(token):
        raise AuthError("not a statesync token", code="auth/malformed")
    payload, signature = token.split(".")
    return _b64decode(payload), _b64decode(signature)


def _decode_claims(payload: bytes) -> Claims:
    try:
        decoded = _decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError, RecursionError) as e:
        # ValueError: msgspec raises UnicodeDecodeError for a str that is not UTF-8.
        raise AuthError(f"token payload is malformed: {e}", code="auth/malformed") from None
    # Only the encoding issue() writes is valid, so one set of claims has exactly one token.
    if _encoder.encode(decoded) != payload:
        raise AuthError("token payload is not in canonical form", code="auth/malformed")
    return Claims(decoded.t, decoded.p, decoded.e, decoded.c)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise AuthError("token is not valid base64url", code="auth/malformed") from None
    # The decoder ignores stray low bits of the last character; refuse such aliases.
    if _b64encode(data) != text:
        raise AuthError("token is not canonical base64url", code="auth/malformed")
    return data


def load_secret(
    env: Mapping[str, str], *, default_file: str | os.PathLike[str] = DEFAULT_SECRET_FILE
) -> bytes:
    """The token secret, from the first of:

    1. ``STATESYNC_SECRET``: hex digits (an even number of them) are decoded; any other text
       is used as its UTF-8 bytes.
    2. ``STATESYNC_SECRET_FILE``: a path to a file holding the secret in the same form (hex or
       raw bytes; surrounding whitespace is ignored).
    3. ``default_file`` (``./.statesync-secret``): read if it exists; otherwise 32 random bytes
       are written there as hex, readable only by the owner (mode 0600), and returned.

    Tokens printed by ``statesync token`` are accepted only by a server that loads the same
    secret: run both with the same ``STATESYNC_SECRET`` / ``STATESYNC_SECRET_FILE``, or from
    the same directory so they share ``./.statesync-secret``. Empty variables count as unset.

        >>> load_secret({"STATESYNC_SECRET": "00112233445566778899aabbccddeeff"}).hex()
        '00112233445566778899aabbccddeeff'

    Raises :class:`ValueError` for a secret shorter than :data:`MIN_SECRET_BYTES`, and
    :class:`OSError` when a secret file cannot be read or written.
    """
    if text := env.get(SECRET_ENV):
        return _parse_secret(text.encode(), f"${SECRET_ENV}")
    if path := env.get(SECRET_FILE_ENV):
        return _parse_secret(Path(path).read_bytes(), path)
    default = Path(default_file)
    try:
        return _parse_secret(default.read_bytes(), str(default))
    except FileNotFoundError:
        return _create_secret(default)


def _parse_secret(raw: bytes, source: str) -> bytes:
    text = raw.strip()
    secret = bytes.fromhex(text.decode("ascii")) if _HEX.fullmatch(text) else text
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(
            f"the token secret from {source} is {len(secret)} bytes; "
            f"at least {MIN_SECRET_BYTES} are needed"
        )
    return secret


def _create_secret(path: Path) -> bytes:
    secret = secrets.token_bytes(32)
    # Write a private temporary file, then link it into place: the secret file appears whole
    # or not at all, and a concurrent process that created it first wins.
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secret.hex().encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            return _parse_secret(path.read_bytes(), str(path))
    finally:
        os.unlink(temp)
    return secret
