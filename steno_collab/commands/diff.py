"""`steno-collab diff LETTER --from A --to B [--json]`: text changes between two versions or
instants, each attributed to its author(s)."""

import argparse
import asyncio
import json
import sys

from schemas.settings import Settings
from steno_collab.commands._tool import run_letter_tool
from tools.diff import diff, format_text, resolve_point
from tools.sources import SourceError, open_sources


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("diff", help="what changed between two versions or instants, by whom")
    parser.add_argument("letter", help="letter id")
    parser.add_argument("--from", dest="start", required=True, help="version number or ISO instant")
    parser.add_argument("--to", dest="end", required=True, help="version number or ISO instant")
    parser.add_argument("--json", action="store_true", help="JSON instead of a unified-style diff")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_letter_tool(
        "diff",
        args.letter,
        (ValueError, SourceError),
        lambda: asyncio.run(_diff(Settings(), args.letter, args.start, args.end, args.json)),
        sys.stdout.write,
    )


async def _diff(settings: Settings, letter_id: str, start: str, end: str, as_json: bool) -> str:
    async with open_sources(settings, pg=None) as src:
        a = await resolve_point(src, letter_id, start)
        b = await resolve_point(src, letter_id, end)
        result = await diff(src, letter_id, a, b)
    if as_json:
        return json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n"
    return format_text(result)
