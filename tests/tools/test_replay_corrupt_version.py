"""A version whose saved Yjs state does not decode is skipped by replay (and so by diff): it
starts from the version before it, else the log alone, says so once (the letter and the version),
and answers what the log alone gives, in the CLI and over REST alike."""

import asyncpg
import httpx
import pytest
import pytest_asyncio

from eventlog import Log
from gateway.auth import mint_token
from schemas.settings import Settings
from steno_collab.services import gateway_app
from tests.tools.cli import cli_env, run_cli
from tests.tools.scripted import LETTER, scripted
from tests.tools.session import FIRM
from tests.tools.snapshots import snapshot_all
from tools.diff import diff, format_text, resolve_point
from tools.replay import Cut, Replayed, replay
from tools.sources import open_sources

GARBAGE = b"\xde\xad\xbe\xef\x01\x02\x03\x04"  # pycrdt: "Cannot decode update"


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # the fallback is PostgreSQL's side; the log is read as in every replay


@pytest_asyncio.fixture(loop_scope="session")
async def times(settings: Settings, log: Log) -> list[int]:
    """The scripted letter folded by the snapshotter (versions 1 and 2); their record times."""
    _, instants = await scripted(log, settings)
    await snapshot_all(settings, log)
    return instants


async def _corrupt(settings: Settings, *numbers: int) -> None:
    async with open_sources(settings, pg=True) as src:
        await src.pg.execute(
            "UPDATE letter_version SET ydoc_state = $3 WHERE letter_id = $1"
            " AND version_number = ANY($2::int[])",
            LETTER, list(numbers), GARBAGE,
        )  # fmt: skip


async def _both(settings: Settings, cut: Cut) -> tuple[Replayed, Replayed]:
    """The replay through the versions, and the log-only one."""
    async with open_sources(settings, pg=True) as src:
        got = await replay(src, LETTER, cut)
    async with open_sources(settings, pg=False) as src:
        return got, await replay(src, LETTER, cut)


def auth(settings: Settings, role: str = "auditor") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, 'aud-1', FIRM, role)}"}


def _same(got: Replayed, alone: Replayed) -> None:
    assert (got.state, got.position, got.snapshot) == (alone.state, alone.position, alone.snapshot)


async def test_replay_skips_a_corrupt_version(
    settings: Settings, times: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    await _corrupt(settings, 2)
    for cut in (Cut(), Cut(at_ms=times[1]), Cut(at_ms=times[0])):
        caplog.clear()
        got, alone = await _both(settings, cut)
        _same(got, alone)
        assert got.base_version == 1
        skipped = [r.getMessage() for r in caplog.records if "does not decode" in r.getMessage()]
        assert len(skipped) == (0 if cut.at_ms == times[0] else 1)  # version 2 is after that
        assert all(LETTER in m and "version 2" in m for m in skipped)
    async with open_sources(settings, pg=True) as src:
        changes = await diff(src, LETTER, await resolve_point(src, LETTER, "1"), Cut())
    assert "+Regards" in format_text(changes)
    await _corrupt(settings, 1)  # every version: the log alone
    caplog.clear()
    got, alone = await _both(settings, Cut())
    _same(got, alone)
    assert got.base_version is None and "Regards" in got.snapshot.content
    assert len([r for r in caplog.records if "does not decode" in r.getMessage()]) == 2


async def test_cli_replay_falls_back_and_says_so_once(settings: Settings, times: list[int]) -> None:
    await _corrupt(settings, 2)
    env = cli_env(settings)
    code, out, err = await run_cli(env, "replay", LETTER, "--bare")
    assert code == 0, err
    assert (code, out) == (0, (await run_cli(env, "replay", LETTER, "--no-versions", "--bare"))[1])
    assert out == "Sir,\nWe write about the claim\nRegards\n"
    [line] = [line for line in err.splitlines() if line.strip()]
    assert LETTER in line and "version 2" in line and "does not decode" in line


async def test_rest_reads_a_letter_whose_latest_version_is_corrupt(
    settings: Settings, log: Log, times: list[int]
) -> None:
    await _corrupt(settings, 2)
    pg = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    app = gateway_app(settings, log, None, pg)
    base, headers = f"/v1/letters/{LETTER}", auth(settings)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            text = await http.get(f"{base}/replay", params={"format": "text"}, headers=headers)
            assert (text.status_code, text.text) == (
                200,
                "Sir,\nWe write about the claim\nRegards\n",
            )
            changes = await http.get(
                f"{base}/diff", params={"from": "1", "to": "2"}, headers=headers
            )
            assert changes.status_code == 200, changes.text
            assert [h["added"] for h in changes.json()["hunks"]] == [["Sir,"], ["Regards"]]
            editor = auth(settings, role="editor")
            letter = await http.get(base, headers=editor)
            assert letter.status_code == 200, letter.text
            assert letter.json()["content"] == "Sir,\nWe write about the claim\nRegards"
    finally:
        await pg.close()
