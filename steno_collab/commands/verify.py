"""`steno-collab verify [LETTER ... | --all]`: replay the log and compare it with Redis (document,
threads, meta hash) and PostgreSQL (every version, the audit trail, the comment tables), and list
the records the projector or snapshotter quarantined (of those letters, or all). Exit 0 when
everything agrees, 1 with a line per mismatch or quarantined record (the projection is then known
to lack a record of the log), 2 when it cannot run or was given a letter the log does not hold
(one stderr line per such id; the other letters are still verified and reported)."""

import argparse
import asyncio
import sys

import asyncpg

from schemas.settings import Settings
from tools.replay import LetterNotFound
from tools.sources import SourceError, missing_table, open_sources
from tools.verify import (
    Finding,
    Quarantined,
    all_letters,
    quarantined,
    unfinished,
    verify_letter,
)


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
    settings = Settings()
    try:
        findings, skipped, unknown, partial = asyncio.run(_verify(settings, args.letters, args.all))
    except SourceError as exc:
        print(f"steno-collab verify: {exc}", file=sys.stderr)
        return 2
    except asyncpg.UndefinedTableError as exc:
        print(f"steno-collab verify: {missing_table(exc, settings)}", file=sys.stderr)
        return 2
    for letter_id in unknown:
        print(f"steno-collab verify: no letter {letter_id!r} in the log", file=sys.stderr)
    for finding in findings:
        if not (args.quiet and finding.ok):
            print(finding.line())
    if skipped:
        print("quarantined records (skipped by a consumer: its projection lacks them):")
        for record in skipped:
            print(record.line())
    for line in partial:
        print(line)
    bad = [f for f in findings if not f.ok]
    letters = len({f.letter_id for f in findings})
    missing = f", {len(unknown)} unknown letter(s)" if unknown else ""
    rebuilds = f", {len(partial)} unfinished rebuild(s)" if partial else ""
    print(
        f"verified {letters} letter(s): {len(bad)} mismatch(es),"
        f" {len(skipped)} quarantined record(s){missing}{rebuilds}"
    )
    return 2 if unknown else 1 if bad or skipped or partial else 0


async def _verify(
    settings: Settings, letters: list[str], every: bool
) -> tuple[list[Finding], list[Quarantined], list[str], list[str]]:
    """The findings, the quarantined records, the given ids the log does not hold, and the
    rebuilds that have not finished (a store holding part of the log passes per letter)."""
    async with open_sources(settings, redis=True, pg=True) as src:
        ids = await all_letters(src) if every else list(dict.fromkeys(letters))
        findings: list[Finding] = []
        unknown: list[str] = []
        for letter_id in ids:
            try:
                findings += await verify_letter(src, letter_id)
            except LetterNotFound:
                unknown.append(letter_id)
        skipped = await quarantined(src, None if every else letters)
        return findings, skipped, unknown, await unfinished(src)
