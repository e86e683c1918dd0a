from schemas.events import Topic
from tests.gateway.harness import Running, types_of
from tests.support import eventually


async def test_two_clients_exchange_updates(gw: Running) -> None:
    letter = await gw.create_letter("Dear Sir,\nPay up.")
    a = await gw.client(letter, user="alice")
    b = await gw.client(letter, user="bob")
    await a.synced.wait()
    await b.synced.wait()
    await a.insert("hello")
    await eventually(lambda: str(b.text) == "hello")
    await eventually(lambda: str(a.text) == "hello" and len(a.updates) >= 2)
    records = await gw.records(Topic.LETTERS, letter)
    assert "doc.update" in types_of(records)
    await a.close()
    await b.close()


async def test_messages_leave_by_the_direct_write_path(gw: Running) -> None:
    """Under uvicorn, idle sockets get frames written directly (gateway/transport.py); after a
    uvicorn upgrade that removed what it needs, this fails rather than silently slowing down."""
    letter = await gw.create_letter()
    a = await gw.client(letter, user="alice")
    await a.synced.wait()
    conns = list(gw.app.state.gateway.conns)
    assert conns and all(conn._write_frame is not None for conn in conns)
    await a.close()
