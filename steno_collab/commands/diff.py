"""`steno-collab diff LETTER --from A --to B [--json]`: text changes between two versions or
instants, each attributed to its author(s)."""

import argparse
import asyncio
import json
import sys

from schemas.settings import Settings
from tools.diff import diff, format_text, resolve_point
from tools.replay import LetterNotFound
from tools.sources import SourceError, open_sources


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("diff", help="what changed between two versions or instants, by whom")
    parser.add_argument("letter", help="letter id")
    parser.add_argument("--from", dest="start", required=True, help="version number or ISO instant")
    parser.add_argument("--to", dest="end", required=True, help="version number or ISO instant")
    parser.add_argument("--json", action="store_true", help="JSON instead of a unified-style diff")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        text = asyncio.run(_diff(Settings(), args.letter, args.start, args.end, args.json))
    except (ValueError, SourceError) as exc:
        print(f"steno-collab diff: {exc}", file=sys.stderr)
        return 2
    except LetterNotFound:
        print(f"steno-collab diff: no letter {args.letter!r} in the log", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


async def _diff(settings: Settings, letter_id: str, start: str, end: str, as_json: bool) -> str:
    async with open_sources(settings, pg=None) as src:
        a = await resolve_point(src, letter_id, start)
        b = await resolve_point(src, letter_id, end)
        result = await diff(src, letter_id, a, b)
    if as_json:
        return json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n"
    return format_text(result)
