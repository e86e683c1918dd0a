"""A create's `content`: every line break starts a paragraph, a final one too (README's
`POST /v1/letters` row), so GET's `content` gives back what was sent, line breaks as "\n"."""

from typing import Any

import httpx
from pycrdt import Doc, XmlFragment

from tests.gateway.harness import Running


async def test_a_final_line_break_leaves_an_empty_last_paragraph(gw: Running) -> None:
    auth = {"Authorization": f"Bearer {gw.token()}"}
    async with httpx.AsyncClient(base_url=gw.http, headers=auth) as http:
        for sent, paragraphs, read in [
            ("a", ["a"], "a"),
            ("a\n", ["a", ""], "a\n"),
            ("a\r\n\r\n", ["a", "", ""], "a\n\n"),
            ("", [], ""),  # no content: nothing logged but `letter.created`
        ]:
            body = {"firm_id": "firm-a", "title": "T", "content": sent}
            letter = (await http.post("/v1/letters", json=body)).json()["letter_id"]
            assert (await http.get(f"/v1/letters/{letter}")).json()["content"] == read, sent
            doc: Doc[Any] = Doc()
            doc.apply_update((await http.get(f"/v1/letters/{letter}/state")).content)
            fragment = doc.get(gw.settings.doc_field, type=XmlFragment)
            assert [str(p.children[0]) for p in fragment.children] == paragraphs, sent
