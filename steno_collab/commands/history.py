"""`steno-collab history LETTER [--since ISO] [--until ISO] [--json | --full]`: who did what,
when."""

import argparse
import asyncio
import sys

from schemas.settings import Settings
from steno_collab.commands._tool import run_letter_tool
from tools.history import Backwards, format_json, format_text, history
from tools.sources import SourceError, open_sources
from tools.timefmt import BadInstant, parse_instant


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser(
        "history", help="a letter's timeline: sessions, edits, comments, locks, versions"
    )
    parser.add_argument("letter", help="letter id")
    parser.add_argument("--since", help="ISO-8601 instant (inclusive)")
    parser.add_argument("--until", help="ISO-8601 instant (exclusive)")
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="JSON instead of text")
    shape.add_argument(
        "--full",
        action="store_true",
        help="titles, labels, quotes and bodies whole (else cut at 60 characters, marked),"
        " a multi-line one on indented lines below its entry",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    def produce() -> str:
        since = None if args.since is None else parse_instant(args.since, bound=True)
        until = None if args.until is None else parse_instant(args.until, bound=True)
        return asyncio.run(_history(Settings(), args.letter, since, until, args.json, args.full))

    return run_letter_tool(
        "history", args.letter, (BadInstant, Backwards, SourceError), produce, sys.stdout.write
    )


async def _history(
    settings: Settings,
    letter_id: str,
    since: int | None,
    until: int | None,
    as_json: bool,
    full: bool = False,
) -> str:
    # The log alone, as README says: PostgreSQL's audit trail lacks what the snapshotter has not
    # folded yet (stopped or behind), and would leave it out without a word.
    async with open_sources(settings) as src:
        entries = await history(src, letter_id, since, until)
    return format_json(entries) if as_json else format_text(entries, full)
