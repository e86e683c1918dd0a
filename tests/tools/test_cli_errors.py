"""The commands' failures as an operator meets them: one stderr line and a documented exit code
(2: cannot run or a bad argument), never a traceback; on the embedded log, with real stores."""

import asyncio

import pytest
import redis.asyncio as aioredis

from eventlog import Log
from schemas.settings import Settings
from tests.tools.cli import cli_env, run_cli
from tests.tools.scripted import LETTER, scripted
from tests.tools.snapshots import snapshot_all
from tools.backfill import backfill
from tools.progress import Meter
from tools.sources import open_sources


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # the commands' code is log-agnostic


def one_line(code: int, err: str, expected: int = 2) -> None:
    assert code == expected, err
    assert "Traceback" not in err and err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("variable", "url", "command"),
    [
        ("STENO_REDIS_URL", "redis://127.0.0.1:1/0", ["verify", "--all"]),
        (
            "STENO_REDIS_URL",
            "redis://127.0.0.1:1/0",
            ["backfill", "projector", "--letters", LETTER],
        ),
        ("STENO_REDIS_URL", "redis://127.0.0.1:xx/0", ["verify", LETTER]),
        ("STENO_DATABASE_URL", "postgresql://postgres@127.0.0.1:xx/postgres", ["replay", LETTER]),
    ],  # a URL of another scheme is refused with the settings (tests/test_operator_errors.py)
    ids=["redis-down-verify", "redis-down-backfill", "redis-bad-url", "pg-bad-port"],
)
async def test_an_unusable_store_is_one_line_and_exit_2(
    settings: Settings, log: Log, variable: str, url: str, command: list[str]
) -> None:
    await scripted(log, settings)
    code, out, err = await run_cli(cli_env(settings, **{variable: url}), *command)
    one_line(code, err)
    store = "Redis" if variable == "STENO_REDIS_URL" else "PostgreSQL"
    assert err.startswith(f"steno-collab {command[0]}: {store} at ") and out == ""
    assert "secret" not in err  # the password of a URL is not shown


OUTSIDE_THE_YEARS = [
    ["history", LETTER, "--since", "0001-01-01T00:00:00+01:00"],
    ["history", LETTER, "--until", "9999-12-31T23:59:59-14:00"],
    ["replay", LETTER, "--at", "0001-01-01T00:00:00+01:00"],
    ["diff", LETTER, "--from", "0001-01-01T00:00:00+01:00", "--to", "2"],
]


async def test_an_instant_outside_the_years_1_to_9999_utc_is_a_bad_instant(
    settings: Settings, log: Log
) -> None:
    await scripted(log, settings)
    await snapshot_all(settings, log)
    env = cli_env(settings)  # the commands read, side by side: one letter set up for all
    runs = await asyncio.gather(*(run_cli(env, *command) for command in OUTSIDE_THE_YEARS))
    for command, (code, out, err) in zip(OUTSIDE_THE_YEARS, runs, strict=True):
        one_line(code, err)
        assert "outside the years 1-9999 UTC" in err and out == "", command


async def test_a_lowercase_z_is_utc(settings: Settings, log: Log) -> None:
    await scripted(log, settings)
    env = cli_env(settings)
    upper, lower = await asyncio.gather(
        run_cli(env, "replay", LETTER, "--at", "2999-11-27T10:00:00Z"),
        run_cli(env, "replay", LETTER, "--at", "2999-11-27t10:00:00z"),
    )
    assert lower == upper and upper[0] == 0


async def test_verify_reports_each_unknown_letter_and_verifies_the_others(
    settings: Settings, log: Log
) -> None:
    await scripted(log, settings)
    async with open_sources(settings, redis=True, pg=True) as src:
        await backfill(src, "all", meter=Meter(every_s=3600))
    env = cli_env(settings)
    code, out, err = await run_cli(env, "verify", "no-such-letter", LETTER, "other one")
    assert code == 2, err
    assert err.splitlines() == [
        "steno-collab verify: no letter 'no-such-letter' in the log",
        "steno-collab verify: no letter 'other one' in the log",
    ]
    assert f"ok       {LETTER} redis" in out and f"ok       {LETTER} postgres" in out
    assert out.endswith(
        "verified 1 letter(s): 0 mismatch(es), 0 quarantined record(s), 2 unknown letter(s)\n"
    )


async def test_backfill_refuses_unknown_letters_before_writing(
    settings: Settings, log: Log
) -> None:
    await scripted(log, settings)
    env = cli_env(settings)
    code, out, err = await run_cli(env, "backfill", "all", "--letters", "nope", LETTER, "bad id!")
    one_line(code, err)
    assert (
        err
        == "steno-collab backfill: no letter 'nope', 'bad id!' in the log: nothing was written\n"
    )
    assert out == ""
    assert settings.redis_url is not None
    redis = aioredis.Redis.from_url(settings.redis_url)
    try:
        assert await redis.keys("*") == []
    finally:
        await redis.aclose()


async def test_backfill_letters_names_what_the_snapshotter_will_build_itself(
    settings: Settings, log: Log
) -> None:
    await scripted(log, settings)  # the snapshotter has stored no position yet
    code, out, err = await run_cli(cli_env(settings), "backfill", "all", "--letters", LETTER)
    assert code == 0, err
    assert "projector letters: 1 letters to fold" in err
    assert "projector: 1 letter in " in out
    assert "snapshotter: 0 events in" in out and f"(not rebuilt: {LETTER}; the snapshotter" in out


async def test_replay_out_to_an_unwritable_path_is_one_line_and_exit_2(
    settings: Settings, log: Log
) -> None:
    await scripted(log, settings)
    code, out, err = await run_cli(
        cli_env(settings), "replay", LETTER, "--out", "/nonexistent/dir/x.txt"
    )
    one_line(code, err)
    assert err.startswith("steno-collab replay: cannot write the output: ") and out == ""
    assert "/nonexistent/dir/x.txt" in err
