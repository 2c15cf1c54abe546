"""Bad-input campaign against a live server: malformed, oversized, replayed and forged
messages, from many connections, all from one seed.

A connection either opens with a forged handshake (tampered or random token, unsupported
version, reserved client id: refused and closed), or replays an action the table already
applied on that action's own client session (answered as a duplicate, nothing applied), or
opens a spectator session and sends bad messages until the server closes it (it tolerates a
bounded number per connection): random bytes, truncations of valid messages, unknown tags,
wrong field types, text frames, oversized messages, a second ``Hello``. Every message must be
answered (a coded ``Error``, a ``Result`` refusing it, or a close).

The campaign reports how many messages it sent, how the server answered (error codes,
closes), and every problem: a message the server did not answer with a coded error or a
close, an unexpected outcome, or bytes that contain one of ``forbidden`` (another player's
hidden values). The caller checks the table itself before and after (it must not change).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from statesync.protocol.messages import (
    Act,
    Error,
    Hello,
    Result,
    Resync,
    Welcome,
    decode_server,
    encode,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from websockets.asyncio.client import ClientConnection

__all__ = ["BadInputReport", "campaign"]


@dataclass
class BadInputReport:
    """What a campaign sent and saw."""

    messages: int = 0
    connections: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    closes: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _valid_samples(rng: random.Random) -> list[bytes]:
    return [
        encode(Act(rng.randint(1, 1000), rng.randint(0, 50), "call", None)),
        encode(Act(rng.randint(1, 1000), 0, "bet", {"amount": rng.randint(-5, 10**6)})),
        encode(Resync(rng.randint(-3, 100))),
    ]


def _bad_message(rng: random.Random, limit: int, replay: bytes | None) -> bytes | str:
    kind = rng.randrange(9 if replay is not None else 8)
    if kind == 0:
        return rng.randbytes(rng.randint(0, 64))
    if kind == 1:  # a truncated valid message
        whole = rng.choice(_valid_samples(rng))
        return whole[: rng.randrange(len(whole))]
    if kind == 2:  # an unknown tag
        return msgspec.msgpack.encode([rng.choice([0, 6, 9, 16, 99, -1, 2**40]), 1, 2])
    if kind == 3:  # wrong field types
        return msgspec.msgpack.encode([2, "one", None, 3, {"x": [1.5]}])
    if kind == 4:
        return "a text frame"
    if kind == 5:  # oversized, still under the transport's hard cap
        return b"\x92\x04" + b"\x00" * (limit + rng.randint(1, limit))
    if kind == 6:
        return encode(Hello([1], "again", "again"))
    if kind == 7:
        return b"\x95\x02" + rng.randbytes(rng.randint(1, 12))  # an Act with garbage fields
    assert replay is not None
    return replay


def _forged_hello(rng: random.Random, good: str) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:  # flip one character of a valid token
        i = rng.randrange(len(good))
        c = "A" if good[i] != "A" else "B"
        return encode(Hello([1], good[:i] + c + good[i + 1 :], "forger"))
    if kind == 1:
        return encode(Hello([1], rng.randbytes(12).hex() + "." + rng.randbytes(8).hex(), "forger"))
    if kind == 2:
        return encode(Hello([9, 10], good, "forger"))
    if kind == 3:
        return encode(Hello([1], good, "$system"))
    return encode(Hello([1], "", "forger"))


async def _answer(
    ws: ClientConnection, report: BadInputReport, check: Callable[[bytes], None]
) -> object:
    """Read until the server answers the last message (an Error, a Result or a Welcome) or
    closes; returns the answer, or ``None`` once the connection is closed."""
    while True:
        try:
            data = await asyncio.wait_for(ws.recv(), 5)
        except TimeoutError:
            report.problems.append("the server did not answer a message within 5 s")
            return None
        except ConnectionClosed as e:
            report.closes[e.rcvd.code if e.rcvd else 1006] += 1
            return None
        if isinstance(data, str):
            report.problems.append(f"the server sent a text frame: {data[:80]!r}")
            continue
        check(data)
        try:
            m = decode_server(data)
        except Exception as e:
            report.problems.append(f"the server sent an undecodable message: {e}")
            continue
        if isinstance(m, Error):
            report.codes[m.code] += 1
            return m
        if isinstance(m, Result | Welcome):
            if isinstance(m, Result):
                report.codes[m.code or "ok"] += 1
            return m


async def campaign(
    url: str,
    spectator_token: str,
    messages: int,
    *,
    seed: int = 0,
    limit: int = 65536,
    forbidden: Sequence[bytes] = (),
    replays: Sequence[tuple[str, str, bytes]] = (),
    concurrency: int = 8,
    progress: Callable[[BadInputReport], None] | None = None,
) -> BadInputReport:
    """Send at least ``messages`` bad messages to the server at ``url``.

    Garbage goes through sessions opened with ``spectator_token`` (so that a random byte
    string that happens to decode as a valid action is refused, never applied) or through
    forged handshakes. ``replays`` are ``(token, client_id, encoded Act)`` of actions the
    table already applied: each is sent again on a session of that client and must be
    answered as a duplicate. ``forbidden`` are byte strings no connection may ever receive
    (hidden values, encoded as they would appear on the wire).
    """
    report = BadInputReport()
    rng = random.Random(seed)

    def check(data: bytes) -> None:
        for secret in forbidden:
            if secret in data:
                report.problems.append(f"leak: {secret!r} reached a connection")

    async def send(ws: ClientConnection, data: bytes | str) -> object:
        report.messages += 1
        await ws.send(data)
        return await _answer(ws, report, check)

    async def one_connection(r: random.Random) -> None:
        kind = r.random()
        async with connect(url, max_size=None, open_timeout=5, close_timeout=1) as ws:
            report.connections += 1
            if kind < 0.2:  # a forged handshake: refused and closed
                answer = await send(ws, _forged_hello(r, spectator_token))
                if not isinstance(answer, Error) or not answer.fatal:
                    report.problems.append(f"a forged handshake got {answer!r}")
                return
            if kind < 0.3 and replays:  # replays of applied actions, then garbage
                token, client_id, act = r.choice(list(replays))
                if not isinstance(await send(ws, encode(Hello([1], token, client_id))), Welcome):
                    report.problems.append("a valid handshake was refused")
                    return
                answer = await send(ws, act)
                if not isinstance(answer, Result) or not (answer.ok and answer.duplicate):
                    report.problems.append(f"a replayed action was answered {answer!r}")
                return
            hello = encode(Hello([1], spectator_token, f"bad-{r.randrange(10**9)}"))
            if not isinstance(await send(ws, hello), Welcome):
                report.problems.append("a valid spectator handshake was refused")
                return
            for _ in range(64):
                answer = await send(ws, _bad_message(r, limit, None))
                if answer is None:
                    return
                if isinstance(answer, Result) and answer.ok:
                    report.problems.append(f"a garbage message was accepted: {answer!r}")
            report.problems.append("64 bad messages did not close the connection")

    async def worker() -> None:
        while report.messages < messages and len(report.problems) < 20:
            try:
                await one_connection(random.Random(rng.randrange(2**63)))
            except (InvalidStatus, OSError, TimeoutError) as e:
                report.problems.append(f"connection failed: {type(e).__name__}: {e}")
            except ConnectionClosed:
                pass
            if progress is not None:
                progress(report)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return report
