"""`steno-collab verify [LETTER ... | --all]`: replay the log and compare it with Redis and
PostgreSQL, and list the records the projector or snapshotter quarantined (of those letters, or
all). Exit 0 when everything agrees, 1 with a line per mismatch or quarantined record (the
projection is then known to lack a record of the log), 2 when it cannot run."""

import argparse
import asyncio
import sys

from schemas.settings import Settings
from tools.replay import LetterNotFound
from tools.sources import SourceError, open_sources
from tools.verify import Finding, Quarantined, all_letters, quarantined, verify_letter


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
        findings, skipped = asyncio.run(_verify(Settings(), args.letters, args.all))
    except (SourceError, LetterNotFound) as exc:
        print(f"steno-collab verify: {exc}", file=sys.stderr)
        return 2
    for finding in findings:
        if not (args.quiet and finding.ok):
            print(finding.line())
    if skipped:
        print("quarantined records (skipped by a consumer: its projection lacks them):")
        for record in skipped:
            print(record.line())
    bad = [f for f in findings if not f.ok]
    letters = len({f.letter_id for f in findings})
    print(
        f"verified {letters} letter(s): {len(bad)} mismatch(es),"
        f" {len(skipped)} quarantined record(s)"
    )
    return 1 if bad or skipped else 0


async def _verify(
    settings: Settings, letters: list[str], every: bool
) -> tuple[list[Finding], list[Quarantined]]:
    async with open_sources(settings, redis=True, pg=True) as src:
        ids = await all_letters(src) if every else letters
        findings: list[Finding] = []
        for letter_id in ids:
            findings += await verify_letter(src, letter_id)
        return findings, await quarantined(src, None if every else letters)
