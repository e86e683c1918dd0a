"""`verify` checks every row the readers show, wherever it says it comes from, and the `letters`
row; a position the letter's log cannot have is a mismatch; times are ISO-8601.

`history`, `GET /versions/{n}` and the gateway's letter list read every row of a letter (or of a
firm), whatever log position it claims: a row forged with another partition, a `letters` row
moved to another firm, or a Redis position past the partition's end must each make `verify`
exit 1 naming it, not pass as "ok".
"""

import re
from collections.abc import Awaitable, Callable

import pytest

from eventlog import Log
from schemas.settings import Settings
from tests.tools.cli import cli_env, run_cli
from tests.tools.scripted import LETTER, scripted
from tests.tools.session import FIRM
from tools.backfill import backfill
from tools.progress import Meter
from tools.sources import Sources, open_sources

Tamper = Callable[[Sources], Awaitable[None]]


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # the checks are of the stores; the log is read as on Kafka


async def _forge_foreign_version(src: Sources) -> None:
    """The reviewer's forged version: version 1's row as a version 3 claiming partition 99."""
    status = await src.pg.execute(
        "INSERT INTO letter_version SELECT letter_id, 3, 'FORGED: we waive all claims',"
        " document, ydoc_state, log_topic, 99, log_offset, change_data, now()"
        " FROM letter_version WHERE letter_id = $1 AND version_number = 1",
        LETTER,
    )
    assert status == "INSERT 0 1"


async def _forge_foreign_audit(src: Sources) -> None:
    status = await src.pg.execute(
        "INSERT INTO collaboration (id, letter_id, user_id, change_type, change_data,"
        " timestamp, log_topic, log_partition, log_offset) SELECT gen_random_uuid(), letter_id,"
        " 'mallory', 'edit', '{\"inserted\": 500, \"deleted\": 40}', now(), log_topic, 99, 1"
        " FROM letters WHERE letter_id = $1",
        LETTER,
    )
    assert status == "INSERT 0 1"


async def _move_to_another_firm(src: Sources) -> None:
    await src.pg.execute("UPDATE letters SET firm_id = 'other-firm' WHERE letter_id = $1", LETTER)


async def _retitle(src: Sources) -> None:
    await src.pg.execute("UPDATE letters SET title = 'Settlement' WHERE letter_id = $1", LETTER)


async def _redis_past_the_end(src: Sources) -> None:
    assert src.redis is not None
    await src.redis.set(f"ydoc:{LETTER}:offset", "99999", keepttl=True)


async def _redate_version(src: Sources) -> None:
    await src.pg.execute(
        "UPDATE letter_version SET created_at = created_at + interval '1 hour'"
        " WHERE letter_id = $1 AND version_number = 1",
        LETTER,
    )


# Each tampering and the line it must give (all applied at once: each is of another row or store).
TAMPERED: list[tuple[Tamper, str]] = [
    (
        _forge_foreign_version,
        "postgres: version 3 at position {v1} claims partition 99 of {topic}, not this"
        " letter's log (partition 0 of {topic})",
    ),
    (
        _forge_foreign_audit,
        "postgres: audit edit row at position 1 claims partition 99 of {topic}, not this"
        " letter's log (partition 0 of {topic})",
    ),
    (
        _move_to_another_firm,
        f'postgres: letters row: firm_id stored "other-firm" where the log has "{FIRM}"',
    ),
    (_retitle, 'postgres: letters row: title stored "Settlement" where the log has'),
    (
        _redis_past_the_end,
        f"redis: ydoc:{LETTER}:offset 99999 is past the end of its partition"
        " (partition 0 of {topic} ends at {end})",
    ),
    (_redate_version, 'postgres: version 1: created_at stored "{iso}" where the log has "{iso}"'),
]


async def test_misplaced_rows_and_positions_are_mismatches(settings: Settings, log: Log) -> None:
    await scripted(log, settings)
    async with open_sources(settings, redis=True, pg=True) as src:
        await backfill(src, "all", meter=Meter(every_s=3600))
        topic = src.letters_topic
        end = (await log.end_offsets(topic))[0]
        v1 = await src.pg.fetchval(
            "SELECT log_offset FROM letter_version WHERE letter_id = $1 AND version_number = 1",
            LETTER,
        )
    code, out, err = await run_cli(cli_env(settings), "verify", LETTER)
    assert code == 0 and "0 mismatch(es)" in out, out + err
    assert "letters row equals the log's" in out, out
    async with open_sources(settings, redis=True, pg=True) as src:
        for tamper, _ in TAMPERED:
            await tamper(src)
    code, out, err = await run_cli(cli_env(settings), "verify", LETTER, "--quiet")
    assert "Traceback" not in err, err
    assert code == 1, out
    iso = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00"
    for _, expected in TAMPERED:
        want = re.escape(expected.format(v1=v1, topic=topic, end=end, iso="ISO"))
        assert re.search(f"MISMATCH {LETTER} " + want.replace("ISO", iso), out), (expected, out)
    assert not re.search(r"\d{13}", out), out  # no epoch milliseconds
    assert f"{len(TAMPERED)} mismatch(es)" in out, out  # nothing else differs
