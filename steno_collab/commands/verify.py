"""`steno-collab verify [LETTER ... | --all]`: replay the log and compare it with Redis and
PostgreSQL. Exit 0 when everything agrees, 1 with a line per mismatch, 2 when it cannot run."""

import argparse
import asyncio
import sys

from schemas.settings import Settings
from tools.replay import LetterNotFound
from tools.sources import SourceError, open_sources
from tools.verify import Finding, all_letters, verify_letter


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("verify", help="compare Redis and PostgreSQL with a replay of the log")
    parser.add_argument("letters", nargs="*", metavar="LETTER", help="letter ids")
    parser.add_argument("--all", action="store_true", help="every letter in the log")
    parser.add_argument("--quiet", action="store_true", help="print mismatches only")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if bool(args.letters) == bool(args.all):
        print("steno-collab verify: give letter ids or --all", file=sys.stderr)
        return 2
    try:
        findings = asyncio.run(_verify(Settings(), args.letters, args.all))
    except (SourceError, LetterNotFound) as exc:
        print(f"steno-collab verify: {exc}", file=sys.stderr)
        return 2
    for finding in findings:
        if not (args.quiet and finding.ok):
            print(finding.line())
    bad = [f for f in findings if not f.ok]
    letters = len({f.letter_id for f in findings})
    print(f"verified {letters} letter(s): {len(bad)} mismatch(es)")
    return 1 if bad else 0


async def _verify(settings: Settings, letters: list[str], every: bool) -> list[Finding]:
    async with open_sources(settings, redis=True, pg=True) as src:
        ids = await all_letters(src) if every else letters
        findings: list[Finding] = []
        for letter_id in ids:
            findings += await verify_letter(src, letter_id)
        return findings
