"""`POST /v1/letters` with content draws the content's bytes from the user's budget of update
bytes, as any update does (the letters topic is kept forever): over it, 429 with Retry-After
and nothing logged. Service tokens' updates are budgeted too (gateway/live/writes.py), so their
creates are."""

from pathlib import Path
from typing import Any

import httpx

from schemas.events import Topic
from schemas.settings import Settings
from tests.gateway.harness import Running, running_gateway

BUDGET: dict[str, Any] = {"update_bytes_burst": 1 << 20, "update_bytes_per_s": 1024}


async def _logged(gw: Running) -> int:
    return sum((await gw.log.end_offsets(gw.settings.topic(Topic.LETTERS))).values())


async def _create(http: httpx.AsyncClient, token: str, content: str) -> httpx.Response:
    body = {"firm_id": "firm-a", "title": "T", "content": content}
    return await http.post("/v1/letters", json=body, headers={"Authorization": f"Bearer {token}"})


async def test_letter_content_is_charged_to_the_users_update_bytes(tmp_path: Path) -> None:
    async with running_gateway(Settings(data_dir=tmp_path / "steno", **BUDGET)) as gw:
        ann, bob = gw.token(user="ann"), gw.token(user="bob")
        service = gw.token(user="backend", role="service")
        async with httpx.AsyncClient(base_url=gw.http) as http:
            for token in (ann, service):
                assert (await _create(http, token, "a" * 700_000)).status_code == 201
                before = await _logged(gw)
                over = await _create(http, token, "b" * 700_000)
                assert over.status_code == 429, over.text
                assert over.json() == {"detail": "update bytes over budget"}
                assert int(over.headers["retry-after"]) > 100
                assert await _logged(gw) == before  # neither letter.created nor its content
                assert (await _create(http, token, "")).status_code == 201  # no bytes to charge
            assert (await _create(http, bob, "c" * 700_000)).status_code == 201  # bob's own
        refused = 'gateway_refusals_total{reason="update_bytes_rate_limited"}'
        assert (await gw.metrics())[refused] == 2


async def test_content_over_the_burst_is_taken_by_a_full_budget(tmp_path: Path) -> None:
    """A letter may hold more than the burst (max_document_bytes): a full budget takes it into
    debt rather than refusing it for ever; the next update waits for the debt."""
    async with running_gateway(Settings(data_dir=tmp_path / "steno", **BUDGET)) as gw:
        async with httpx.AsyncClient(base_url=gw.http) as http:
            assert (await _create(http, gw.token(), "é" * 600_000)).status_code == 201  # 1.2 MB
            over = await _create(http, gw.token(), "b")
        assert over.status_code == 429 and int(over.headers["retry-after"]) > 1


async def test_many_lines_are_built_in_order(tmp_path: Path) -> None:
    """Content of many lines is built in a thread, each line put before the ones after it
    (gateway/content.py: appending was quadratic): the letter reads as sent."""
    lines = [f"line {i}" for i in range(20_000)]
    async with running_gateway(Settings(data_dir=tmp_path / "steno")) as gw:
        token = gw.token()
        async with httpx.AsyncClient(base_url=gw.http, timeout=60) as http:
            created = await _create(http, token, "\n".join(lines))
            assert created.status_code == 201, created.text
            got = await http.get(
                f"/v1/letters/{created.json()['letter_id']}",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert got.json()["content"] == "\n".join(lines)
