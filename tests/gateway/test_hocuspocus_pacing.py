"""`/v1/hocuspocus` at the byte level: messages for documents the socket has not authenticated
are paced at the frame rate as `/v1` frames are (gateway/live/pacing.py), and refused with 4429
only after a run over it longer than `rate_wait_max_s`."""

from pathlib import Path
from typing import Any

import websockets
from pycrdt import create_update_message

from gateway.errors import RATE_LIMITED
from gateway.wire import hocuspocus as hp
from schemas.settings import Settings
from tests.gateway.harness import running_gateway
from tests.gateway.hocuspocus_client import HpClient

RATE: dict[str, Any] = {"rate_messages_per_s": 20, "rate_burst": 10}
REFUSED = 'gateway_refusals_total{reason="rate_limited"}'


async def test_a_burst_of_auths_over_the_rate_is_paced_and_all_are_answered(
    tmp_path: Path, read_path: str
) -> None:
    """A provider reconnecting authenticates all its documents at once: 5 within the burst,
    the rest at 5/s, every one answered in order, the socket open."""
    # A slow rate: the bucket refills while the auths are handled, and on a loaded machine it
    # refilled fast enough at 20/s that fewer than 5 had to wait. 12 over the burst take 2.4 s:
    # the wait maximum is only a safety net here.
    settings = Settings(
        data_dir=tmp_path / "steno", rate_messages_per_s=5, rate_burst=5, rate_wait_max_s=10.0
    )
    async with running_gateway(settings) as gw:
        letters = [await gw.create_letter(title=f"L{i}") for i in range(16)]
        client = await HpClient.connect(gw)
        token = gw.token(user="alice")
        await client.send("letter-denied", create_update_message(b"\x00\x00"))  # dropped
        for letter in letters:
            await client.auth(f"letter-{letter}", token)
        for letter in letters:
            assert (await client.next(f"letter-{letter}", hp.AUTH)).body[0] == hp.AUTH_OK
        answered = [r.address for r in client.received if r.type == hp.AUTH]
        assert answered == [f"letter-{letter}" for letter in letters]
        metrics = await gw.metrics()
        assert metrics["gateway_messages_paced_total"] >= 5
        assert metrics['gateway_refusals_total{reason="not_authenticated"}'] == 1
        assert REFUSED not in metrics
        assert not client.closed.is_set()
        await client.close()


async def test_a_flood_for_documents_not_authenticated_is_refused_past_the_wait_maximum(
    tmp_path: Path, read_path: str
) -> None:
    settings = Settings(data_dir=tmp_path / "steno", rate_wait_max_s=0.5, **RATE)
    async with running_gateway(settings) as gw:
        client = await HpClient.connect(gw)
        try:
            for _ in range(200):  # 10 s at the rate: far past the 0.5 s allowed over it
                await client.send("letter-denied", create_update_message(b"\x00\x00"))
        except websockets.ConnectionClosed:
            pass  # refused while we still sent
        await client.closed.wait()
        assert client.close_code == RATE_LIMITED
        metrics = await gw.metrics()
        assert metrics[REFUSED] == 1
        # Read at the rate until then: ~10 in the burst, then 20/s for about 0.5 s (longer on a
        # loaded machine: 33 once in CI), not the 200 sent.
        assert 15 <= metrics['gateway_refusals_total{reason="not_authenticated"}'] <= 60
