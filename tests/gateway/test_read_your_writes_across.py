"""Read-your-writes across gateway instances (on Kafka, Tansu): a write acknowledged by one
instance is in what another that holds the letter answers at once, from `GET /state` and from
`GET /v1/letters/{id}` (gateway/live/tail.py: Tail.caught_up)."""

import httpx

from tests.gateway.drafting import text_of, with_paragraph
from tests.gateway.harness import Running

TRIES = 10


async def test_a_write_acknowledged_elsewhere_is_read_at_once(
    pair: tuple[Running, Running],
) -> None:
    a, b = pair
    letter = await a.create_letter("Dear Sir,")
    holder = await a.client(letter, user="alice")  # a holds the letter in memory
    await holder.synced.wait()
    auth = {"Authorization": f"Bearer {a.token('svc', role='service')}"}
    state, read = f"/v1/letters/{letter}/state", f"/v1/letters/{letter}"
    async with httpx.AsyncClient(timeout=30, headers=auth) as http:
        for i in range(TRIES):
            base = (await http.get(b.http + state)).content
            update = with_paragraph(base, f"p{i}")
            posted = await http.post(
                b.http + f"{read}/updates",
                content=update,
                headers={"content-type": "application/octet-stream"},
            )
            assert posted.status_code == 200, posted.text
            assert f"p{i}" in text_of((await http.get(a.http + state)).content), i
            assert (await http.get(a.http + read)).json()["content"].endswith(f"p{i}"), i
    await holder.close()
