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
