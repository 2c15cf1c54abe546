"""docs/protocol.md section 9, "A session in bytes", replayed through the real sessions: every
message it shows must be what the code sends, byte for byte."""

from __future__ import annotations

import re
from pathlib import Path

from statesync.fanout import SharedStream, SplitUpdate, split_view
from statesync.games.tictactoe import TicTacToe
from statesync.protocol.client_session import ClientSession, StateChanged
from statesync.protocol.messages import Hello, decode_client, encode
from statesync.protocol.server_session import ActionReceived, ServerSession
from statesync.snapshot import StateDelta
from statesync.synchronizer import StateSynchronizer

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def example_hex() -> str:
    """The hex digits of section 9's code block (spaces and line breaks removed)."""
    text = DOC.read_text()
    section = text[text.index("## 9. A session in bytes") :]
    block = section[section.index("```") + 3 :]
    block = block[: block.index("```")]
    lines = [line for line in block.splitlines() if not line.strip().startswith("[")]
    return re.sub(r"[^0-9a-f]", "", " ".join(re.findall(r"\b[0-9a-f]{2,}\b", " ".join(lines))))


def session(versions: list[int]) -> list[bytes]:
    """The messages of the example, in order, as the code produces them."""
    sync = StateSynchronizer(TicTacToe(), players=["ann", "bob"], seed=0)
    server = ServerSession(lambda token, now: ("t1", "ann"), now=0.0)
    client = ClientSession("TOKEN", "ann-1")
    hello = decode_client(client.connect())
    assert isinstance(hello, Hello)
    hello_bytes = encode(Hello(versions, hello.token, hello.client_id))
    out = [hello_bytes]
    server.receive(hello_bytes, 0.0)
    server.welcome(1)
    server.snapshot(sync.snapshot("ann"))
    for data in server.data_to_send():
        out.append(data)
        client.receive(data)
    client.act("place", {"cell": 4})
    [act] = client.data_to_send()
    out.append(act)
    [event] = server.receive(act, 0.0)
    assert isinstance(event, ActionReceived)
    [outcome] = sync.submit_nowait([event.action])
    server.result(event.action.seq, outcome)
    [update] = sync.sync_views(0, ["ann"])
    assert isinstance(update, StateDelta)
    parts = split_view(update.delta)
    assert parts is not None
    stream = SharedStream()
    stream.reset(0, 0)
    chunk = stream.encode(parts[0], update.version)
    server.update(SplitUpdate(update, chunk, parts[1], bytes.fromhex(update.hash)))
    for data in server.data_to_send():
        out.append(data)
        events = client.receive(data)
    assert events == [StateChanged(1, False)]
    assert client.authoritative == sync.view("ann")
    return out


def test_every_message_of_the_version_2_example_is_what_the_code_sends() -> None:
    doc = example_hex()
    hello, welcome, snapshot, act, result, update = session([1, 2])
    for message in (hello, welcome, act, result, update):
        assert message.hex() in doc, message.hex()
    assert snapshot[:23].hex() in doc  # shown up to the start of the state
    assert len(snapshot) == 158 and "(158 bytes)" in DOC.read_text()


def test_the_version_1_variant_is_what_the_code_sends() -> None:
    *_, update = session([1])
    text = DOC.read_text().replace(" ", "")
    assert update[1] == 0x0C  # an Update, not a SharedUpdate
    assert update.hex()[:50] in text
