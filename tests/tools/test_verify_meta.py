"""`verify` compares Redis's `letter:<id>:meta` with the letter's `letter.created` record, and
says a negative stored position is negative.

The gateway's access checks trust that hash's firm: a hash moved to another firm, retitled,
or gone while the projector is past the letter's creation must each be a mismatch naming the
key and the field, and `backfill projector` must write it back. A letter the projector has not
reached has no hash, and that is no mismatch (as for `ydoc:<id>`).
"""

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from eventlog import Log
from schemas.settings import Settings
from tests.tools.cli import cli_env, run_cli
from tests.tools.scripted import LETTER, scripted
from tests.tools.session import FIRM, Session
from tools.backfill import backfill
from tools.progress import Meter
from tools.sources import Sources, open_sources
from tools.timefmt import iso
from tools.verify import Finding, verify_letter

META, OFFSET = f"letter:{LETTER}:meta", f"ydoc:{LETTER}:offset"


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # the checks are of the stores; the log is read as on Kafka


def _bad(findings: list[Finding]) -> list[str]:
    return [f.what for f in findings if not f.ok]


@asynccontextmanager
async def _projected(
    settings: Settings, log: Log, stores: str = "projector"
) -> AsyncIterator[Sources]:
    """The scripted letter, backfilled into `stores`: the sources to tamper with and verify."""
    await scripted(log, settings)
    async with open_sources(settings, redis=True, pg=stores != "projector") as src:
        assert src.redis is not None
        await backfill(src, stores, meter=Meter(every_s=3600))
        yield src


async def _redis_only(src: Sources) -> list[Finding]:
    return [f for f in await verify_letter(src, LETTER) if f.store == "redis"]


async def test_a_tampered_meta_hash_is_a_mismatch_that_backfill_repairs(
    settings: Settings, log: Log
) -> None:
    async with _projected(settings, log) as src:
        assert src.redis is not None
        at = int(await src.redis.get(OFFSET) or -1)
        logged = await src.redis.hgetall(META)
        assert logged[b"firm_id"] == FIRM.encode()
        [ok] = await _redis_only(src)
        assert ok.ok and f"{META} at position {at} equals the log's letter.created" in ok.what

        await src.redis.hset(
            META, mapping={"firm_id": "other-firm", "title": "Settlement", "created_at": "0"}
        )
        created = iso(int(logged[b"created_at"]))
        assert _bad(await _redis_only(src)) == [
            f'{META} at position {at}: created_at stored "1970-01-01T00:00:00.000+00:00" where'
            f' the log has "{created}"',
            f'{META} at position {at}: firm_id stored "other-firm" where the log has "{FIRM}"',
            f'{META} at position {at}: title stored "Settlement" where the log has "t"',
        ]
        code, out, err = await run_cli(cli_env(settings), "verify", LETTER, "--quiet")
        assert code == 1 and "Traceback" not in err, out + err
        assert f'MISMATCH {LETTER} redis: {META} at position {at}: firm_id stored "other' in out
        assert "3 mismatch(es)" in out, out

        # The projector keeps its own copy of the hash and would not rewrite it: backfill does.
        await backfill(src, "projector", letters=[LETTER], meter=Meter(every_s=3600))
        assert await src.redis.hgetall(META) == logged
        assert all(f.ok for f in await verify_letter(src, LETTER))

        await src.redis.delete(META)
        assert _bad(await _redis_only(src)) == [
            f"{META} missing (ydoc:{LETTER} is at position {at}, past the letter's creation)"
        ]
        await backfill(src, "projector", reset=True, meter=Meter(every_s=3600))
        assert await src.redis.hgetall(META) == logged
        assert all(f.ok for f in await verify_letter(src, LETTER))


async def test_a_meta_hash_without_its_document_is_still_checked(
    settings: Settings, log: Log
) -> None:
    async with _projected(settings, log) as src:
        assert src.redis is not None
        # A letter created after the projector ran: not reached, so no hash, no mismatch.
        later = Session(log, settings, "later", random.Random(1))
        await later.create()
        assert all(f.ok for f in await verify_letter(src, "later"))

        await src.redis.delete(f"ydoc:{LETTER}", OFFSET)  # the gateway still reads the hash
        await src.redis.hset(META, "firm_id", "other-firm")
        assert _bad(await _redis_only(src)) == [
            f'{META} (ydoc:{LETTER} not in Redis): firm_id stored "other-firm" where the log'
            f' has "{FIRM}"'
        ]
        await src.redis.hset(META, "firm_id", FIRM)
        assert all(f.ok for f in await verify_letter(src, LETTER))


async def test_a_negative_stored_position_is_said_to_be_negative(
    settings: Settings, log: Log
) -> None:
    async with _projected(settings, log, "all") as src:
        assert src.redis is not None
        await src.redis.set(OFFSET, "-5", keepttl=True)
        await src.pg.execute(
            "UPDATE letter_version SET log_offset = -3 WHERE letter_id = $1 AND version_number = 1",
            LETTER,
        )
        await src.pg.execute(
            "UPDATE collaboration SET log_offset = -1 WHERE id = (SELECT id FROM collaboration"
            " WHERE letter_id = $1 AND change_type = 'edit' ORDER BY log_offset LIMIT 1)",
            LETTER,
        )
        bad = _bad(await verify_letter(src, LETTER))
    assert f"{OFFSET} -5 is negative: no log position is" in bad, bad
    assert "version 1 at position -3 is negative: no log position is" in bad, bad
    assert "audit edit row at position -1 is negative: no log position is" in bad, bad
    assert not [line for line in bad if "past the end" in line], bad
