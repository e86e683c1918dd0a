"""A range whose ending is retyped ("March 14" -> "March 15") keeps the retyped text: Yjs puts
the new text after the deleted last character, where `end` resolves, so the end moves to
`Anchor.after` once that character is gone. An intact end stays exclusive. Pure tests on pycrdt
documents shaped as TipTap's (gateway/content.py), then one over REST with a stock Yjs client."""

import asyncio
import base64
import os
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text, XmlFragment, XmlText

from gateway.collab.anchors import Resolver, to_anchor
from gateway.content import initial_update, plain_text
from schemas.events import Anchor
from tests.collab.conftest import Collab
from tests.interop.driver import NodeClient
from tests.support import eventually

FIELD = "default"
INSIDE = "Dear Sir,\nWe met on March 14 in Paris.\nRegards"  # the range is followed by " "
AT_END = "Dear Sir,\nWe met on March 14\nRegards"  # the range ends its paragraph


def _doc(text: str) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    doc.apply_update(initial_update(text, FIELD))
    return doc


def _retype(doc: Doc[Any], old: str, new: str, para: int = 1) -> None:
    """Select the last `old` of a paragraph and type `new` over it: one transaction, as an
    editor replaces a selection (pycrdt edits by UTF-8 bytes)."""
    node = doc.get(FIELD, type=XmlFragment).children[para].children[0]
    assert isinstance(node, XmlText)
    line = str(node)
    at = len(line[: line.rindex(old)].encode())
    with doc.transaction():
        del node[at : at + len(old.encode())]
        if new:
            node.insert(at, new)


def _anchored(doc: Doc[Any], range_text: str) -> Anchor:
    start = plain_text(doc, FIELD).index(range_text)
    return to_anchor(doc.get_update(), FIELD, start, start + len(range_text))


def _covered(doc: Doc[Any], anchor: Anchor) -> str | None:
    where = Resolver(doc.get_update(), FIELD).resolve(anchor)
    if where.detached:
        return None
    return plain_text(doc, FIELD)[where.start : where.end]


@pytest.mark.parametrize("text", [INSIDE, AT_END], ids=["inside", "paragraph end"])
@pytest.mark.parametrize(
    ("old", "new", "want"),
    [
        ("14", "15", "March 15"),  # the whole ending
        ("4", "5", "March 15"),  # its last character only
        ("14", "1\u20ac\U0001f600", "March 1\u20ac\U0001f600"),  # non-ASCII, astral: longer
        ("4", "", "March 1"),  # deleted, nothing typed: the range ends where it was
    ],
    ids=["whole", "partial", "non-ascii", "deleted"],
)
def test_a_retyped_ending_stays_in_the_range(text: str, old: str, new: str, want: str) -> None:
    doc = _doc(text)
    anchor = _anchored(doc, "March 14")
    _retype(doc, old, new)
    assert _covered(doc, anchor) == want, plain_text(doc, FIELD)


def test_after_at_a_paragraph_end_is_the_paragraphs_own_end() -> None:
    """No character follows: `after` is Yjs' type-end position (kind 2: the paragraph's id)."""
    doc = _doc(AT_END)
    anchor = _anchored(doc, "March 14")
    inside = _anchored(_doc(INSIDE), "March 14")
    assert base64.b64decode(anchor.after)[0] == 2
    assert base64.b64decode(inside.after)[0] == 0  # a position on the " " after the range


@pytest.mark.parametrize("text", [INSIDE, AT_END], ids=["inside", "paragraph end"])
def test_text_typed_right_after_an_intact_end_stays_outside(text: str) -> None:
    """The exclusive end is unchanged while the last character is there (also at a paragraph's
    end, where `after` itself would take in what is typed there)."""
    doc = _doc(text)
    anchor = _anchored(doc, "March 14")
    node = doc.get(FIELD, type=XmlFragment).children[1].children[0]
    assert isinstance(node, XmlText)
    node.insert(len(str(node)[: str(node).index("14") + 2].encode()), "th")
    assert "March 14th" in plain_text(doc, FIELD)
    assert _covered(doc, anchor) == "March 14"


def test_an_anchor_without_after_resolves_as_before() -> None:
    """Anchors stored before `after` existed: a retyped ending is left out, as it always was."""
    doc = _doc(INSIDE)
    made = _anchored(doc, "March 14")
    old = Anchor.model_validate({"start": made.start, "end": made.end, "quote": made.quote})
    assert old.after == ""
    _retype(doc, "14", "15")
    assert _covered(doc, old) == "March "
    assert _covered(doc, made) == "March 15"


def test_a_wholly_retyped_range_is_detached_as_before() -> None:
    """Its first character gone too, the range is not followed onto whatever replaced it."""
    doc = _doc(INSIDE)
    anchor = _anchored(doc, "March 14")
    _retype(doc, "March 14", "April 2")
    assert _covered(doc, anchor) is None


def test_a_body_of_one_text_ends_at_its_root() -> None:
    """A body that is one Y.Text (not TipTap's fragment): `after` at its end names the root."""
    doc: Doc[Any] = Doc()
    body = doc.get(FIELD, type=Text)
    body += "Dear Sir, we met on March 14"
    anchor = _anchored(doc, "March 14")
    assert base64.b64decode(anchor.after)[0] == 1
    with doc.transaction():
        del body[len(body) - 2 :]
        body += "15"
    assert _covered(doc, anchor) == "March 15"


