"""``statesync token``: prints a token the server accepts when it loads the same secret."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from statesync.cli import main
from statesync.errors import AuthError
from statesync.server.auth import Claims, TokenSigner, load_secret

if TYPE_CHECKING:
    from pathlib import Path

SECRET_HEX = "5e" * 32


@pytest.fixture(autouse=True)
def secret_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # never touch a real ./.statesync-secret
    monkeypatch.setenv("STATESYNC_SECRET", SECRET_HEX)
    monkeypatch.delenv("STATESYNC_SECRET_FILE", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def verify(token: str, table: str = "t1") -> Claims:
    """Verify as a server would, now; expiry is checked against the token's own expiry."""
    return TokenSigner(bytes.fromhex(SECRET_HEX)).verify(token, now=time.time(), table=table)


def test_player_token(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "token", "--table", "t1", "--player", "alice")
    assert code == 0 and err == ""
    token = out.strip()
    assert out == token + "\n"
    claims = verify(token)
    assert (claims.table, claims.player, claims.client) == ("t1", "alice", None)
    signer = TokenSigner(bytes.fromhex(SECRET_HEX))
    issued = claims.expires - 86400  # the default ttl is a day
    assert signer.verify(token, now=issued + 86399).player == "alice"
    with pytest.raises(AuthError, match="expired"):
        signer.verify(token, now=issued + 86400)


def test_spectator_is_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "token", "--table", "t1")
    assert verify(out.strip()).spectator
    _, out, _ = run(capsys, "token", "--table", "t1", "--spectator")
    assert verify(out.strip()).player is None


def test_ttl_and_client(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(
        capsys, "token", "--table", "t1", "--player", "bob", "--ttl", "90", "--client", "c9"
    )
    claims = verify(out.strip())
    assert claims.client == "c9" and claims.player == "bob"
    signer = TokenSigner(bytes.fromhex(SECRET_HEX))
    issued = claims.expires - 90
    assert signer.verify(out.strip(), now=issued + 89.9).player == "bob"
    with pytest.raises(AuthError, match="expired"):
        signer.verify(out.strip(), now=issued + 90)


@pytest.mark.parametrize(
    "argv",
    [
        ["token"],  # --table is required
        ["token", "--table", "t1", "--player", "a", "--spectator"],
        ["token", "--table", "t1", "--ttl", "0"],
        ["token", "--table", "t1", "--ttl", "-5"],
        ["token", "--table", "t1", "--ttl", "nan"],
        ["token", "--table", "t1", "--ttl", "inf"],
        ["token", "--table", "t1", "--ttl", "soon"],
        ["token", "--table", ""],
        ["token", "--table", "t1", "--player", ""],
        ["token", "--table", "t1", "--client", ""],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_short_secret_is_an_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STATESYNC_SECRET", "tiny")
    code, out, err = run(capsys, "token", "--table", "t1")
    assert code == 1 and out == ""
    assert err.startswith("statesync token: ") and "at least 16" in err


def test_missing_secret_file_is_an_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("STATESYNC_SECRET")
    monkeypatch.setenv("STATESYNC_SECRET_FILE", str(tmp_path / "missing"))
    code, out, err = run(capsys, "token", "--table", "t1")
    assert code == 1 and out == "" and "missing" in err


def test_without_configuration_the_secret_file_is_shared_with_the_server(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("STATESYNC_SECRET")
    _, out, _ = run(capsys, "token", "--table", "t1", "--player", "carol")
    assert (tmp_path / ".statesync-secret").exists()
    server = TokenSigner(load_secret({}))  # what a server started here would load
    assert server.verify(out.strip(), now=time.time(), table="t1").player == "carol"
    _, again, _ = run(capsys, "token", "--table", "t1", "--player", "carol")
    assert server.verify(again.strip(), now=time.time()).player == "carol"


def test_token_does_not_open_a_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import statesync.cli as cli

    def no_store(*args: object) -> None:
        raise AssertionError("token must not open a store")

    monkeypatch.setattr(cli, "open_store", no_store)
    code, _, _ = run(capsys, "token", "--table", "t1")
    assert code == 0 and not (tmp_path / "statesync.db").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--reconnect-grace", "-1"],
        ["serve", "--reconnect-grace", "nan"],
        ["serve", "--reconnect-grace", "inf"],
        ["serve", "--tick-rate", "0"],
        ["serve", "--port", "70000"],
    ],
)
def test_serve_usage_errors_exit_2_before_serving(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and f"{argv[1]} must be" in err
