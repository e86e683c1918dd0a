"""The auditors' history in pages (`limit`, `after`, `Link` / `X-Next-Cursor`), oldest or newest
first (`order`), from PostgreSQL and from the log alone, on both logs: a walk is the unpaginated
history (reversed, newest first), even while it grows."""

import base64
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from eventlog import Log
from schemas import Anchor, CommentCreated
from schemas.settings import Settings
from tests.tools.rest import auth, rest_client
from tests.tools.scripted import LETTER, scripted
from tests.tools.session import Client, Session
from tests.tools.snapshots import snapshot_all
from tools.timefmt import parse_instant

BASE = f"/v1/letters/{LETTER}/history"
Entries = list[dict[str, Any]]


@pytest.fixture(params=["postgres", "log"])
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture(loop_scope="session")
async def client(settings: Settings, log: Log, store: str) -> AsyncIterator[httpx.AsyncClient]:
    await scripted(log, settings)
    await snapshot_all(settings, log)
    dsn = settings.database_url if store == "postgres" else None
    async with rest_client(settings, log, dsn) as http:
        yield http


async def _page(http: httpx.AsyncClient, settings: Settings, url: str, **params: Any) -> Any:
    # No params at all for a Link URL: httpx would replace its query with an empty one.
    answer = await http.get(url, params=params or None, headers=auth(settings))
    assert answer.status_code == 200, answer.text
    return answer


async def _walk(
    http: httpx.AsyncClient, settings: Settings, limit: int, **params: Any
) -> tuple[Entries, int]:
    """Every page from the first, following `Link: rel="next"`; the entries and the page count."""
    answer = await _page(http, settings, BASE, limit=limit, **params)
    entries, pages = answer.json(), 1
    while "link" in answer.headers:
        assert len(answer.json()) == limit  # only a full page says that more follow
        link = answer.headers["link"]
        assert link.startswith("</v1/letters/") and link.endswith('>; rel="next"')
        answer = await _page(http, settings, link[1 : -len('>; rel="next"')])
        entries += answer.json()
        pages += 1
    assert "x-next-cursor" not in answer.headers
    return entries, pages


