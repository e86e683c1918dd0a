"""A REST update the gateway refuses costs the user nothing: the update-bytes budget is
reserved before the client ids' owners are known (gateway/live/writes.py), and given back when
the update is refused after all, for an id another user owns (403) or whose owner could not be
learnt in time (503 "client id owner unknown")."""

from pathlib import Path

import httpx
import pytest

from gateway.live.buckets import KeyedBuckets, TokenBucket
from tests.gateway.crash_owners import both_logged
from tests.gateway.harness import Running, running_gateway
from tests.gateway.refunds import budget_full, owners_unknown, posing_as, refund_settings


async def _post_as_mallory(gw: Running, letter: str, update: bytes) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gw.http, timeout=60) as http:
        return await http.post(
            f"/v1/letters/{letter}/updates",
            content=update,
            headers={
                "Authorization": f"Bearer {gw.token(user='mallory')}",
                "content-type": "application/octet-stream",
            },
        )


async def test_an_update_under_another_users_id_costs_nothing(tmp_path: Path) -> None:
    async with running_gateway(refund_settings(tmp_path / "steno")) as gw:
        letter, alice, _bob = await both_logged(gw)
        answer = await _post_as_mallory(gw, letter, posing_as(alice.doc))
        assert answer.status_code == 403, answer.text
        assert answer.json() == {"detail": "client id not owned"}
        assert budget_full(gw)


async def test_an_update_whose_owner_is_unknown_costs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with owners_unknown(tmp_path, monkeypatch) as (gw, letter, posing):
        answer = await _post_as_mallory(gw, letter, posing)
        assert answer.status_code == 503, answer.text
        assert answer.json() == {"detail": "client id owner unknown"}
        assert budget_full(gw)


def test_a_refund_gives_back_what_was_taken_and_no_more() -> None:
    now = [0.0]
    buckets = KeyedBuckets(rate=10, burst=100, clock=lambda: now[0])
    key = ("firm-a", "u")
    assert buckets.charge(key, 150) is None  # a full bucket takes more than its burst, in debt
    now[0] += 1  # 10 refilled
    buckets.refund(key, 150)
    assert buckets.admit(key, 100) is None  # whole again
    assert buckets.admit(key, 1) is not None  # and not more than whole
    bucket = TokenBucket(rate=10, burst=100, clock=lambda: now[0])
    bucket.reserve(30)
    bucket.refund(50)
    assert bucket.wait_s(100) == 0 and not bucket.take(100.5)
