"""A held letter's reads wait for other instances' writes (gateway/live/tail.py `caught_up`), and
answer 503 with Retry-After when the log's tail stays behind; a comment listing does not wait:
its anchors' positions come from the letter as this instance holds it, its threads from the
stores, so a stalled log does not take comments away (gateway/collab/comment_anchors.py)."""

import pytest

from tests.collab.conftest import Collab


async def test_comments_are_listed_while_the_tail_is_behind(
    collab: Collab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lid = await collab.gw.create_letter("Pay 5000 EUR.")
    holder = await collab.gw.client(lid, user="al")  # the letter held here
    await holder.synced.wait()
    path = f"/v1/letters/{lid}/comments"
    made = await collab.call("POST", path, json={"body": "sure?", "anchor": {"from": 4, "to": 8}})
    assert made.status_code == 201, made.text
    before = await collab.call("GET", path)
    assert before.status_code == 200, before.text

    async def behind(letter_id: str, timeout_s: float) -> bool:
        return False  # as a stalled broker leaves it, past the append timeout

    monkeypatch.setattr(collab.gw.app.state.gateway.tail, "caught_up", behind)
    listed = await collab.call("GET", path)
    assert listed.status_code == 200, listed.text
    assert listed.json() == before.json()
    state = await collab.call("GET", f"/v1/letters/{lid}/state")
    assert (state.status_code, state.headers.get("Retry-After")) == (503, "1"), state.text
    await holder.close()
