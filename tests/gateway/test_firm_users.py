"""Per-user caps and budgets are a firm's user's: a token's `sub` is unique only within its
firm's identity provider, so another firm's user with the same one has caps of their own."""

from pathlib import Path

import httpx
import pytest
import websockets

from gateway.errors import RATE_LIMITED
from schemas.settings import Settings
from tests.gateway.harness import Running, running_gateway
from tests.support import eventually


async def _refused(gw: Running, url: str) -> int:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url):
            pass
    return refused.value.response.status_code


async def test_a_users_connection_cap_is_not_shared_with_another_firms_user(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "steno", max_connections_per_user=1)
    async with running_gateway(settings) as gw:
        ours = await gw.create_letter(firm="firm-a")
        theirs = await gw.create_letter(firm="firm-b")
        first = await gw.client(ours, user="u1", firm="firm-a")
        await first.synced.wait()
        other = await gw.client(theirs, user="u1", firm="firm-b")  # another firm's "u1"
        await other.synced.wait()
        assert await _refused(gw, gw.ws_url(ours, gw.token(user="u1", firm="firm-a"))) == 429
        assert not first.closed.is_set() and not other.closed.is_set()
        await first.close()
        await other.close()


async def test_a_users_budgets_are_not_shared_with_another_firms_user(tmp_path: Path) -> None:
    """Update bytes (WebSocket and REST writes alike) and REST requests."""
    settings = Settings(
        data_dir=tmp_path / "steno", update_bytes_burst=1 << 20, update_bytes_per_s=1024,
        rest_requests_burst=3, rest_requests_per_s=0.01,
    )  # fmt: skip
    async with running_gateway(settings) as gw:
        ours = await gw.create_letter(firm="firm-a")  # one request of firm-a's u1
        theirs = await gw.create_letter(firm="firm-b", title="B")  # one of firm-b's u1
        ann = await gw.client(ours, user="u1", firm="firm-a")
        bob = await gw.client(theirs, user="u1", firm="firm-b")
        for client in (ann, bob):
            await client.synced.wait()
        await ann.insert("a" * 700_000)  # most of firm-a's u1's bytes
        await eventually(lambda: len(ann.updates) >= 2)  # acknowledged: logged
        await bob.insert("b" * 700_000)  # firm-b's u1 has bytes of their own
        await eventually(lambda: len(bob.updates) >= 2)
        assert not bob.closed.is_set()
        await ann.insert("c" * 400_000)  # firm-a's u1 again: over their budget
        await ann.closed.wait()
        assert ann.close_code == RATE_LIMITED
        await bob.close()

        ours_headers = {"Authorization": f"Bearer {gw.token(user='u1', firm='firm-a')}"}
        theirs_headers = {"Authorization": f"Bearer {gw.token(user='u1', firm='firm-b')}"}
        async with httpx.AsyncClient(base_url=gw.http) as http:
            for letter, headers in ((theirs, theirs_headers), (ours, ours_headers)):
                for _ in range(2):  # each spends what their create left of their requests
                    assert (await http.get(f"/v1/letters/{letter}", headers=headers)).is_success
            assert (await http.get(f"/v1/letters/{ours}", headers=ours_headers)).status_code == 429
