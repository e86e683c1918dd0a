"""`/v1/hocuspocus`: a provider that sends its token again for a document waiting to be admitted
(over the user's handshake budget) loses none of what it sent before. Hocuspocus' own server
(packages/server/src/ClientConnection.ts, `handleQueueingMessage`) queues a second auth of a
document whose auth runs with its other messages and hands them all to its connection once
established; here the re-sent token is kept in its place too, and the wait goes on. It used to
start the document's auth anew, dropping what it had kept: an edit typed before admission was
lost unless the provider sent its sync step 1 again."""

from pathlib import Path
from typing import Any

from pycrdt import Doc, create_update_message

from gateway.api.hocuspocus import Multiplexed
from gateway.wire import hocuspocus as hp
from schemas.settings import Settings
from tests.gateway.harness import running_gateway
from tests.gateway.hocuspocus_client import HpClient, edit
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
