"""A string typed straight into a TipTap letter's Y.XmlFragment is refused over REST (422,
`misplaced_content`): accepted, y-tiptap threw on it at every rerender and nobody could open
the letter again."""

from typing import Any

import httpx
from pycrdt import Doc, Text, XmlElement, XmlFragment, XmlText

from schemas.events import Topic
from tests.gateway.harness import Running, types_of


async def test_text_under_the_letters_fragment_is_refused(gw: Running) -> None:
    letter = await gw.create_letter(content="hello")
    headers = {"Authorization": f"Bearer {gw.token(user='eve')}"}
    post = {**headers, "content-type": "application/octet-stream"}
    before = types_of(await gw.records(Topic.LETTERS, letter))
    async with httpx.AsyncClient(base_url=gw.http, timeout=30) as http:
        doc: Doc[Any] = Doc()
        doc.apply_update((await http.get(f"/v1/letters/{letter}/state", headers=headers)).content)
        state = doc.get_state()
        doc.get("default", type=Text).insert(0, "x")  # the root typed as a Y.Text
        url = f"/v1/letters/{letter}/updates"
        r = await http.post(url, content=doc.get_update(state), headers=post)
        assert r.status_code == 422, r.text
        assert types_of(await gw.records(Topic.LETTERS, letter)) == before  # nothing logged
        metrics = await gw.metrics()
        assert metrics['gateway_refusals_total{reason="misplaced_content"}'] == 1
        # What TipTap writes still goes in: a second paragraph.
        ok: Doc[Any] = Doc()
        ok.apply_update((await http.get(f"/v1/letters/{letter}/state", headers=headers)).content)
        state = ok.get_state()
        paragraph = XmlElement("paragraph", {}, [XmlText("world")])
        ok.get("default", type=XmlFragment).children.append(paragraph)
        r = await http.post(url, content=ok.get_update(state), headers=post)
        assert r.status_code == 200, r.text
        got = (await http.get(f"/v1/letters/{letter}", headers=headers)).json()
        assert got["content"] == "hello\nworld"
