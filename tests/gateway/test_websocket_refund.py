"""A WebSocket update the gateway refuses after charging it costs the user nothing, as a REST
write's (tests/gateway/test_write_refund.py): `admit_update` charges the update-bytes budget
before the room checks the client ids' owners, and the connection gives it back when the update
is refused after all (gateway/live/connection.py `_deliver_admitted`, `_claim`)."""

from pathlib import Path

import pytest

from gateway.errors import FORBIDDEN, LOG_UNAVAILABLE
from tests.gateway.crash_owners import both_logged
from tests.gateway.harness import Running, YClient, running_gateway, varbytes
from tests.gateway.refunds import budget_full, owners_unknown, posing_as, refund_settings
from tests.support import eventually

pytestmark = pytest.mark.timeout(60)


async def _send_as_mallory(gw: Running, letter: str, update: bytes) -> YClient:
    """Mallory, synced, sends `update` and is closed for it."""
    mallory = await gw.client(letter, user="mallory")
    await mallory.synced.wait()
    await eventually(lambda: budget_full(gw))  # its sync step 2 (`00 00`) took 2 bytes: refilled
    await mallory.ws.send(b"\x00\x02" + varbytes(update))  # a sync update, y-protocols'
    await mallory.closed.wait()
    return mallory


async def test_an_update_under_another_users_id_costs_nothing(tmp_path: Path) -> None:
    async with running_gateway(refund_settings(tmp_path / "steno")) as gw:
        letter, alice, _bob = await both_logged(gw)  # the room knows alice's id is hers
        mallory = await _send_as_mallory(gw, letter, posing_as(alice.doc))
        assert mallory.close_code == FORBIDDEN  # client_id_not_owned, refused by the room
        assert budget_full(gw)


async def test_an_update_whose_owner_is_unknown_costs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with owners_unknown(tmp_path, monkeypatch) as (gw, letter, posing):
        mallory = await _send_as_mallory(gw, letter, posing)
        assert mallory.close_code == LOG_UNAVAILABLE  # client_id_owner_unknown, in `_claim`
        assert budget_full(gw)
