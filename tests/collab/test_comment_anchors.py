"""Comment anchors over REST: code-point offsets once collaborators write non-ASCII text, and
anchor work done off the event loop (a long letter takes a second: docs/performance.md)."""

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import Doc, XmlFragment, XmlText

from gateway.collab import comment_anchors
from tests.collab.conftest import Collab
from tests.support import eventually

TEXT = "Dear Sir,\nWe demand 5000 EUR"


async def _content(c: Collab, lid: str) -> str:
    r = await c.call("GET", f"/v1/letters/{lid}")
    assert r.status_code == 200, r.text
    return str(r.json()["content"])


async def _threads(c: Collab, lid: str) -> list[dict[str, Any]]:
    r = await c.call("GET", f"/v1/letters/{lid}/comments")
    assert r.status_code == 200, r.text
    return list(r.json()["threads"])


async def _post(c: Collab, lid: str, anchor: dict[str, Any], body: str = "b") -> str:
    r = await c.call("POST", f"/v1/letters/{lid}/comments", json={"body": body, "anchor": anchor})
    assert r.status_code == 201, r.text
    return str(r.json()["thread_id"])


def _insert(paragraph: int, at: int, text: str) -> Callable[[Doc[Any]], None]:
    """An edit inserting `text` at code point `at` of a paragraph (pycrdt counts UTF-8 bytes)."""

    def change(doc: Doc[Any]) -> None:
        node = doc.get("default", type=XmlFragment).children[paragraph].children[0]
        assert isinstance(node, XmlText)
        node.insert(len(str(node)[:at].encode()), text)

    return change


async def test_anchor_offsets_after_non_ascii_edits(collab: Collab) -> None:
    """The reviewer's case (a "€ " typed before the range used to give "00 E"), then astral and
    BMP characters before and inside the range, the range's own struct split; an anchor given as
    relative positions gets the quote of the text it covers."""
    lid = await collab.gw.create_letter(TEXT)
    s = TEXT.index("5000")
    first = await _post(collab, lid, {"from": s, "to": s + 4})
    client = await collab.gw.client(lid)
    await client.synced.wait()

    await client.edit(_insert(1, 0, "€ "))
    want = "Dear Sir,\n€ We demand 5000 EUR"
    await eventually(lambda: _content_is(collab, lid, want), interval=0.1)  # REST is rate-limited
    (t,) = await _threads(collab, lid)
    assert (t["anchor"]["from"], t["anchor"]["to"]) == (s + 2, s + 6)
    assert want[t["anchor"]["from"] : t["anchor"]["to"]] == "5000"

    line = "€ We demand 5000 EUR"
    await client.edit(_insert(1, line.index("demand"), "😀é\u2019"))  # splits the struct before
    line = "€ We 😀é\u2019demand 5000 EUR"
    await client.edit(_insert(1, line.index("5") + 1, "é"))  # and the range, inside it
    await client.edit(_insert(0, 4, "📜"))  # an earlier paragraph
    want = "Dear📜 Sir,\n€ We 😀é\u2019demand 5é000 EUR"
    await eventually(lambda: _content_is(collab, lid, want), interval=0.1)
    (t,) = await _threads(collab, lid)
    assert want[t["anchor"]["from"] : t["anchor"]["to"]] == "5é000"
    assert t["anchor"]["quote"] == "5000"  # as it was when the comment was made

    ends = {"start": t["anchor"]["start"], "end": t["anchor"]["end"]}
    again = await _post(collab, lid, ends, body="again")
    astral = await _post(collab, lid, {"from": want.index("📜"), "to": want.index("Sir")})
    threads = {t["thread_id"]: t["anchor"] for t in await _threads(collab, lid)}
    assert threads[again]["quote"] == "5é000"
    assert (threads[again]["from"], threads[again]["to"]) == (
        threads[first]["from"], threads[first]["to"]
    )  # fmt: skip
    assert threads[astral]["quote"] == "📜 "
    assert want[threads[astral]["from"] : threads[astral]["to"]] == "📜 "
    await client.close()


async def _content_is(c: Collab, lid: str, want: str) -> bool:
    return await _content(c, lid) == want


READS = {
    "GET threads": ("resolve_all", "GET", None),
    "POST from/to": ("range_anchor", "POST", {"from": 0, "to": 4}),
    "POST start/end": ("with_quote", "POST", "ends"),
}


@pytest.mark.parametrize("name", list(READS))
async def test_anchor_work_runs_off_the_event_loop(
    collab: Collab, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """The conversion is held until /healthz has answered: it can only answer meanwhile if the
    conversion does not hold the event loop (on the loop, the hold times out and fails)."""
    work, method, anchor = READS[name]
    lid = await collab.gw.create_letter(TEXT)
    await _post(collab, lid, {"from": 0, "to": 4})
    if anchor == "ends":
        (t,) = await _threads(collab, lid)
        anchor = {"start": t["anchor"]["start"], "end": t["anchor"]["end"]}
    started, release = threading.Event(), threading.Event()
    released: list[bool] = []
    real = getattr(comment_anchors, work)

    def held(*args: Any, **kwargs: Any) -> Any:
        started.set()
        released.append(release.wait(timeout=10))
        return real(*args, **kwargs)

    monkeypatch.setattr(comment_anchors, work, held)
    # Nothing known of this version of the letter (the POST above told where its anchor is).
    monkeypatch.setattr(comment_anchors, "RESOLVED", comment_anchors.Resolutions(max_anchors=100))
    path = f"/v1/letters/{lid}/comments"
    body: dict[str, Any] = {} if anchor is None else {"json": {"body": "b", "anchor": anchor}}
    call = asyncio.create_task(collab.call(method, path, **body))
    assert await asyncio.to_thread(started.wait, 10)
    assert (await collab.http.get("/healthz")).status_code == 200
    release.set()
    assert (await call).status_code in (200, 201)
    assert released == [True]
