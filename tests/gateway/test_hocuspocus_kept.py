"""`/v1/hocuspocus`: what a socket keeps for its documents waiting to be admitted is bounded for
the socket, not only per document. Each waiting document keeps its first BACKLOG messages, but
how many documents wait is bounded only by the frame rate: a socket over its handshake budget
that named 40 addresses and sent each 16 messages of 256 KiB had 144 MiB kept (found in review)."""

from pathlib import Path

from pycrdt import Doc, create_update_message

from gateway.api.hocuspocus import Multiplexed
from gateway.wire import hocuspocus as hp
from schemas.settings import Settings
from tests.gateway.harness import Running, running_gateway
from tests.gateway.hocuspocus_client import HpClient, edit
from tests.support import eventually

DOCS, EACH, SIZE = 10, 8, 256 << 10
NOT_AUTHENTICATED = 'gateway_refusals_total{reason="not_authenticated"}'
STEP_1 = bytes([hp.SYNC, 0, 1, 0])  # sync step 1 of an empty document


def _kept(gw: Running) -> list[int]:
    """Bytes kept for waiting documents, per open Hocuspocus socket."""
    sockets = [s for s in gw.app.state.gateway.sockets if isinstance(s, Multiplexed)]
    return [sum(len(m.message) for d in s._deferred.values() for m in d.messages) for s in sockets]


async def test_waiting_documents_keep_one_largest_message_per_socket(
    tmp_path: Path, read_path: str
) -> None:
    # A handshake every 20 s, and a minute to be admitted in: every document waits all
    # through the test (none is admitted or denied, keeping what it kept), however slow.
    settings = Settings(
        data_dir=tmp_path / "steno",
        partitions=2,
        handshakes_burst=1,
        handshakes_per_s=0.05,
        rate_wait_max_s=60,
    )
    async with running_gateway(settings) as gw:
        client = await HpClient.connect(gw)
        token = gw.token(user="mallory")
        await client.auth("letter-burst", token)  # the whole burst (an unknown letter: 403)
        for i in range(DOCS):  # over the budget: each waits for it to refill
            await client.auth(f"letter-waiting-{i}", token)
            await client.send(f"letter-waiting-{i}", STEP_1)
        junk = bytes([hp.SYNC, 2]) + b"x" * SIZE  # an "update" nobody checks while it waits
        for _ in range(EACH):
            for i in range(DOCS):
                await client.send(f"letter-waiting-{i}", junk)
        kept_at_most = settings.max_message_bytes // (SIZE + 2)
        dropped = DOCS * EACH - kept_at_most
        await eventually(lambda: _dropped(gw, dropped), timeout=30)
        assert 0 < max(_kept(gw)) <= settings.max_message_bytes
        assert not client.closed.is_set()  # the socket is not blamed for it
        await client.close()


async def _dropped(gw: Running, at_least: int) -> bool:
    metrics = await gw.metrics()
    return metrics.get(NOT_AUTHENTICATED, 0) >= at_least


async def test_a_document_refused_again_still_counts_what_it_kept(tmp_path: Path) -> None:
    """A waiting document checked again and still over the budget waits on with its messages:
    they must count again (forgetting it subtracted them, and counted bytes fell below what the
    socket held, a little more each round: found in review)."""
    settings = Settings(data_dir=tmp_path / "steno", partitions=2, handshakes_burst=1)
    async with running_gateway(settings) as gw:
        letters = [await gw.create_letter() for _ in range(3)]
        client = await HpClient.connect(gw)
        token = gw.token(user="mallory")
        await client.synced(f"letter-{letters[0]}", token)  # the whole burst
        (socket,) = [s for s in gw.app.state.gateway.sockets if isinstance(s, Multiplexed)]
        waiting = [f"letter-{letter}" for letter in letters[1:]]
        typed = create_update_message(edit(Doc(), "typed while waiting"))
        for address in waiting:
            await client.auth(address, token)
        await eventually(lambda: len(socket._deferred) == 2)
        for address in waiting:
            await client.send(address, typed)
        await eventually(lambda: _kept(gw) == [2 * len(typed)])
        # One handshake a second: the first checked again is admitted, the other refused again.
        await eventually(lambda: len(socket._docs) == 2, timeout=15)
        assert len(socket._deferred) == 1
        assert socket._kept == _kept(gw)[0] == len(typed)
        await client.close()