@pytest.mark.parametrize("after", ["not base64!", base64.b64encode(b"\x02\x99\x01\x00").decode()])
def test_an_after_that_does_not_resolve_changes_nothing(after: str) -> None:
    doc = _doc(INSIDE)
    made = _anchored(doc, "March 14")
    odd = made.model_copy(update={"after": after})
    _retype(doc, "14", "15")
    assert _covered(doc, odd) == "March "


# -- over REST, the retype made by a stock Yjs client -----------------------------------------

ANCHOR_CLIENT = Path(__file__).parent / "anchor_client.cjs"
MODULES = Path(__file__).parent.parent / "interop" / "node_modules"
LETTER = "Dear Sir,\nWe met on March 14, and again on March 14\nRegards"


async def _node(c: Collab, letter_id: str) -> NodeClient:
    proc = await asyncio.create_subprocess_exec(
        "node", str(ANCHOR_CLIENT),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "NODE_PATH": str(MODULES)},
    )  # fmt: skip
    client = NodeClient(proc)
    params = {"token": c.gw.token(user="n1"), "letterId": letter_id}
    url = f"ws://127.0.0.1:{c.gw.port}/v1"
    await client.call("connect", url=url, room=f"letter-{letter_id}", params=params)
    return client


async def _threads(c: Collab, lid: str) -> dict[str, dict[str, Any]]:
    r = await c.call("GET", f"/v1/letters/{lid}/comments")
    assert r.status_code == 200, r.text
    return {t["comments"][0]["body"]: t for t in r.json()["threads"]}


async def _post(c: Collab, lid: str, body: str, anchor: dict[str, Any]) -> int:
    r = await c.call("POST", f"/v1/letters/{lid}/comments", json={"body": body, "anchor": anchor})
    return r.status_code


async def test_a_retype_over_rest(collab: Collab) -> None:
    """Comments by offsets on "March 14" inside a paragraph and at its end; a stock Yjs client
    retypes both "14"s as "15" (delete, then type where they were, as in a browser): GET covers
    "March 15" for both, and Yjs resolves the type-end `after` to the paragraph's end."""
    lid = await collab.gw.create_letter(LETTER)
    first, second = LETTER.index("March 14"), LETTER.rindex("March 14")
    assert await _post(collab, lid, "inside", {"from": first, "to": first + 8}) == 201
    assert await _post(collab, lid, "at end", {"from": second, "to": second + 8}) == 201
    made = await _threads(collab, lid)
    assert [made[b]["anchor"]["open_end"] for b in ("inside", "at end")] == [False, False]
    client = await _node(collab, lid)
    try:
        line = LETTER.split("\n")[1]
        for at in (line.rindex("14"), line.index("14")):  # ASCII: UTF-16 indexes are the same
            await client.call("remove", para=1, index=at, length=2)
            await client.call("insert", para=1, index=at, value="15")
        want = LETTER.replace("14", "15")

        async def moved() -> dict[str, dict[str, Any]] | None:
            got = await _threads(collab, lid)
            q = got["at end"]["anchor"]
            return got if want[q["from"] : q["to"]] == "March 15" else None

        threads = await eventually(moved, timeout=10, interval=0.1)  # REST is rate-limited
        for body in ("inside", "at end"):
            a = threads[body]["anchor"]
            assert threads[body]["detached"] is False
            assert want[a["from"] : a["to"]] == "March 15", body
            assert a["open_end"] is True  # its last character is gone: typing at its end joins
        got = await client.call("resolve", anchors=[threads["at end"]["anchor"]["after"]])
        assert got["positions"] == [{"para": 1, "index": len(want.split("\n")[1])}]
    finally:
        await client.quit()


async def test_a_browser_anchor_may_send_after(collab: Collab) -> None:
    """{start, end, after} as a browser makes them: kept, and used once the ending is retyped;
    an `after` not at the range's end, or sent with offsets, is refused."""
    lid = await collab.gw.create_letter(INSIDE)
    start = INSIDE.index("March 14")
    assert await _post(collab, lid, "offsets", {"from": start, "to": start + 8}) == 201
    made = (await _threads(collab, lid))["offsets"]["anchor"]
    ends = {k: made[k] for k in ("start", "end", "after")}
    assert await _post(collab, lid, "browser", ends) == 201
    assert await _post(collab, lid, "bad", {**ends, "after": made["start"]}) == 422
    # The range's own end is where it ends too, but on its last character, not after it.
    assert await _post(collab, lid, "bad", {**ends, "after": made["end"]}) == 422
    assert await _post(collab, lid, "bad", {"from": start, "to": start + 8, "after": ""}) == 422
    client = await collab.gw.client(lid)
    await client.synced.wait()
    await client.edit(lambda doc: _retype(doc, "14", "15"))
    want = INSIDE.replace("14", "15")

    async def moved() -> dict[str, Any] | None:
        got = await _threads(collab, lid)
        a = got["browser"]["anchor"]
        return got if want[a["from"] : a["to"]] == "March 15" else None

    threads = await eventually(moved, timeout=10, interval=0.1)
    assert threads["browser"]["anchor"]["after"] == made["after"]
    assert set(threads) == {"offsets", "browser"}
    await client.close()
