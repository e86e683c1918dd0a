"""Reading comments again: anchors are resolved once per version of the letter (its state
vector and delete set), so a letter that did not change costs no resolver, and one that did,
if only by a deletion, is resolved again."""

from typing import Any

import pytest
from pycrdt import Doc, XmlFragment, XmlText

from gateway.collab import comment_anchors
from gateway.collab.anchors import Resolved, resolve_all
from schemas.events import Anchor
from tests.collab.conftest import Collab
from tests.support import eventually

TEXT = "Dear Sir,\nWe demand 5000 EUR"


def _para(doc: Doc[Any], i: int) -> XmlText:
    node = doc.get("default", type=XmlFragment).children[i].children[0]
    assert isinstance(node, XmlText)
    return node


async def _spans(c: Collab, lid: str) -> dict[str, tuple[int, int]]:
    r = await c.call("GET", f"/v1/letters/{lid}/comments")
    assert r.status_code == 200, r.text
    return {t["thread_id"]: (t["anchor"]["from"], t["anchor"]["to"]) for t in r.json()["threads"]}


async def _content_is(c: Collab, lid: str, want: str) -> bool:
    r = await c.call("GET", f"/v1/letters/{lid}")
    return r.status_code == 200 and r.json()["content"] == want


async def test_anchors_are_resolved_once_per_version_of_the_letter(
    collab: Collab, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolved: list[int] = []  # anchors per call of the resolver
    real = resolve_all  # the resolver comment_anchors calls: patched there below

    def counted(state: bytes, field: str, anchors: list[Any]) -> Any:
        resolved.append(len(anchors))
        return real(state, field, anchors)

    monkeypatch.setattr(comment_anchors, "resolve_all", counted)
    lid = await collab.gw.create_letter(TEXT)
    s = TEXT.index("5000")
    r = await collab.call(
        "POST",
        f"/v1/letters/{lid}/comments",
        json={"body": "b", "anchor": {"from": s, "to": s + 4}},
    )
    assert r.status_code == 201, r.text
    thread = r.json()["thread_id"]
    # The POST told where its anchor is in this version: reads need no resolver.
    assert await _spans(collab, lid) == {thread: (s, s + 4)}
    assert await _spans(collab, lid) == {thread: (s, s + 4)}
    assert resolved == []

    client = await collab.gw.client(lid)
    await client.synced.wait()
    await client.edit(lambda doc: _para(doc, 1).insert(0, "€ "))
    await eventually(lambda: _content_is(collab, lid, "Dear Sir,\n€ " + TEXT[10:]), interval=0.1)
    assert await _spans(collab, lid) == {thread: (s + 2, s + 6)}
    assert await _spans(collab, lid) == {thread: (s + 2, s + 6)}
    assert resolved == [1]  # once for the new version

    # A deletion alone adds no clock to the state vector: the delete set tells this version.
    await client.edit(lambda doc: _para(doc, 1).__delitem__(slice(0, len("€ ".encode()))))
    await eventually(lambda: _content_is(collab, lid, TEXT), interval=0.1)
    assert await _spans(collab, lid) == {thread: (s, s + 4)}
    assert resolved == [1, 1]
    await client.close()


def test_what_is_remembered_is_bounded_by_anchors() -> None:
    """The least recently used versions go first; a version with more anchors than the bound
    is not kept at all."""
    found = comment_anchors.Resolutions(max_anchors=3)
    a, b, c, d = (Anchor(start=s, end=s) for s in "abcd")
    v1, v2 = ("l", "default", b"1"), ("l", "default", b"2")
    found.add(v1, [a, b], [Resolved(0, 1), Resolved(1, 2)])
    assert found.get(v1, [b, a]) == [Resolved(1, 2), Resolved(0, 1)]
    assert found.get(v1, [a, c]) is None  # one of them was not looked up in v1
    found.add(v2, [c], [Resolved(None, None)])
    assert found.get(v2, [c]) == [Resolved(None, None)] and found.get(v1, [a]) is not None
    found.add(v2, [d], [Resolved(3, 4)])  # v2 now weighs 2: v1 (2) goes
    assert found.get(v1, [a]) is None and found.get(v2, [c, d]) is not None
    found.add(v1, [a, b, c, d], [Resolved(0, 1)] * 4)
    assert found.get(v1, [a]) is None
