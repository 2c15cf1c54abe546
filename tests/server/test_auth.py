"""Signed, expiring tokens: round trips, forgery, expiry, and garbage from peers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import stat
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from statesync.errors import AuthError, StateSyncError
from statesync.server.auth import (
    DEFAULT_SECRET_FILE,
    MAX_TOKEN_CHARS,
    MIN_SECRET_BYTES,
    Claims,
    TokenSigner,
    load_secret,
)

SECRET = b"0123456789abcdef0123456789abcdef"
signer = TokenSigner(SECRET)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def forge(payload: bytes, secret: bytes = SECRET) -> str:
    """A token for arbitrary payload bytes, correctly signed: tests the payload checks."""
    return f"{b64(payload)}.{b64(hmac.new(secret, payload, hashlib.sha256).digest())}"


def code_of(token: Any, *, now: float = 0.0, table: str | None = None) -> str:
    with pytest.raises(AuthError) as info:
        signer.verify(token, now=now, table=table)
    return info.value.code


# -- round trips -------------------------------------------------------------------------


def test_round_trip_player() -> None:
    token = signer.issue("t1", "alice", ttl=60, now=1000.0)
    claims = signer.verify(token, now=1000.0, table="t1")
    assert claims == Claims(table="t1", player="alice", expires=1060.0, client=None)
    assert not claims.spectator


def test_round_trip_spectator_with_client() -> None:
    token = signer.issue("t1", None, ttl=1.5, now=0.0, client="phone-7")
    claims = signer.verify(token, now=1.0)
    assert claims == Claims("t1", None, 1.5, "phone-7")
    assert claims.spectator


def test_token_shape() -> None:
    token = signer.issue("t1", "alice", ttl=60, now=0.0)
    payload, signature = token.split(".")
    assert "=" not in token and len(unb64(signature)) == 32
    assert msgspec.msgpack.decode(unb64(payload)) == {"t": "t1", "p": "alice", "e": 60.0, "c": None}


def test_issue_is_deterministic() -> None:
    assert signer.issue("t", "p", ttl=5, now=1.0) == signer.issue("t", "p", ttl=5, now=1.0)
    assert signer.issue("t", "p", ttl=5, now=1.0) != signer.issue("t", "q", ttl=5, now=1.0)


def test_claims_is_frozen() -> None:
    claims = Claims("t", "p", 1.0)
    with pytest.raises(AttributeError):
        claims.player = "mallory"  # type: ignore[misc]


names = st.text(min_size=1, max_size=40)


@given(
    table=names,
    player=st.none() | names,
    client=st.none() | names,
    ttl=st.floats(min_value=1e-3, max_value=1e9),
    now=st.floats(min_value=-1e9, max_value=1e9),
)
def test_round_trip_any_claims(
    table: str, player: str | None, client: str | None, ttl: float, now: float
) -> None:
    token = signer.issue(table, player, ttl=ttl, now=now, client=client)
    claims = signer.verify(token, now=now, table=table)
    assert claims == Claims(table, player, now + ttl, client)


# -- expiry and table -----------------------------------------------------------------------


def test_expired_at_and_after_expiry() -> None:
    token = signer.issue("t1", "alice", ttl=10, now=100.0)
    assert signer.verify(token, now=109.999).player == "alice"
    assert code_of(token, now=110.0) == "auth/expired"
    assert code_of(token, now=1e12) == "auth/expired"


def test_token_from_the_future_is_accepted_until_expiry() -> None:
    # issued with a clock ahead of ours: fine, only the expiry matters
    token = signer.issue("t1", "alice", ttl=10, now=100.0)
    assert signer.verify(token, now=0.0).expires == 110.0


def test_wrong_table() -> None:
    token = signer.issue("t1", "alice", ttl=10, now=0.0)
    assert code_of(token, now=1.0, table="t2") == "auth/wrong_table"
    assert signer.verify(token, now=1.0, table="t1").table == "t1"
    assert signer.verify(token, now=1.0).table == "t1"  # no table given: any table


# -- forgery --------------------------------------------------------------------------------


def test_other_secret_is_a_bad_signature() -> None:
    token = TokenSigner(b"another secret, sixteen+ bytes").issue("t1", "alice", ttl=10, now=0.0)
    assert code_of(token) == "auth/bad_signature"


def test_tampered_payload_is_a_bad_signature() -> None:
    token = signer.issue("t1", "alice", ttl=10, now=0.0)
    _, signature = token.split(".")
    for claims in (
        {"t": "t1", "p": "bob", "e": 10.0, "c": None},  # someone else
        {"t": "t1", "p": "alice", "e": 1e12, "c": None},  # longer life
        {"t": "t2", "p": "alice", "e": 10.0, "c": None},  # another table
    ):
        forged = b64(msgspec.msgpack.encode(claims)) + "." + signature
        assert code_of(forged, now=1.0) == "auth/bad_signature"


def test_tampered_signature_is_a_bad_signature() -> None:
    token = signer.issue("t1", "alice", ttl=10, now=0.0)
    payload, signature = token.split(".")
    raw = bytearray(unb64(signature))
    for i in (0, 15, 31):
        bad = bytearray(raw)
        bad[i] ^= 1
        assert code_of(f"{payload}.{b64(bytes(bad))}") == "auth/bad_signature"
    assert code_of(f"{payload}.{b64(bytes(raw[:16]))}") == "auth/bad_signature"  # truncated
    assert code_of(f"{payload}.{b64(bytes(raw) + b'x')}") == "auth/bad_signature"  # extended


def test_signature_is_checked_before_expiry_and_table() -> None:
    token = TokenSigner(b"another secret, sixteen+ bytes").issue("t9", "x", ttl=1, now=0.0)
    assert code_of(token, now=100.0, table="t1") == "auth/bad_signature"


def test_swapping_signatures_between_tokens_fails() -> None:
    a = signer.issue("t1", "alice", ttl=10, now=0.0)
    b = signer.issue("t1", "bob", ttl=10, now=0.0)
    assert code_of(a.split(".")[0] + "." + b.split(".")[1]) == "auth/bad_signature"


# -- malformed ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "abc",
        "abc.",
        ".abc",
        "a.b.c",
        "abc.def.",
        "ab=.cd",  # padding is not part of the format
        "ab+c.def",  # standard base64 alphabet, not url-safe
        "ab c.def",
        " abc.def",
        "abc.def\n",
        "abcd\u00e9.efgh",
        "a.bcd",  # a single trailing character cannot be base64
        "A" * (MAX_TOKEN_CHARS + 1),
        None,
        b"abc.def",
        42,
    ],
)
def test_garbage_is_malformed(token: object) -> None:
    assert code_of(token) == "auth/malformed"


def test_non_canonical_base64_is_malformed() -> None:
    token = signer.issue("t1", "alice", ttl=10, now=0.0)
    payload, signature = token.split(".")
    assert len(signature) % 4 == 3  # 32 bytes: the last character carries 2 unused bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    alias = signature[:-1] + alphabet[last ^ 1]  # same bytes, different text
    assert unb64(alias) == unb64(signature)
    assert code_of(f"{payload}.{alias}") == "auth/malformed"


@pytest.mark.parametrize(
    "claims",
    [
        {"t": "t1", "p": "alice", "e": 10.0, "c": None, "admin": True},  # extra key
        {"t": "t1", "p": "alice", "e": 10.0},  # missing key
        {"p": "alice", "e": 10.0, "c": None},
        {"t": "", "p": "alice", "e": 10.0, "c": None},  # empty table
        {"t": "t1", "p": "", "e": 10.0, "c": None},  # empty player
        {"t": "t1", "p": "alice", "e": 10.0, "c": ""},
        {"t": 1, "p": "alice", "e": 10.0, "c": None},  # wrong types
        {"t": "t1", "p": 7, "e": 10.0, "c": None},
        {"t": "t1", "p": "alice", "e": "10", "c": None},
        {"t": "t1", "p": "alice", "e": True, "c": None},
        {"t": "t1", "p": "alice", "e": math.nan, "c": None},
        {"t": "t1", "p": "alice", "e": math.inf, "c": None},
        {"t": "t1", "p": "alice", "e": 10, "c": None},  # int, not the float issue() writes
        {"c": None, "e": 10.0, "p": "alice", "t": "t1"},  # other key order
        ["t1", "alice", 10.0, None],
        "t1",
        None,
    ],
)
def test_signed_but_malformed_payload_is_malformed(claims: object) -> None:
    assert code_of(forge(msgspec.msgpack.encode(claims))) == "auth/malformed"


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xc1",  # never used in msgpack
        b"\x84",  # truncated map
        msgspec.msgpack.encode({"t": "t1", "p": "a", "e": 10.0, "c": None}) + b"\x00",  # trailing
        b"\x84\xa1t\xa2t1\xa1p\xa1a\xa1e\xca\x41\x20\x00\x00\xa1c\xc0",  # float32 expiry
    ],
)
def test_signed_but_undecodable_payload_is_malformed(payload: bytes) -> None:
    assert code_of(forge(payload)) == "auth/malformed"


def test_auth_error_is_a_statesync_error() -> None:
    error = AuthError("nope", code="auth/expired")
    assert isinstance(error, StateSyncError) and error.code == "auth/expired"
    assert AuthError("x").code == "auth/malformed"


CODES = {"auth/malformed", "auth/bad_signature", "auth/expired", "auth/wrong_table"}


def outcome(token: str, *, now: float = 0.0, table: str | None = None) -> Claims | str:
    """The claims, or the code of the AuthError; any other exception propagates."""
    try:
        return signer.verify(token, now=now, table=table)
    except AuthError as e:
        return e.code


@given(st.text(max_size=200))
def test_arbitrary_text_raises_only_auth_errors(text: str) -> None:
    assert outcome(text, table="t1") in CODES


token_chars = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=")


@given(token_chars)
def test_token_like_text_raises_only_auth_errors(text: str) -> None:
    with pytest.raises(AuthError) as info:
        signer.verify(text, now=0.0)
    assert info.value.code in CODES


@given(st.binary(max_size=300), st.binary(max_size=64))
def test_arbitrary_parts_raise_only_auth_errors(payload: bytes, signature: bytes) -> None:
    assert outcome(f"{b64(payload)}.{b64(signature)}") in CODES


@given(st.binary(max_size=300))
@example(b"\x81\xab\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80")  # a str that is not UTF-8
def test_arbitrary_signed_payloads_raise_only_auth_errors(payload: bytes) -> None:
    claims = outcome(forge(payload))
    if isinstance(claims, str):
        assert claims in CODES
    else:  # only what issue() itself would write gets through
        assert forge(payload) == signer.issue(
            claims.table, claims.player, ttl=claims.expires, now=0.0, client=claims.client
        )


@given(st.data())
def test_edited_tokens_never_verify_as_something_else(data: st.DataObject) -> None:
    token = signer.issue("t1", "alice", ttl=100, now=0.0, client="c")
    i = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.text(max_size=3))
    edited = token[:i] + replacement + token[i + 1 :]
    claims = outcome(edited)
    if isinstance(claims, str):
        assert claims in CODES
    else:
        assert edited == token and claims.player == "alice"


# -- signer and issue checks ---------------------------------------------------------------


@pytest.mark.parametrize("secret", [b"", b"x" * (MIN_SECRET_BYTES - 1), "a" * 32, None])
def test_weak_or_wrong_secrets_are_refused(secret: Any) -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        TokenSigner(secret)


def test_secret_of_minimum_length_is_accepted() -> None:
    TokenSigner(b"x" * MIN_SECRET_BYTES)


def test_repr_hides_the_secret() -> None:
    assert "0123" not in repr(signer) and "secret" in repr(signer)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("", "p"), {"ttl": 1, "now": 0.0}, "table"),
        (("t", ""), {"ttl": 1, "now": 0.0}, "player"),
        (("t", "p"), {"ttl": 1, "now": 0.0, "client": ""}, "client"),
        (("t", "p"), {"ttl": 0, "now": 0.0}, "ttl"),
        (("t", "p"), {"ttl": -1, "now": 0.0}, "ttl"),
        (("t", "p"), {"ttl": math.nan, "now": 0.0}, "ttl"),
        (("t", "p"), {"ttl": math.inf, "now": 0.0}, "ttl"),
        (("t", "p"), {"ttl": 1, "now": math.nan}, "now"),
    ],
)
def test_issue_refuses_bad_arguments(
    args: tuple[Any, ...], kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        signer.issue(*args, **kwargs)


def test_verify_refuses_a_non_finite_clock() -> None:
    token = signer.issue("t", "p", ttl=1, now=0.0)
    with pytest.raises(ValueError, match="now"):
        signer.verify(token, now=math.nan)


# -- load_secret ----------------------------------------------------------------------------


def test_secret_from_env_hex() -> None:
    assert load_secret({"STATESYNC_SECRET": "00ff" * 8}) == bytes.fromhex("00ff" * 8)
    assert load_secret({"STATESYNC_SECRET": "ABCDEF" * 6}) == bytes.fromhex("ABCDEF" * 6)


def test_secret_from_env_raw_text() -> None:
    assert load_secret({"STATESYNC_SECRET": "correct horse battery staple"}) == (
        b"correct horse battery staple"
    )
    assert load_secret({"STATESYNC_SECRET": "abc" * 11}) == b"abc" * 11  # odd length: raw


def test_secret_from_env_wins_over_file(tmp_path: Path) -> None:
    (tmp_path / "s").write_text("11" * 16)
    env = {"STATESYNC_SECRET": "22" * 16, "STATESYNC_SECRET_FILE": str(tmp_path / "s")}
    assert load_secret(env, default_file=tmp_path / "d") == b"\x22" * 16
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("value", ["00" * 15, "short", "  "])
def test_short_secret_from_env_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"\$STATESYNC_SECRET.*at least 16"):
        load_secret({"STATESYNC_SECRET": value})


def test_secret_from_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("ab" * 16 + "\n")
    assert load_secret({"STATESYNC_SECRET_FILE": str(path)}) == b"\xab" * 16
    path.write_bytes(b"\x00\xff raw binary secret bytes \n")
    assert load_secret({"STATESYNC_SECRET_FILE": str(path)}) == b"\x00\xff raw binary secret bytes"


def test_short_secret_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("tiny\n")
    with pytest.raises(ValueError, match="secret"):
        load_secret({"STATESYNC_SECRET_FILE": str(path)})


def test_missing_secret_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_secret({"STATESYNC_SECRET_FILE": str(tmp_path / "nope")}, default_file=tmp_path / "d")
    assert not (tmp_path / "d").exists()  # a configured file is never silently replaced


def test_generated_secret_is_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / ".statesync-secret"
    first = load_secret({}, default_file=path)
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == first.hex() + "\n"
    assert load_secret({}, default_file=path) == first
    assert load_secret({"STATESYNC_SECRET_FILE": str(path)}) == first
    assert load_secret({"STATESYNC_SECRET": path.read_text().strip()}) == first
    assert os.listdir(tmp_path) == [".statesync-secret"]  # no temporary file left behind


def test_empty_variables_count_as_unset(tmp_path: Path) -> None:
    path = tmp_path / "d"
    env = {"STATESYNC_SECRET": "", "STATESYNC_SECRET_FILE": ""}
    assert load_secret(env, default_file=path) == load_secret({}, default_file=path)


def test_default_file_is_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    secret = load_secret({})
    assert DEFAULT_SECRET_FILE == ".statesync-secret"
    assert bytes.fromhex((tmp_path / ".statesync-secret").read_text()) == secret


def test_existing_default_file_is_used(tmp_path: Path) -> None:
    path = tmp_path / "d"
    path.write_text("cd" * 20)
    assert load_secret({}, default_file=path) == b"\xcd" * 20


def test_secrets_from_two_loads_sign_compatible_tokens(tmp_path: Path) -> None:
    path = tmp_path / "d"
    cli = TokenSigner(load_secret({}, default_file=path))
    server = TokenSigner(load_secret({}, default_file=path))
    assert server.verify(cli.issue("t1", "a", ttl=5, now=0.0), now=1.0).player == "a"


def test_losing_the_creation_race_uses_the_winners_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "d"

    def link_after_another_process(src: str, dst: Path) -> None:
        Path(dst).write_text("ee" * 32 + "\n")  # the other process got there first
        raise FileExistsError(dst)

    monkeypatch.setattr(os, "link", link_after_another_process)
    assert load_secret({}, default_file=path) == b"\xee" * 32
    assert os.listdir(tmp_path) == ["d"]
