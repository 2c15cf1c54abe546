"""The ``statesync`` command line.

    statesync demo [--hands N] [--players N] [--seed S] [--db PATH_OR_URL]
    statesync tables | history | show | diff | replay | compact ... [--db PATH_OR_URL]
    statesync token --table T [--player P | --spectator] [--ttl SECONDS] [--client ID]

Every command that reads or writes tables takes ``--db``: a SQLite file path (default
``statesync.db``) or a ``postgresql://`` URL. Errors are printed as one line with their
stable code, and the exit status is 1 (2 for usage errors).

``token`` prints a token signed with the secret of :func:`statesync.server.auth.load_secret`
(``STATESYNC_SECRET``, ``STATESYNC_SECRET_FILE`` or ``./.statesync-secret``): the server
accepts it only if it loads the same secret.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from statesync.cli import ops
from statesync.cli.demo import run_demo
from statesync.errors import StateSyncError
from statesync.server.auth import TokenSigner, load_secret
from statesync.storage import RetentionPolicy
from statesync.store import DEFAULT_DB, open_store

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from statesync.storage import Store

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="statesync", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument(
            "--db", default=DEFAULT_DB, help=f"SQLite path or postgresql:// URL ({DEFAULT_DB})"
        )
        return p

    demo = command("demo", "play hold'em with scripted bots at a new durable table")
    demo.add_argument("--players", type=int, default=6, help="bots at the table (2-9)")
    demo.add_argument("--hands", type=int, default=200, help="hands to play")
    demo.add_argument("--seed", type=int, default=1, help="table seed")

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
    return parser


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
    job: Callable[[Store], Awaitable[Any]]
    if args.command == "demo":
        if not 2 <= args.players <= 9:
            parser.error("--players must be between 2 and 9")

        async def job(store: Store) -> int:
            counts = await run_demo(args.players, args.hands, args.seed, store, args.db)
            return 1 if counts["desyncs"] else 0

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
        return asyncio.run(_with_store(args.db, job))
    except StateSyncError as e:
        print(f"statesync {args.command}: {e} [{e.code}]", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"statesync {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
