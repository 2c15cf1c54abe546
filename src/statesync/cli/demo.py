"""``statesync demo``: the hold'em example, played by scripted bots.

    statesync demo [--hands N] [--players N] [--seed S] [--db PATH_OR_URL]

``demo`` plays the hold'em example with scripted bots through a :class:`StateSynchronizer`:
every player keeps a replica of their own view, follows it with per-player deltas through a
wire encoder/decoder pair, checks the hash after every update, and now and then drops out and
catches up again from its last version. The table lives in a durable store (the SQLite file
``statesync.db`` by default): every action is acknowledged only after it is committed, and the
operator commands (``statesync tables``, ``history``, ``show``, ``diff``, ``replay``) can
inspect it afterwards. It ends with a summary (versions, actions per second, bytes per update,
catch-ups, desyncs — which must be 0).
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from statesync.actions import PlayerAction
from statesync.errors import HashMismatchError
from statesync.games.holdem import Holdem, legal_actions
from statesync.rng import Rng
from statesync.snapshot import StateDelta, StateSnapshot
from statesync.synchronizer import StateSynchronizer
from statesync.wire import WireDecoder, WireEncoder

if TYPE_CHECKING:
    from statesync.storage import Store


class _Replica:
    """One player's copy of their view, fed over a simulated connection."""

    def __init__(self, player: str, snapshot: StateSnapshot) -> None:
        self.player = player
        self.sync = StateSynchronizer.from_snapshot(snapshot)
        self.encoder, self.decoder = WireEncoder(), WireDecoder()
        self.seq = 0
        self.online = True
        self.bytes = 0
        self.updates = 0

    async def receive(self, update: StateDelta | StateSnapshot) -> None:
        if isinstance(update, StateSnapshot):
            self.sync = StateSynchronizer.from_snapshot(update)
            self.encoder.reset()
            self.decoder.reset()
            return
        if not update.delta and update.version == self.sync.version:
            return
        data = self.encoder.encode(update.delta)
        self.bytes += len(data)
        self.updates += 1
        received = StateDelta(
            update.base_version,
            update.version,
            self.decoder.decode(data),
            update.hash,
            update.epoch,
        )
        await self.sync.apply_delta(received)


async def run_demo(
    players: int,
    hands: int,
    seed: int,
    store: Store,
    where: str = "memory",
    out: TextIO | None = None,
) -> dict[str, int]:
    """Play ``hands`` hands of hold'em with ``players`` bots at a new table in ``store``;
    returns the summary counters."""
    out = sys.stdout if out is None else out
    names = [f"bot{i}" for i in range(players)]
    table_id = await new_table_id(store)
    table = await StateSynchronizer.create(
        Holdem(),
        store,
        table_id,
        players=names,
        seed=seed,
        game_ref="statesync.games.holdem:Holdem",
        clock=time.time,
    )
    print(f"table {table_id} in {where}", file=out)
    replicas = {p: _Replica(p, table.snapshot(p)) for p in names}
    rng = Rng.derive(seed, "demo")
    counts = {"actions": 0, "rejected": 0, "catchups": 0, "desyncs": 0, "snapshots": 0}
    start = time.perf_counter()
    last_print = 0.0
    while table.state["game"]["hand"] <= hands and not table.game.is_over(table.state):
        actor = table.state["game"]["turn"]
        if actor is None:
            break
        choices = legal_actions(table.state, actor)
        if not choices:
            break
        kind, payload = pick(rng, choices)
        r = replicas[actor]
        r.seq += 1
        outcome = (
            await table.submit([PlayerAction(actor, actor, r.seq, r.sync.version, kind, payload)])
        )[0]
        counts["actions"] += 1
        counts["rejected"] += not outcome.ok
        for p, rep in replicas.items():
            if rep.online and rng.random() < 0.01:
                rep.online = False  # drops out; will catch up from its last version
            elif not rep.online and rng.random() < 0.2:
                rep.online = True
                counts["catchups"] += 1
            if not rep.online:
                continue
            update = table.sync(rep.sync.version, player_id=p)
            counts["snapshots"] += isinstance(update, StateSnapshot)
            try:
                await rep.receive(update)
            except HashMismatchError:
                counts["desyncs"] += 1
                await rep.receive(table.snapshot(p))
        now = time.perf_counter()
        if now - last_print > 0.25:
            last_print = now
            _progress(table, counts, now - start, replicas, out)
    for p, rep in replicas.items():
        await rep.receive(table.sync(rep.sync.version, player_id=p))
        if rep.sync.view_hash() != table.view_hash(p):
            counts["desyncs"] += 1
    elapsed = time.perf_counter() - start
    _progress(table, counts, elapsed, replicas, out)
    total_bytes = sum(r.bytes for r in replicas.values())
    updates = sum(r.updates for r in replicas.values())
    print(file=out)
    print(
        f"done: {table.version} versions, {counts['actions']} actions "
        f"({counts['actions'] / elapsed:,.0f}/s), {updates} player updates, "
        f"{total_bytes / max(updates, 1):.1f} bytes/update on the wire, "
        f"{counts['catchups']} catch-ups, {counts['snapshots']} snapshots, "
        f"desyncs={counts['desyncs']}",
        file=out,
    )
    counts["versions"] = table.version
    print(
        f"inspect it with: statesync history {table.table_id}; statesync replay {table.table_id}",
        file=out,
    )
    return counts


_WEIGHTS = {"check": 6, "call": 6, "fold": 2, "bet": 2, "raise": 1, "all_in": 0}


async def new_table_id(store: Store) -> str:
    """The first free ``demo-N`` table id in ``store``."""
    taken = {t.table_id for t in await store.tables()}
    return next(f"demo-{n}" for n in range(1, len(taken) + 2) if f"demo-{n}" not in taken)


def pick(rng: Rng, choices: list[tuple[str, Any]]) -> tuple[str, Any]:
    """A scripted bot: mostly checks and calls, sometimes bets, folds or raises, and goes all
    in only when nothing else is legal (so a demo table lasts many hands)."""
    weighted = [c for c in choices for _ in range(_WEIGHTS.get(c[0], 1))] or choices
    return rng.choice(weighted)


def _progress(
    table: StateSynchronizer,
    counts: dict[str, int],
    elapsed: float,
    replicas: dict[str, _Replica],
    out: TextIO,
) -> None:
    total = sum(r.bytes for r in replicas.values())
    line = (
        f"\rhand {table.state['game']['hand']:>4}  version {table.version:>6}  "
        f"{counts['actions'] / max(elapsed, 1e-9):>8,.0f} actions/s  {total:>9,} bytes  "
        f"catch-ups {counts['catchups']:>4}  desyncs {counts['desyncs']}"
    )
    print(line, end="", file=out, flush=True)
