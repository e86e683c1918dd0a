"""The auditor REST endpoints, mounted on a real gateway app, on both logs."""

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from eventlog import Log
from gateway.auth import mint_token
from schemas.settings import Settings
from steno_collab.services import gateway_app
from tests.tools.rest import auth, rest_client
from tests.tools.scripted import LETTER, scripted
from tests.tools.session import FIRM
from tests.tools.snapshots import snapshot_all


@pytest_asyncio.fixture(loop_scope="session")
async def client(settings: Settings, log: Log) -> AsyncIterator[httpx.AsyncClient]:
    await scripted(log, settings)
    await snapshot_all(settings, log)
    async with rest_client(settings, log, settings.database_url) as http:
        yield http


async def test_auditor_reads(client: httpx.AsyncClient, settings: Settings) -> None:
    base, headers = f"/v1/letters/{LETTER}", auth(settings)
    history = (await client.get(f"{base}/history", headers=headers)).json()
    assert [e["type"] for e in history].count("version") == 2
    replayed = await client.get(f"{base}/replay", params={"offset": 3}, headers=headers)
    assert replayed.json()["content"] == "Dear Sir,\nWe write about"
    assert replayed.headers["replay-position"] == "3" and "replay-note" not in replayed.headers
    text = await client.get(f"{base}/replay", params={"format": "text"}, headers=headers)
    assert text.text == "Sir,\nWe write about the claim\nRegards\n"
    assert text.headers["replay-base-version"] == "2"  # the body alone; the cut in headers
    whole = (await client.get(f"{base}/replay", headers=headers)).json()  # the same cut, JSON
    assert text.headers["replay-as-of"] == whole["as_of"]
    assert text.headers["replay-position"] == str(whole["position"])
    later = await client.get(
        f"{base}/replay", params={"at": "2999-01-01T00:00:00Z"}, headers=headers
    )
    assert later.json()["content"] == "Sir,\nWe write about the claim\nRegards"
    assert later.headers["replay-note"].startswith("later than this replay")
    html = await client.get(f"{base}/replay", params={"format": "html"}, headers=headers)
    assert html.headers["content-type"].startswith("text/html") and "<p>Regards</p>" in html.text
    csp = html.headers["content-security-policy"]  # editors wrote this page: no script, no loads
    assert "sandbox" in csp and "default-src 'none'" in csp and "script" not in csp
    assert "img-src data:;" in csp  # but its own images and alignment/colours show
    assert html.headers["x-content-type-options"] == "nosniff"
    versions = (await client.get(f"{base}/versions", headers=headers)).json()
    assert [v["change_data"]["label"] for v in versions] == ["draft", "final"]
    one = (await client.get(f"{base}/versions/1", headers=headers)).json()
    assert one["content"] == "Dear Sir,\nWe write about the claim"
    diff = await client.get(f"{base}/diff", params={"from": "1", "to": "2"}, headers=headers)
    hunks = diff.json()["hunks"]
    assert [(h["added"], h["authors"]) for h in hunks] == [
        (["Sir,"], ["user-1"]),
        (["Regards"], ["user-2"]),
    ]
    service = auth(settings, role="service", firm="another-firm")
    assert (await client.get(f"{base}/versions", headers=service)).status_code == 200


async def test_refusals(client: httpx.AsyncClient, settings: Settings) -> None:
    base, headers = f"/v1/letters/{LETTER}", auth(settings)
    assert (await client.get(f"{base}/history")).status_code == 401
    for who in (auth(settings, role="editor"), auth(settings, firm="another-firm")):
        assert (await client.get(f"{base}/history", headers=who)).status_code == 403
    assert (await client.get("/v1/letters/nope/history", headers=headers)).status_code == 403
    bad = await client.get(f"{base}/replay", params={"at": "noon"}, headers=headers)
    assert bad.status_code == 400 and "ISO-8601" in bad.json()["detail"]
    both = await client.get(
        f"{base}/replay", params={"at": "2026-01-01", "offset": 1}, headers=headers
    )
    assert both.status_code == 400
    missing = await client.get(f"{base}/versions/99", headers=headers)
    assert missing.status_code == 404 and "no version 99" in missing.json()["detail"]
    diff = await client.get(f"{base}/diff", params={"from": "1", "to": "7"}, headers=headers)
    assert diff.status_code == 404 and "no version 7" in diff.json()["detail"]
    # Numbers PostgreSQL's int cannot hold, and digits that int() does not take: no version.
    huge = await client.get(f"{base}/versions/{2**70}", headers=headers)
    assert huge.status_code == 404 and f"no version {2**70}" in huge.json()["detail"]
    for point in (str(2**70), "²", "٣"):
        diff = await client.get(f"{base}/diff", params={"from": point, "to": "1"}, headers=headers)
        assert diff.status_code in (400, 404), (point, diff.text)
    backwards = await client.get(f"{base}/diff", params={"from": "2", "to": "1"}, headers=headers)
    assert backwards.status_code == 400


async def test_instants_outside_the_years_1_to_9999_utc_are_refused(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    base, headers = f"/v1/letters/{LETTER}", auth(settings)
    for route, params in [
        ("replay", {"at": "0001-01-01T00:00:00+01:00"}),
        ("history", {"until": "9999-12-31T23:59:59-14:00"}),
        ("diff", {"from": "0001-01-01T00:00:00+01:00", "to": "2"}),
    ]:
        answer = await client.get(f"{base}/{route}", params=params, headers=headers)
        assert answer.status_code == 400, (route, answer.text)
        assert "outside the years 1-9999 UTC" in answer.json()["detail"]


async def test_auditors_draw_on_the_users_request_budget(settings: Settings, log: Log) -> None:
    """One budget per user across the gateway's routes and the auditors' (429, Retry-After)."""
    await scripted(log, settings)
    budget = settings.model_copy(update={"rest_requests_burst": 3, "rest_requests_per_s": 0.01})
    app = gateway_app(budget, log, None, None)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        headers, base = auth(settings), f"/v1/letters/{LETTER}"
        for _ in range(2):
            assert (await http.get(f"{base}/history", headers=headers)).status_code == 200
        assert (await http.get(base, headers=headers)).status_code == 200  # a gateway route
        refused = await http.get(f"{base}/replay", headers=headers)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert (await http.get(base, headers=headers)).status_code == 429
        other = {"Authorization": f"Bearer {mint_token(settings, 'aud-2', FIRM, 'auditor')}"}
        assert (await http.get(f"{base}/history", headers=other)).status_code == 200
