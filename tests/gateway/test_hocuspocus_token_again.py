"""`/v1/hocuspocus`: a provider that sends its token again for a document waiting to be admitted
(over the user's handshake budget) loses none of what it sent before. Hocuspocus' own server
(packages/server/src/ClientConnection.ts, `handleQueueingMessage`) queues a second auth of a
document whose auth runs with its other messages and hands them all to its connection once
established; here the re-sent token is kept in its place too, and the wait goes on. It used to
start the document's auth anew, dropping what it had kept: an edit typed before admission was
lost unless the provider sent its sync step 1 again."""

import asyncio
import gc
import warnings
from pathlib import Path
from typing import Any

from pycrdt import Doc, create_update_message

from gateway.api.hocuspocus import Multiplexed
from gateway.wire import hocuspocus as hp
from schemas.settings import Settings
from tests.gateway.harness import running_gateway
from tests.gateway.hocuspocus_client import HpClient, edit, string
from tests.support import eventually

# One handshake, then one a second: a second document waits about 1 s.
BUDGET: dict[str, Any] = {"handshakes_burst": 1, "handshakes_per_s": 1.0}


async def test_a_token_sent_again_while_waiting_keeps_what_the_document_sent(
    tmp_path: Path, read_path: str
) -> None:
    settings = Settings(data_dir=tmp_path / "steno", partitions=2, **BUDGET)
    async with running_gateway(settings) as gw:
        first, second = await gw.create_letter(), await gw.create_letter()
        client = await HpClient.connect(gw)
        token = gw.token(user="alice")
        await client.synced(f"letter-{first}", token)  # the whole burst
        (socket,) = [s for s in gw.app.state.gateway.sockets if isinstance(s, Multiplexed)]
        address = f"letter-{second}"
        await client.auth(address, token)
        await eventually(lambda: socket._waits)  # it waits for the budget
        typed: Doc[Any] = Doc()
        await client.send(address, create_update_message(edit(typed, "typed while waiting")))
        await client.auth(address, gw.token(user="alice"))  # its token again
        answer = await client.next(address, hp.AUTH)
        assert answer.body[0] == hp.AUTH_OK, answer.body
        assert len([r for r in client.received if r.type == hp.AUTH]) == 2  # one per document
        # The kept update is taken (its sync status) and logged.
        assert (await client.next(address, hp.SYNC_STATUS)).body == b"\x01"
        await eventually(lambda: _logged(gw, second, "typed while waiting"))
        assert not client.closed.is_set()
        await client.close()


async def _logged(gw: Any, letter: str, text: str) -> bool:
    return bool(await gw.logged_text(letter) == text)


async def test_an_auth_cancelled_before_it_began_leaves_nothing_unawaited(tmp_path: Path) -> None:
    """The socket went (its `serve` cancels what waits) before an auth's task first ran: the
    auth, created for the task, is closed with it, not left to the garbage collector's "never
    awaited" warning (as `/v1`'s claims: tests/gateway/test_direct_reads.py)."""
    async with running_gateway(Settings(data_dir=tmp_path / "steno", partitions=2)) as gw:
        letter = await gw.create_letter()
        client = await HpClient.connect(gw)
        await client.synced(f"letter-{await gw.create_letter()}", gw.token(user="alice"))
        (socket,) = [s for s in gw.app.state.gateway.sockets if isinstance(s, Multiplexed)]
        auth = bytes([hp.AUTH, hp.AUTH_TOKEN]) + string(gw.token(user="alice"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            socket._on_message(string(f"letter-{letter}") + auth)
            waiting = socket._wait
            assert waiting is not None  # the auth waits in a task
            waiting.cancel()  # as `serve` does when the socket goes first
            await asyncio.gather(waiting, return_exceptions=True)
            socket._wait = waiting = None  # the task is gone: the auth with it
            gc.collect()
        assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
        # Cancelled mid-life (as only the socket's end does), the auth's hold on reading stays:
        # the client goes without a close handshake.
        client.ws.transport.abort()
        await client.closed.wait()
