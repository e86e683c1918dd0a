"""REST history with PostgreSQL while the snapshotter is behind: the audit trail's rows plus the
letter's records past the snapshotter's position folded on the spot from its saved state, the
same entries as the log's fold, in pages alike; other letters' records past it cost no fold."""

from typing import Any

import httpx
import pytest

from eventlog import Log
from schemas.events import Topic
from schemas.settings import Settings
from snapshotter import read
from tests.snapshotter.scripts import LetterScript, append
from tests.tools.rest import auth
from tests.tools.snapshots import run_to_end
from tests.tools.snapshotter_behind import LETTER, client, folded_then_more, folds
from tools import history as histories
from tools.history import history
from tools.sources import open_sources

__all__ = ["client", "folds"]  # the fixtures
BASE = f"/v1/letters/{LETTER}/history"


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # PostgreSQL's seam with the log is under test, not the log


async def _one_folded_one_not(log: Log, settings: Settings) -> tuple[LetterScript, str]:
    """Version 1 saved and folded into PostgreSQL; version 2 saved in the log only."""
    s, topic = LetterScript(LETTER), settings.topic(Topic.LETTERS)
    await append(log, topic, [s.created("alice"), s.paragraph("alice", "Dear Sir,"),
                              s.save("alice", "first")])  # fmt: skip
    await run_to_end(log, settings)
    await append(log, topic, [s.paragraph("bob", "Regards"), s.save("bob", "second")])
    return s, topic


async def _walk(client: httpx.AsyncClient, settings: Settings, order: str) -> list[Any]:
    entries: list[Any] = []
    params: dict[str, str | int] = {"limit": 2, "order": order}
    while True:
        r = await client.get(BASE, params=params, headers=auth(settings, firm="firm-1"))
        assert r.status_code == 200, r.text
        entries += r.json()
        if "X-Next-Cursor" not in r.headers:
            return entries
        params["after"] = r.headers["X-Next-Cursor"]


async def test_rest_history_includes_what_the_snapshotter_has_not_folded(
    client: httpx.AsyncClient, settings: Settings, log: Log
) -> None:
    await folded_then_more(log, settings)
    async with open_sources(settings) as src:
        from_log = [e.to_json() for e in await history(src, LETTER)]
    r = await client.get(BASE, headers=auth(settings, firm="firm-1"))
    assert r.status_code == 200, r.text
    assert r.json() == from_log
    kinds = [(e["type"], e["user"]) for e in r.json()]
    assert ("comment.created", "bob") in kinds and ("lock.acquired", "bob") in kinds
    assert ("session-start", "carol") in kinds and ("session-end", "alice") in kinds
    # The burst open across the snapshotter's position, whole, under its folded start.
    (burst,) = [e for e in r.json() if e["type"] == "edit" and not e["data"].get("initial")]
    assert (burst["user"], burst["data"]["inserted"]) == ("alice", 4)
    bodies = [e["data"].get("body") for e in r.json() if e["type"] == "comment.created"]
    assert bodies == ["first", "not folded yet"]
    # Pages cut alike across the seam, in either order.
    assert await _walk(client, settings, "asc") == from_log
    assert await _walk(client, settings, "desc") == from_log[::-1]


async def test_other_letters_records_past_the_position_fold_nothing(
    client: httpx.AsyncClient, settings: Settings, log: Log, folds: list[str]
) -> None:
    """A busy partition: the snapshotter a few records behind with another letter's records.
    The letter's state is not loaded nor anything folded: its audit rows are the whole."""
    s = await folded_then_more(log, settings)
    await run_to_end(log, settings)
    whole = (await client.get(BASE, headers=auth(settings, firm="firm-1"))).json()
    other = LetterScript("L-busy")
    await append(log, settings.topic(Topic.LETTERS), [other.created("dan"),
                 other.paragraph("dan", "x")])  # fmt: skip
    assert (await client.get(BASE, headers=auth(settings, firm="firm-1"))).json() == whole
    assert folds == []
    # And one of its own records past it is folded from its state alone.
    await append(log, settings.topic(Topic.LETTERS), [s.comment("bob", "t3", "c3", "late")])
    late = (await client.get(BASE, headers=auth(settings, firm="firm-1"))).json()
    assert late[:-1] == whole and late[-1]["data"]["body"] == "late"
    assert folds == [LETTER]


