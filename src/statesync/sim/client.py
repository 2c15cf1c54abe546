"""A simulated player (or spectator): the real :class:`~statesync.protocol.client_session.
ClientSession` on a simulated connection, with a bot choosing actions from what it sees.

Everything a client does is a timer or a network callback on the simulation loop: connect,
think, ping, reconnect after a backoff. Its clock is *skewed*: each client runs its timers
``skew`` times slower or faster than the server's clock (and from its own origin), which must
change nothing -- the protocol carries no client time.

The client keeps the evidence the simulator checks at the end: every action it sent
(``sent``), every answer it received for each ``seq`` (``answers``), every desync event and
every server error code.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from statesync.client.backoff import Backoff
from statesync.protocol.client_session import (
    OPEN,
    ActionResult,
    ClientSession,
    Desynced,
    ServerError,
    Welcomed,
)
from statesync.protocol.messages import encode

if TYPE_CHECKING:
    import asyncio
    import random
    from collections.abc import Callable

    from statesync.game import Game
    from statesync.sim.net import Link, Network, Wire
    from statesync.value import Value

    Policy = Callable[[dict[str, Any], str, random.Random], tuple[str, Value] | None]

__all__ = ["SimClient"]

PING_EVERY = 2.0
"""Seconds between a client's keep-alive pings (local time)."""
MAX_PENDING = 2
"""A bot waits for answers before sending more than this many actions."""


class SimClient:
    """One simulated client of one table (``player`` ``None``: a spectator)."""

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        network: Network,
        game: Game,
        table: str,
        player: str | None,
        token: str,
        client_id: str,
        rng: random.Random,
        link: Link,
        skew: float,
        think: float,
        policy: Policy | None,
    ) -> None:
        self.loop = loop
        self.network = network
        self.table = table
        self.player = player
        self.client_id = client_id
        self.rng = rng
        self.link = link
        self.skew = skew
        self.think = think
        self.policy = policy
        self.session = ClientSession(token, client_id, game=game)
        self.wire: Wire | None = None
        self.backoff = Backoff(initial=0.05, maximum=2.0, rng=rng)
        self.acting = policy is not None
        self.welcomes = 0
        self.sent: dict[int, tuple[str, Value]] = {}
        """Every action sent, by seq."""
        self.answers: dict[int, list[ActionResult]] = {}
        """Every answer received, by seq (a re-sent action may be answered twice)."""
        self.acts: list[bytes] = []
        """The encoded ``Act`` frames sent, for the duplication fault."""
        self.desyncs: list[Desynced] = []
        self.errors: Counter[str] = Counter()
        self._pings = 0

    def __repr__(self) -> str:
        return f"<SimClient {self.client_id} v{self.session.version}>"

    # ------------------------------------------------------------------ timers

    def _after(self, seconds: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` after ``seconds`` of the client's own (skewed) clock."""
        self.loop.call_at(self.loop.time() + seconds * self.skew, callback)

    def start(self, delay: float) -> None:
        self._after(delay, self.connect)
        self._after(delay + PING_EVERY, self._ping)
        if self.policy is not None:
            self._after(delay + self.think, self._think)

    # ------------------------------------------------------------------ connection

    @property
    def open(self) -> bool:
        """Connected and welcomed."""
        return self.wire is not None and self.session.phase == OPEN

    def connect(self) -> None:
        if self.wire is not None:
            return
        self.wire = self.network.open(self, self.link)
        self.wire.to_server(self.session.connect())

    def disconnect(self) -> None:
        """Give the connection up (the client decided it is dead) and reconnect later."""
        wire = self.wire
        if wire is not None:
            wire.client_close()
            self.on_closed(wire, "given up")

    def on_closed(self, wire: Wire, reason: str) -> None:
        if wire is not self.wire:
            return
        self.wire = None
        self.session.disconnected()
        self._after(self.backoff.next(), self.connect)

    def on_frame(self, wire: Wire, data: bytes) -> None:
        if wire is not self.wire:
            return
        for event in self.session.receive(data):
            if isinstance(event, ActionResult):
                self.answers.setdefault(event.seq, []).append(event)
            elif isinstance(event, Welcomed):
                self.welcomes += 1
                self.backoff.reset()
            elif isinstance(event, Desynced):
                self.desyncs.append(event)
            elif isinstance(event, ServerError):
                self.errors[event.code] += 1
                if event.fatal:
                    # The server closes after a fatal error; do not wait for the close.
                    wire.client_close()
                    self.on_closed(wire, event.code)
                    return
        self.flush()

    def flush(self) -> None:
        wire = self.wire
        for frame in self.session.data_to_send():
            if wire is not None:
                wire.to_server(frame)

    def resend_old_act(self) -> bool:
        """Duplicate delivery: send one of the actions sent before once more, as is."""
        if not self.acts or not self.open:
            return False
        assert self.wire is not None
        self.wire.to_server(self.rng.choice(self.acts))
        return True

    # ------------------------------------------------------------------ behaviour

    def _ping(self) -> None:
        if self.open:
            self._pings += 1
            assert self.wire is not None
            self.wire.to_server(self.session.ping(self._pings))
        self._after(PING_EVERY, self._ping)

    def _think(self) -> None:
        if not self.acting:
            return
        self._after(self.rng.expovariate(1.0 / self.think), self._think)
        state = self.session.authoritative
        if not self.open or state is None or len(self.session.pending) >= MAX_PENDING:
            return
        assert self.policy is not None
        assert self.player is not None
        choice = self.policy(state, self.player, self.rng)
        if choice is not None:
            type_, payload = choice
            seq = self.session.act(type_, payload)
            self.sent[seq] = (type_, payload)
            self.acts.append(encode(self.session.pending[seq]))
            self.flush()
