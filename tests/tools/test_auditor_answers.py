"""What the auditor routes and tools answer at the edges an auditor meets: one time format for
every instant (versions like history and replay), a replay before the letter existed and a
history window ending before it starts said so (not an empty 200), and an instant whose `+`
a URL turned into a space named as such."""

import re
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from eventlog import Log
from gateway.auth import mint_token
from schemas.settings import Settings
from tests.tools.cli import cli_env, run_cli
from tests.tools.rest import auth, rest_client
from tests.tools.scripted import LETTER, scripted
from tests.tools.snapshots import snapshot_all
from tools.replay import Cut, NotYetCreated
from tools.timefmt import BadInstant, iso, parse_instant

BASE = f"/v1/letters/{LETTER}"
ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00")  # tools.timefmt.iso


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # the routes and commands are log-agnostic; tools are tested on both logs


@pytest_asyncio.fixture(loop_scope="session")
async def created_ms(settings: Settings, log: Log) -> int:
    """The scripted letter, snapshotted; the record time of its first record."""
    session, _ = await scripted(log, settings)
    await snapshot_all(settings, log)
    first = await log.read(session.topic, 0, 0, 1)
    return first[0].timestamp


@pytest_asyncio.fixture(loop_scope="session")
async def client(settings: Settings, log: Log, created_ms: int) -> AsyncIterator[httpx.AsyncClient]:
    async with rest_client(settings, log, settings.database_url, headers=auth(settings)) as http:
        yield http


async def test_versions_write_instants_as_history_and_replay_do(
    client: httpx.AsyncClient,
) -> None:
    versions = (await client.get(f"{BASE}/versions")).json()
    history = (await client.get(f"{BASE}/history")).json()
    listed = [v["created_at"] for v in versions]
    assert listed and all(ISO_MS.fullmatch(at) for at in listed), listed
    one = (await client.get(f"{BASE}/versions/1")).json()
    assert one["created_at"] == listed[0]
    assert all(ISO_MS.fullmatch(e["at"]) for e in history)
    replayed = (await client.get(f"{BASE}/replay", params={"at": listed[0]})).json()
    assert ISO_MS.fullmatch(replayed["as_of"]), replayed["as_of"]


async def test_a_replay_before_the_letter_existed_says_so(
    client: httpx.AsyncClient, settings: Settings, created_ms: int
) -> None:
    before = iso(created_ms - 1)
    answer = await client.get(f"{BASE}/replay", params={"at": before, "format": "text"})
    assert answer.status_code == 404, answer.text
    created = iso(created_ms)
    assert (
        answer.json()["detail"]
        == f"letter {LETTER} did not exist at {before}; created at {created}"
    )
    by_offset = await client.get(f"{BASE}/replay", params={"offset": 0})
    assert by_offset.status_code == 404
    assert by_offset.json()["detail"].startswith(f"letter {LETTER} did not exist at position 0;")
    assert (await client.get(f"{BASE}/replay", params={"at": created})).status_code == 200
    # No existence leak: another firm's auditor, or a letter that does not exist, as before.
    other = {"Authorization": f"Bearer {mint_token(settings, 'aud-2', 'other-firm', 'auditor')}"}
    for path, headers in ((BASE, other), ("/v1/letters/nope", None)):
        refused = await client.get(f"{path}/replay", params={"at": before}, headers=headers)
        assert (refused.status_code, refused.json()) == (403, {"detail": "forbidden"})

    code, out, err = await run_cli(cli_env(settings), "replay", LETTER, "--at", before)
    assert (code, out) == (1, "")
    assert (
        err
        == f"steno-collab replay: letter {LETTER} did not exist at {before}; created at {created}\n"
    )


async def test_a_history_window_that_ends_before_it_starts_is_refused(
    client: httpx.AsyncClient, settings: Settings, created_ms: int
) -> None:
    since, until = iso(created_ms + 1000), iso(created_ms)
    answer = await client.get(f"{BASE}/history", params={"since": since, "until": until})
    assert answer.status_code == 400
    assert answer.json()["detail"] == f"until ({until}) is before since ({since})"
    empty = await client.get(f"{BASE}/history", params={"since": since, "until": since})
    assert (empty.status_code, empty.json()) == (200, [])  # [since, since): empty, not backwards

    args = ("history", LETTER, "--since", since, "--until", until)
    code, out, err = await run_cli(cli_env(settings), *args)
    assert (code, out) == (2, "")  # a bad argument (README "Exit codes")
    assert err == f"steno-collab history: --until ({until}) is before --since ({since})\n"


def test_a_plus_a_url_decoded_as_a_space_is_named() -> None:
    with pytest.raises(BadInstant, match=r"encode \+ as %2B"):
        parse_instant("2026-12-06T07:52:11.084 01:00")
    with pytest.raises(BadInstant, match=r"e\.g\. 2026-11-27T10:00:00Z"):
        parse_instant("yesterday")
    assert parse_instant("2026-12-06 07:52:11.084+01:00") == parse_instant(
        "2026-12-06T06:52:11.084Z"
    )


async def test_the_rest_answer_to_an_unencoded_plus_says_to_encode_it(
    client: httpx.AsyncClient,
) -> None:
    # Sent as a client that builds the query by hand would: the `+` unencoded.
    answer = await client.get(f"{BASE}/history?since=2026-12-06T07:52:11.084+01:00")
    assert answer.status_code == 400
    detail = answer.json()["detail"]
    assert detail.startswith("'2026-12-06T07:52:11.084 01:00' is not an ISO-8601 instant")
    assert "encode + as %2B" in detail


def test_a_replay_of_the_latest_with_no_records_says_so() -> None:
    """No cut and nothing folded: the letter's records are not in this log (its only version
    came from another log layout), not "did not exist at position None"."""
    assert str(NotYetCreated("L", Cut(), None)) == "letter L has no records in the log"
    at = str(NotYetCreated("L", Cut(offset=3), 0))
    assert at == "letter L did not exist at position 3; created at 1970-01-01T00:00:00.000+00:00"