async def test_walking_the_pages_gives_the_whole_history_in_order(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    whole = (await _page(client, settings, BASE)).json()
    assert len(whole) >= 10
    for limit in (1, 2, 3, len(whole) - 1, len(whole), len(whole) + 1):
        walked, pages = await _walk(client, settings, limit)
        assert walked == whole, limit
        assert pages == max(1, -(-len(whole) // limit)), limit
    # since/until narrow the walk exactly as they narrow one page.
    since, until = whole[2]["at"], whole[-2]["at"]
    narrowed = (await _page(client, settings, BASE, since=since, until=until)).json()
    assert narrowed and (await _walk(client, settings, 2, since=since, until=until))[0] == narrowed


async def test_walking_newest_first_gives_the_whole_history_reversed(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    whole = (await _page(client, settings, BASE)).json()
    assert len(whole) >= 10
    assert (await _page(client, settings, BASE, order="asc")).json() == whole  # the default
    assert (await _page(client, settings, BASE, order="desc")).json() == whole[::-1]
    for limit in (1, 2, 3, len(whole) - 1, len(whole), len(whole) + 1):
        walked, pages = await _walk(client, settings, limit, order="desc")
        assert walked == whole[::-1], limit
        assert pages == max(1, -(-len(whole) // limit)), limit
    since, until = whole[2]["at"], whole[-2]["at"]
    narrowed = (await _page(client, settings, BASE, since=since, until=until)).json()
    assert narrowed and narrowed != whole
    walked, _ = await _walk(client, settings, 2, since=since, until=until, order="desc")
    assert walked == narrowed[::-1]
    # The cursor is the same key in both orders: from an entry, asc goes on after it, desc
    # before it.
    middle = whole[len(whole) // 2]
    at = _token(f"{parse_instant(middle['at'])}:0:{middle['offset']}:{middle['type']}")
    after = (await _page(client, settings, BASE, after=at)).json()
    before = (await _page(client, settings, BASE, after=at, order="desc")).json()
    assert [*before[::-1], middle, *after] == whole


async def test_records_appended_between_pages_come_in_later_pages_once(
    client: httpx.AsyncClient, settings: Settings, log: Log, store: str
) -> None:
    first = await _page(client, settings, BASE, limit=3)
    walked: Entries = first.json()
    cursor = first.headers["x-next-cursor"]
    assert first.headers["link"] == f'<{BASE}?after={cursor}&limit=3>; rel="next"'
    # A later session: joins, comments, leaves, while the auditor is on page 1.
    late = Session(log, settings, LETTER, random.Random(9))
    visitor = Client("user-9")
    await late.join(visitor)
    anchor = Anchor(start="AA==", end="AA==", quote="Sir")
    await late.append(
        CommentCreated(thread_id="t9", comment_id="c9", anchor=anchor, body="late"), visitor.user
    )
    await late.leave(visitor)
    if store == "postgres":
        await snapshot_all(settings, log)
    answer = await _page(client, settings, BASE, limit=3, after=cursor)
    walked += answer.json()
    while "x-next-cursor" in answer.headers:
        answer = await _page(client, settings, BASE, limit=3, after=answer.headers["x-next-cursor"])
        walked += answer.json()
    whole = (await _page(client, settings, BASE)).json()
    assert walked == whole
    assert [e["type"] for e in whole[-3:]] == ["session-start", "comment.created", "session-end"]
    assert len({(e["offset"], e["type"]) for e in walked}) == len(walked)  # no entry twice


async def test_records_appended_during_a_newest_first_walk_are_not_in_it(
    client: httpx.AsyncClient, settings: Settings, log: Log, store: str
) -> None:
    before = (await _page(client, settings, BASE)).json()
    first = await _page(client, settings, BASE, limit=3, order="desc")
    walked: Entries = first.json()
    cursor = first.headers["x-next-cursor"]
    assert first.headers["link"] == f'<{BASE}?order=desc&after={cursor}&limit=3>; rel="next"'
    late = Session(log, settings, LETTER, random.Random(9))
    visitor = Client("user-9")
    await late.join(visitor)
    anchor = Anchor(start="AA==", end="AA==", quote="Sir")
    await late.append(
        CommentCreated(thread_id="t9", comment_id="c9", anchor=anchor, body="late"), visitor.user
    )
    await late.leave(visitor)
    if store == "postgres":
        await snapshot_all(settings, log)
    answer = await _page(client, settings, first.headers["link"][1 : -len('>; rel="next"')])
    walked += answer.json()
    while "x-next-cursor" in answer.headers:
        after = answer.headers["x-next-cursor"]
        answer = await _page(client, settings, BASE, limit=3, order="desc", after=after)
        walked += answer.json()
    assert walked == before[::-1]  # each entry of the walk's start once, none of the later ones
    whole = (await _page(client, settings, BASE)).json()
    assert whole[: len(before)] == before
    assert [e["type"] for e in whole[len(before) :]] == [
        "session-start",
        "comment.created",
        "session-end",
    ]


async def test_bad_limits_and_cursors_are_422_with_a_reason(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    headers = auth(settings)
    for limit in ("0", "-1", "10001", "many"):
        answer = await client.get(BASE, params={"limit": limit}, headers=headers)
        assert answer.status_code == 422, (limit, answer.text)
        assert answer.json()["detail"].startswith("invalid request: query.limit: "), answer.text
    assert (await client.get(BASE, params={"limit": 10_000}, headers=headers)).status_code == 200
    for order in ("", "up", "DESC", "newest"):
        answer = await client.get(BASE, params={"order": order}, headers=headers)
        assert answer.status_code == 422, (order, answer.text)
        assert answer.json()["detail"].startswith("invalid request: query.order: "), answer.text
    forged = [
        "not-a-cursor",
        "",
        "%%%",
        _token("1:0:3"),  # no type
        _token(f"1:0:{2**63}:edit"),  # past PostgreSQL's bigint
        _token(f"1:{2**31}:3:edit"),  # past its int
        _token("999999999999999:0:3:edit"),  # after the year 9999
        _token("1:0:3:edit\nx"),
    ]
    for after in forged:
        answer = await client.get(BASE, params={"after": after}, headers=headers)
        assert answer.status_code == 422, (after, answer.text)
        detail = answer.json()["detail"]
        assert detail.startswith("invalid request: query.after: "), answer.text
        assert detail.endswith("is not a cursor of this history"), answer.text
    # A cursor past the last entry is a valid, empty page.
    whole = (await _page(client, settings, BASE)).json()
    last = _token(f"{parse_instant(whole[-1]['at'])}:0:{whole[-1]['offset']}:{whole[-1]['type']}")
    assert (await _page(client, settings, BASE, after=last)).json() == []
    first = _token(f"{parse_instant(whole[0]['at'])}:0:{whole[0]['offset']}:{whole[0]['type']}")
    assert (await _page(client, settings, BASE, after=first, order="desc")).json() == []


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
