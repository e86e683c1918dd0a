"""`steno-collab replay LETTER [--at ISO | --offset N] [--format F] [--out FILE] [--bare]`: a
letter as its collaborators saw it at that point (tools.replay), text and HTML under a header
saying which letter and cut they are (tools.render), unless `--bare`."""

import argparse
import asyncio
import sys
import time

from schemas.settings import Settings
from steno_collab.commands._tool import run_letter_tool
from tools.render import FORMATS, Provenance, letter_title, render
from tools.replay import Cut, replay_existing
from tools.sources import SourceError, open_sources
from tools.timefmt import BadInstant, parse_instant


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("replay", help="a letter exactly as it was at an instant or offset")
    parser.add_argument("letter", help="letter id")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--at", help="ISO-8601 instant (default: now)")
    when.add_argument("--offset", type=int, help="log position: records below this offset")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (default); json: the document's nodes and marks, exactly; yjs: its Yjs"
        " state; html: every node and mark of the editor's schema, another type's content"
        " kept in an element marked data-steno-unknown",
    )
    parser.add_argument("--out", help="write to this file instead of stdout")
    parser.add_argument(
        "--bare",
        action="store_true",
        help="text and html: the document alone, without the header naming the letter, its"
        " title, the cut and the tool",
    )
    parser.add_argument(
        "--no-versions", action="store_true", help="replay from the log alone (skip PostgreSQL)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    def produce() -> bytes:
        cut = Cut(offset=args.offset, at_ms=None if args.at is None else parse_instant(args.at))
        versions, header = not args.no_versions, not args.bare
        return asyncio.run(_replay(Settings(), args.letter, cut, args.format, versions, header))

    def emit(data: bytes) -> None:
        if args.out:
            with open(args.out, "wb") as out:
                out.write(data)
        else:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()

    errors = (BadInstant, ValueError, SourceError)
    return run_letter_tool("replay", args.letter, errors, produce, emit)


async def _replay(
    settings: Settings, letter_id: str, cut: Cut, fmt: str, versions: bool, header: bool = True
) -> bytes:
    async with open_sources(settings, pg=None if versions else False) as src:
        began = time.time_ns() // 1_000_000
        replayed = await replay_existing(src, letter_id, cut)
        if not header or fmt not in ("text", "html"):
            return render(replayed, fmt)
        return render(replayed, fmt, Provenance(await letter_title(src, letter_id), cut, began))
