"""A refused token renewal on an open connection is logged with the client's host, as a refused
handshake is (gateway/auth_refusals.py): `auth.renew` on `/v1`, a token sent again by a
Hocuspocus provider."""

import logging

import pytest

from gateway.auth_refusals import Refusals
from tests.collab.channel_helpers import app
from tests.gateway.harness import Running, YClient
from tests.gateway.hocuspocus_client import HpClient
from tests.support import eventually

REFUSALS = "gateway.auth_refusals"


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == REFUSALS]


async def test_a_refused_app_channel_renewal_names_the_clients_host(
    gw: Running, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gw.app.state.gateway.ctx.verifier, "refusals", Refusals())
    letter = await gw.create_letter()
    client = await YClient.connect(gw.ws_url(letter, gw.token(), events="1"))
    await client.synced.wait()
    expired = gw.token(ttl_s=-60)  # past the fixture's leeway of 2 s
    with caplog.at_level(logging.INFO, logger=REFUSALS):
        await client.ws.send(app({"type": "auth.renew", "id": "r", "token": expired}))
        answer = await eventually(lambda: [m for m in client.app if m.get("id") == "r"])
    assert answer[0]["status"] == 401
    assert _lines(caplog) == ["renewal token refused: expired, from 127.0.0.1"]
    await client.close()


async def test_a_refused_hocuspocus_renewal_names_the_clients_host(
    gw: Running, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gw.app.state.gateway.ctx.verifier, "refusals", Refusals())
    letter = await gw.create_letter()
    address = f"letter-{letter}"
    client = await HpClient.connect(gw)
    await client.synced(address, gw.token())
    with caplog.at_level(logging.INFO, logger=REFUSALS):
        await client.auth(address, "not-a-token")  # the session's token, sent again: a renewal
        await eventually(lambda: _lines(caplog))
    assert _lines(caplog) == ["renewal token refused: malformed, from 127.0.0.1"]
    await client.close()