async def test_far_behind_the_log_alone_is_folded(
    client: httpx.AsyncClient,
    settings: Settings,
    log: Log,
    folds: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A snapshotter stopped long ago: each request would read the whole stretch past its
    position; past `TAIL_MAX` records the log's own fold answers (the same entries)."""
    await folded_then_more(log, settings)
    async with open_sources(settings) as src:
        from_log = [e.to_json() for e in await history(src, LETTER)]
    monkeypatch.setattr(histories, "TAIL_MAX", 2)
    assert (await client.get(BASE, headers=auth(settings, firm="firm-1"))).json() == from_log
    assert folds == []
    monkeypatch.setattr(histories, "TAIL_MAX", 5_000)
    assert (await client.get(BASE, headers=auth(settings, firm="firm-1"))).json() == from_log
    assert folds == [LETTER]


async def test_a_version_history_names_but_postgresql_lacks_yet_is_503_not_404(
    client: httpx.AsyncClient, settings: Settings, log: Log
) -> None:
    """History folds past the snapshotter, so it names a version PostgreSQL lacks yet: that
    version's route and a diff to it answered 404 (final) where they should say "not yet"."""
    await _one_folded_one_not(log, settings)
    headers = auth(settings, firm="firm-1")
    timeline = (await client.get(BASE, headers=headers)).json()
    assert [e["data"]["version_number"] for e in timeline if e["type"] == "version"] == [1, 2]
    one = await client.get(f"{BASE.removesuffix('/history')}/versions/2", headers=headers)
    between = await client.get(
        f"{BASE.removesuffix('/history')}/diff", params={"from": "1", "to": "2"}, headers=headers
    )
    for answer in (one, between):
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == "1" and "not folded" in answer.json()["detail"]
    # Two records past PostgreSQL's latest (1) cut two versions at most: a 9th is not among them.
    # The version not folded yet decides, whichever end it is (not the larger number's).
    mixed = await client.get(
        f"{BASE.removesuffix('/history')}/diff", params={"from": "2", "to": "9"}, headers=headers
    )
    assert mixed.status_code == 503, mixed.text
    for number in (0, 9):  # nor a version 0
        never = await client.get(
            f"{BASE.removesuffix('/history')}/versions/{number}", headers=headers
        )
        assert never.status_code == 404, never.text
    await run_to_end(log, settings)
    assert (
        await client.get(f"{BASE.removesuffix('/history')}/versions/2", headers=headers)
    ).is_success
    gone = await client.get(f"{BASE.removesuffix('/history')}/versions/3", headers=headers)
    assert gone.status_code == 404  # folded to the end: final


async def test_a_version_committed_while_it_was_looked_for_is_served_not_404(
    client: httpx.AsyncClient, settings: Settings, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The snapshotter commits version 2 between the route's lookup (a miss) and its look at
    PostgreSQL's latest (2 now): that answered 404 "has no version 2" for a version just saved
    (found by an integrator polling right after the 202); now it is looked up again."""
    s, topic = await _one_folded_one_not(log, settings)
    headers = auth(settings, firm="firm-1")
    latest = read.latest_version

    async def folded_meanwhile(pg: Any, letter_id: str) -> Any:  # the race, made to happen
        await run_to_end(log, settings)
        return await latest(pg, letter_id)

    monkeypatch.setattr(read, "latest_version", folded_meanwhile)
    one = await client.get(f"{BASE.removesuffix('/history')}/versions/2", headers=headers)
    assert one.status_code == 200, one.text
    assert one.json()["version_number"] == 2
    await append(log, topic, [s.paragraph("bob", "Yours"), s.save("bob", "third")])
    between = await client.get(
        f"{BASE.removesuffix('/history')}/diff", params={"from": "2", "to": "3"}, headers=headers
    )
    assert between.status_code == 200, between.text
    assert between.json()["to"]["version"] == 3


async def test_a_version_committed_between_the_routes_two_reads_is_served(
    client: httpx.AsyncClient, settings: Settings, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit lands between the look at the records not folded and the look at the latest
    version: read the other way round, version 2 fell between them (404; re-read rrB)."""
    await _one_folded_one_not(log, settings)
    headers = auth(settings, firm="firm-1")
    unfolded = histories.unfolded

    async def folded_meanwhile(src: Any, letter_id: str) -> int:
        result = await unfolded(src, letter_id)
        await run_to_end(log, settings)  # version 2 committed right after that read
        return result

    monkeypatch.setattr(histories, "unfolded", folded_meanwhile)
    r = await client.get(f"{BASE.removesuffix('/history')}/versions/2", headers=headers)
    assert r.status_code == 200, r.text


async def test_a_diffs_other_end_not_folded_after_a_retry_is_503(
    client: httpx.AsyncClient, settings: Settings, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`from` is committed while the route looks for it, and `to` is saved meanwhile and not
    folded: the retry's miss of `to` answered 404 (final), where history names it (re-read)."""
    s, topic = await _one_folded_one_not(log, settings)
    headers = auth(settings, firm="firm-1")
    latest, calls = read.latest_version, []

    async def folded_meanwhile(pg: Any, letter_id: str) -> Any:
        calls.append(1)
        if len(calls) == 1:
            await run_to_end(log, settings)  # version 2 committed
            await append(log, topic, [s.paragraph("bob", "Yours"), s.save("bob", "third")])
        return await latest(pg, letter_id)

    monkeypatch.setattr(read, "latest_version", folded_meanwhile)
    r = await client.get(
        f"{BASE.removesuffix('/history')}/diff", params={"from": "2", "to": "3"}, headers=headers
    )
    assert r.status_code == 503 and "not folded" in r.json()["detail"], r.text
