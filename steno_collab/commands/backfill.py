"""`steno-collab backfill projector|snapshotter|locks|all [--from-beginning | --since ISO]
[--letters ID ...] [--reset]`: rebuild projections from the log, and restore the section locks
it says are held (`locks`; `all` restores them first: tools.backfill).

Interrupt it at any time (Ctrl-C) and run the same command again: it continues. Exit 0 when
done, 1 when a worker process failed, the projector's run lost its lease (paused past 30 s) or
PostgreSQL failed mid-run (run again), 2 when it cannot
run (a bad argument, a letter id the log does not hold: nothing is written then, an unreachable
store, a table missing from PostgreSQL), 130 when interrupted. The snapshotter service may run
meanwhile: it yields to a reset rebuild and to a --letters/--since one (pausing until it ends,
then going on from where it paused; an interrupted one keeps it paused until the next
snapshotter backfill, which finishes it first, whatever it is for, but a reset, which supersedes
it),
and a plain backfill goes on from what it committed (README "Rebuilding and auditing").
"""

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable
from typing import TypeVar

import asyncpg
import uvloop

from schemas.settings import Settings
from schemas.stores import raise_if_cancelled
from snapshotter.migrate import MigrationError
from snapshotter.store import StalePositionError
from tools.backfill import TARGETS, UnknownLetters, backfill
from tools.backfill_projector import BackfillError
from tools.sources import SourceError, missing_table, open_sources
from tools.timefmt import BadInstant, parse_instant

INTERRUPTED = 130
T = TypeVar("T")
# PostgreSQL gone mid-run (stopped, restarted, our session ended), a transaction it rolled
# back (a deadlock), a position another job moved: nothing half written.
LOST = (
    StalePositionError,
    ConnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.TransactionRollbackError,
    asyncpg.InterfaceError,
)


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser(
        "backfill",
        help="rebuild the Redis and/or PostgreSQL projections from the log (resumable)",
        description=(
            "Without options: continue each projection from its stored positions (from the "
            "log's beginning when it has none). --reset: wipe and rebuild everything from the "
            "log's beginning (--from-beginning only says so, and needs --reset). --letters / "
            "--since: rebuild only those letters (--since picks the letters with records at or "
            "after the instant) from their whole history. The snapshotter service may keep "
            "running: it pauses during a --reset or a --letters/--since snapshotter backfill "
            "(if interrupted, until it is run to its end: every snapshotter run first "
            "finishes any interrupted one), then goes on from there. locks: "
            "restore the section locks the log says are held (after Redis lost them), never "
            "over a lock held now."
        ),
    )
    parser.add_argument("target", choices=TARGETS)
    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        "--from-beginning",
        action="store_true",
        help="spelled out: --reset alone already rebuilds from the log's start (needs --reset)",
    )
    start.add_argument("--since", help="only letters with records at or after this ISO instant")
    parser.add_argument("--letters", nargs="+", default=[], metavar="ID", help="only these letters")
    parser.add_argument(
        "--reset",
        action="store_true",
        help="wipe the chosen state first, then rebuild it from the log's start",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="processes for the projector's whole-log rebuild, each folding a share of the "
        "partitions (default: one per CPU)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.target == "locks" and args.reset:
        print(
            "steno-collab backfill: locks are restored beside the held ones, never wiped: "
            "drop --reset",
            file=sys.stderr,
        )
        return 2
    if args.from_beginning and not args.reset:
        print(
            "steno-collab backfill: --from-beginning rebuilds into fresh state: add --reset "
            "(without it the projections continue from their stored positions)",
            file=sys.stderr,
        )
        return 2
    settings = Settings()
    try:
        since = None if args.since is None else parse_instant(args.since, bound=True)
        lines = uvloop.run(_interruptible(_backfill(settings, args, since)))
    except (BadInstant, SourceError, UnknownLetters) as exc:
        print(f"steno-collab backfill: {exc}", file=sys.stderr)
        return 2
    except asyncpg.UndefinedTableError as exc:
        print(f"steno-collab backfill: {missing_table(exc, settings)}", file=sys.stderr)
        return 2
    except (BackfillError, MigrationError) as exc:
        print(f"steno-collab backfill: {exc}", file=sys.stderr)
        return 1
    except LOST as exc:  # committed batches stay: a rerun continues after them
        reason = str(exc) or exc.__class__.__name__
        print(
            f"steno-collab backfill: PostgreSQL: {reason}; run the same command again to continue",
            file=sys.stderr,
        )
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(
            "steno-collab backfill: interrupted; run the same command again to continue",
            file=sys.stderr,
        )
        return INTERRUPTED
    print("\n".join(["backfill done:", *(f"  {line}" for line in lines)]))
    return 0


async def _interruptible(work: Awaitable[T]) -> T:
    """`work`, reported as interrupted once Ctrl-C has cancelled it (the runner cancels this
    task): whatever else it raised or did meanwhile was the interrupt's doing, e.g. a
    PostgreSQL commit cut short ("position is no longer N"), and would hide it."""
    try:
        result = await work
    except Exception:
        raise_if_cancelled()  # the runner makes it a KeyboardInterrupt
        raise
    raise_if_cancelled()  # the cancel was swallowed on the way
    return result


async def _backfill(settings: Settings, args: argparse.Namespace, since: int | None) -> list[str]:
    started = time.monotonic()  # the summary's wall time counts opening the stores too
    redis = args.target in ("projector", "locks", "all")
    pg = args.target in ("snapshotter", "all")
    async with open_sources(settings, redis=redis, pg=pg) as src:
        summary = await backfill(
            src,
            args.target,
            reset=args.reset,
            letters=args.letters,
            since_ms=since,
            workers=max(1, args.workers),
            started=started,
        )
    return summary.lines
