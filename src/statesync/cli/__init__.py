"""The ``statesync`` command line.

    statesync demo [--hands N] [--players N] [--seed S] [--drop-rate P] [--in-process] [--db ...]
    statesync tables | history | show | diff | replay | compact ... [--db PATH_OR_URL]
    statesync token --table T [--player P | --spectator] [--ttl SECONDS] [--client ID]
    statesync serve [--game M:C] [--db PATH_OR_URL] [--host H] [--port N] [--tick-rate HZ]
                    [--reconnect-grace SECONDS] [--send-workers N]
    statesync sim [--game all|G,..] [--seeds N] [--start S] [--seed S] [--faults F,..] [--jobs J]

Every command that reads or writes tables takes ``--db``: a SQLite file path (default
``statesync.db``) or a ``postgresql://`` URL. Errors are printed as one line with their
stable code, and the exit status is 1 (2 for usage errors).

``token`` prints a token signed with the secret of :func:`statesync.server.auth.load_secret`
(``STATESYNC_SECRET``, ``STATESYNC_SECRET_FILE`` or ``./.statesync-secret``): the server
accepts it only if it loads the same secret.

``serve`` runs the WebSocket server (:class:`statesync.server.ws.Server`) until SIGINT or
SIGTERM, then stops gracefully (queued actions are answered, clients are told
``server/shutdown``) and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

from statesync.cli import ops, sim
from statesync.cli.demo import run_demo
from statesync.cli.demo_net import run_net_demo
from statesync.errors import StateSyncError
from statesync.server.auth import TokenSigner, load_secret
from statesync.server.runner import loop_name, run
from statesync.server.ws import Server
from statesync.sim.world import FAULTS, parse_faults
from statesync.storage import RetentionPolicy
from statesync.store import DEFAULT_DB, open_store

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from statesync.game import Game
    from statesync.storage import Store

__all__ = ["main"]


def _non_negative(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="statesync", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument(
            "--db", default=DEFAULT_DB, help=f"SQLite path or postgresql:// URL ({DEFAULT_DB})"
        )
        return p

    demo = command(
        "demo", "a server and hold'em bots over WebSockets on loopback, at a new durable table"
    )
    demo.add_argument("--players", type=int, default=6, help="bots at the table (2-9)")
    demo.add_argument("--hands", type=int, default=30, help="hands to play (30)")
    demo.add_argument("--seed", type=int, default=1, help="bots' seed")
    demo.add_argument(
        "--drop-rate",
        type=float,
        default=0.03,
        help="chance that a bot's connection is dropped before an action (0.03)",
    )
    demo.add_argument(
        "--in-process",
        action="store_true",
        help="no network: bots follow the table through in-process replicas",
    )

    command("tables", "list the stored tables")

    hist = command("history", "versions of a table: who did what, when")
    hist.add_argument("table")
    hist.add_argument("--from", dest="start", type=int, help="first version")
    hist.add_argument("--to", dest="stop", type=int, help="last version")
    hist.add_argument("--limit", type=int, default=50, help="versions shown without --from")

    show = command("show", "the state of a table (or a player's view) at a version, as JSON")
    show.add_argument("table")
    show.add_argument("--version", type=int, help="default: the newest")
    show.add_argument("--player", help="show only what this player sees")

    d = command("diff", "field-level changes between two versions of a table")
    d.add_argument("table")
    d.add_argument("a", type=int)
    d.add_argument("b", type=int)
    d.add_argument("--player", help="diff this player's views")

    rep = command("replay", "re-run a table's log through the rules and check every hash")
    rep.add_argument("table")
    rep.add_argument("--game", help="module:Class (default: the game recorded with the table)")

    comp = command("compact", "drop old checkpoints and log records of a table")
    comp.add_argument("table")
    comp.add_argument("--keep-checkpoints", type=int, default=2)
    comp.add_argument("--keep-versions", type=int, default=1000)

    about = "print a signed token that lets a player (or a spectator) join a table"
    tok = sub.add_parser("token", help=about, description=about)
    tok.add_argument("--table", required=True, help="the table the token admits to")
    who = tok.add_mutually_exclusive_group()
    who.add_argument("--player", help="the player id (default: a spectator)")
    who.add_argument("--spectator", action="store_true", help="watch only (the default)")
    tok.add_argument("--ttl", type=float, default=86400.0, help="seconds valid (86400)")
    tok.add_argument("--client", help="pin the token to this client id")

    srv = command("serve", "serve tables to WebSocket clients (ws://HOST:PORT/ws)")
    srv.add_argument("--game", default=DEFAULT_GAME, help=f"module:Class ({DEFAULT_GAME})")
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    srv.add_argument("--port", type=int, default=8765, help="port (8765; 0: any free port)")
    srv.add_argument(
        "--tick-rate", type=float, help="flush updates HZ times a second (default: per action)"
    )
    srv.add_argument(
        "--reconnect-grace",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="keep a dropped player's seat this long before marking it disconnected (10)",
    )
    srv.add_argument(
        "--send-workers",
        type=_non_negative,
        default=0,
        metavar="N",
        help="helper processes that share the writes of large fan-outs, such as a thousand"
        " spectators of one table (0: none); worth it with a spare core per worker",
    )

    about = "run the deterministic simulator: seeds of each game under faults, invariants checked"
    sm = sub.add_parser("sim", help=about, description=about)
    sm.add_argument("--game", default="all", help="all, or some of: " + ", ".join(sim.GAMES))
    sm.add_argument("--seeds", type=int, default=100, help="how many seeds per game (100)")
    sm.add_argument("--start", type=int, default=0, help="first seed (0)")
    sm.add_argument("--seed", type=int, help="run this one seed and print what it found")
    sm.add_argument(
        "--faults",
        default="all",
        help="all, none, or some of: " + ", ".join(FAULTS) + " (all)",
    )
    sm.add_argument("--jobs", type=int, help="worker processes (default: one per core)")
    return parser


DEFAULT_GAME = "statesync.games.holdem:Holdem"
"""The game ``statesync serve`` plays when no ``--game`` is given."""


async def _serve(args: argparse.Namespace, game: Game, store: Store, signer: TokenSigner) -> int:
    server = Server(
        game,
        store,
        signer,
        game_ref=args.game,
        tick_rate=args.tick_rate,
        reconnect_grace=args.reconnect_grace,
        send_workers=args.send_workers,
    )
    await server.start(args.host, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        print(f"statesync serve: {args.game} tables from {args.db} at {server.url}", flush=True)
        print(f"  event loop: {loop_name()} (STATESYNC_EVENT_LOOP=asyncio for the standard one)")
        if server.pool is not None:
            print(f"  send workers: {len(server.pool.pids)} (pids {server.pool.pids})")
        print(
            "  get a token with: statesync token --table TABLE --player NAME"
            " (same secret: STATESYNC_SECRET / ./.statesync-secret)",
            flush=True,
        )
        await stop.wait()
        print("statesync serve: stopping", flush=True)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await server.stop()
    return 0


def _token(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not args.ttl > 0 or args.ttl == float("inf"):
        parser.error("--ttl must be a positive number of seconds")
    for flag in ("table", "player", "client"):
        if getattr(args, flag) == "":
            parser.error(f"--{flag} must not be empty")
    try:
        signer = TokenSigner(load_secret(os.environ))
    except (OSError, ValueError) as e:
        print(f"statesync token: {e}", file=sys.stderr)
        return 1
    print(signer.issue(args.table, args.player, ttl=args.ttl, now=time.time(), client=args.client))
    return 0


def _sim(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        games = sim.game_names(args.game)
        faults = parse_faults(args.faults)
    except ValueError as e:
        parser.error(str(e))
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if args.jobs is not None and args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.seed is not None:
        if len(games) != 1:
            parser.error("--seed needs one --game")
        return sim.run_one(games[0], args.seed, faults)
    try:
        return sim.run_sim(games, args.start, args.seeds, faults, args.jobs)
    except KeyboardInterrupt:
        print("statesync sim: interrupted", file=sys.stderr)
        return 130


async def _with_store(target: str, run: Callable[[Store], Awaitable[int]]) -> int:
    store = await open_store(target)
    try:
        return await run(store)
    finally:
        await store.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``statesync`` command."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "token":  # needs no store
        return _token(args, parser)
    if args.command == "sim":  # needs no store either
        return _sim(args, parser)
    try:
        loop_name()
    except ValueError as e:
        print(f"statesync {args.command}: {e}", file=sys.stderr)
        return 2
    job: Callable[[Store], Awaitable[Any]]
    if args.command == "serve":
        if not 0 <= args.port <= 65535:
            parser.error("--port must be between 0 and 65535")
        if args.tick_rate is not None and not 0 < args.tick_rate < float("inf"):
            parser.error("--tick-rate must be a positive number")
        if not 0 <= args.reconnect_grace < float("inf"):
            parser.error("--reconnect-grace must be a number of seconds >= 0")
        try:
            game = ops.load_game(args.game)
            signer = TokenSigner(load_secret(os.environ))
        except StateSyncError as e:
            print(f"statesync serve: {e} [{e.code}]", file=sys.stderr)
            return 1
        except (OSError, ValueError) as e:
            print(f"statesync serve: {e}", file=sys.stderr)
            return 1

        async def job(store: Store) -> int:
            return await _serve(args, game, store, signer)

    elif args.command == "demo":
        if not 2 <= args.players <= 9:
            parser.error("--players must be between 2 and 9")

        if not 0 <= args.drop_rate <= 1:
            parser.error("--drop-rate must be between 0 and 1")

        async def job(store: Store) -> int:
            if args.in_process:
                counts = await run_demo(args.players, args.hands, args.seed, store, args.db)
                return 1 if counts["desyncs"] else 0
            report = await run_net_demo(
                args.players, args.hands, args.seed, store, drop_rate=args.drop_rate
            )
            return 0 if report.ok else 1

    elif args.command == "tables":

        async def job(store: Store) -> int:
            return await ops.tables(store)

    elif args.command == "history":

        async def job(store: Store) -> int:
            return await ops.history(
                store, args.table, start=args.start, stop=args.stop, limit=args.limit
            )

    elif args.command == "show":

        async def job(store: Store) -> int:
            return await ops.show(store, args.table, version=args.version, player=args.player)

    elif args.command == "diff":

        async def job(store: Store) -> int:
            return await ops.diff_versions(store, args.table, args.a, args.b, player=args.player)

    elif args.command == "replay":

        async def job(store: Store) -> int:
            return await ops.replay_table(store, args.table, game_ref=args.game)

    else:
        policy = RetentionPolicy(args.keep_checkpoints, args.keep_versions)

        async def job(store: Store) -> int:
            return await ops.compact(store, args.table, policy)

    try:
        return run(_with_store(args.db, job))
    except StateSyncError as e:
        print(f"statesync {args.command}: {e} [{e.code}]", file=sys.stderr)
        return 1
    except OSError as e:  # serve: the address is in use, or not ours to bind
        if args.command != "serve":
            raise
        print(f"statesync serve: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"statesync {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
