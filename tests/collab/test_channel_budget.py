"""App-channel commands draw on the user's REST request budget, as the same operations over REST
do: one socket made 491 comment edits of 10 KB in 5 s and 150 lock renewals a second. Over the
budget a command is answered `{"type": "error", "status": 429, "retry_after"}` and does nothing;
typing notices, token renewals (charged as handshakes) and service tokens are not charged."""

from pathlib import Path
from typing import Any

from gateway.collab.channel import MAX_IN_FLIGHT
from schemas.events import Topic
from tests.collab.channel_helpers import app, seen
from tests.collab.conftest import collab_on
from tests.gateway.harness import YClient, types_of
from tests.support import eventually

BURST = 3
assert BURST < MAX_IN_FLIGHT  # the commands below are refused by the budget, not the in-flight cap


async def _answers(client: YClient, prefix: str, count: int) -> list[dict[str, Any]]:
    """`count` comment.create commands back to back, and their answers in order."""
    for n in range(count):
        command = {"type": "comment.create", "id": f"{prefix}{n}", "body": "x" * 10_000}
        await client.ws.send(app({**command, "anchor": {"from": 10, "to": 13}}))

    def answered() -> list[dict[str, Any]] | None:
        by_id = {m.get("id"): m for m in client.app if m.get("type") in ("result", "error")}
        found = [by_id[f"{prefix}{n}"] for n in range(count) if f"{prefix}{n}" in by_id]
        return found if len(found) == count else None

    return await eventually(answered, timeout=10)


async def test_app_commands_are_charged_to_the_rest_request_budget(
    tmp_path: Path, redis_db: str
) -> None:
    budget = {"rest_requests_burst": BURST, "rest_requests_per_s": 0.01}
    async with collab_on(tmp_path, redis_db, **budget) as collab:
        gw = collab.gw
        lid = await gw.create_letter("Dear Sir,\nPay now.")
        alice = await gw.client(lid, user="alice", events=1)
        service = await gw.client(lid, user="backend", role="service", events=1)
        for client in (alice, service):
            await client.synced.wait()
        answers = await _answers(alice, "a", BURST + 2)
        assert [m["type"] for m in answers[:BURST]] == ["result"] * BURST, answers
        for refused in answers[BURST:]:
            assert refused["status"] == 429 and refused["detail"] == "too many requests"
            assert refused["retry_after"] > 1
        comments = [t for t in types_of(await gw.records(Topic.LETTERS, lid)) if "comment" in t]
        assert len(comments) == BURST, comments  # the refused ones logged nothing
        assert (await collab.call("GET", f"/v1/letters/{lid}", user="alice")).status_code == 429
        await alice.ws.send(app({"type": "auth.renew", "id": "renew", "token": gw.token("alice")}))
        renewed = await seen(alice, "result", id="renew")  # its own budget: the handshakes'
        assert "expires_at" in renewed["result"]
        served = await _answers(service, "s", BURST + 2)  # the product's backend has no budget
        assert [m["type"] for m in served] == ["result"] * (BURST + 2), served
        refusals = (await gw.metrics())['gateway_refusals_total{reason="app_rate_limited"}']
        assert refusals == 2
        for client in (alice, service):
            await client.close()
