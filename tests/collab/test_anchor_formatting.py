"""Anchors next to formatted text: deleting a character between formatted runs also deletes
the format markers that became redundant, so the anchor's character must be picked out of that
delete set (anchors._char_span). Pure: documents built with pycrdt, edited by several clients
as TipTap shapes them (gateway/content.py)."""

import random
from typing import Any

import pytest
from pycrdt import Doc, XmlFragment, XmlText

from gateway.collab.anchors import Resolved, range_anchor, resolve_all, to_anchor
from gateway.content import initial_update, plain_text

FIELD = "default"
MARKS = ["bold", "italic", "underline"]


def _para(doc: Doc[Any], i: int) -> XmlText:
    node = doc.get(FIELD, type=XmlFragment).children[i].children[0]
    assert isinstance(node, XmlText)
    return node


def test_anchor_beside_another_users_bold_text() -> None:
    """The reviewer's history: the delete set of "X" also holds two format markers of lower
    client ids, and the anchor came out on one of them (Resolved(7, 7))."""
    a: Doc[Any] = Doc(client_id=100)
    a.apply_update(initial_update("ab\ncdXe", FIELD))
    b: Doc[Any] = Doc(client_id=200)
    b.apply_update(a.get_update())
    _para(a, 1).insert(3, "Y")
    b.apply_update(a.get_update())  # "cdXYe"
    _para(b, 1).format(0, 2, {"bold": True})
    a.apply_update(b.get_update())
    _para(a, 1).format(4, 5, {"bold": True})
    state = a.get_update()
    anchor = to_anchor(state, FIELD, 5, 7)
    assert anchor.quote == "XY"
    assert resolve_all(state, FIELD, [anchor]) == [Resolved(5, 7)]


class _Editors:
    """A few clients editing one letter's paragraphs at random, syncing now and then. Every
    inserted character is new to the letter, so a range's text is known by its characters."""

    def __init__(self, rng: random.Random, clients: int) -> None:
        self.rng = rng
        ids = rng.sample(range(1, 2**32), clients)
        self.docs: list[Doc[Any]] = [Doc(client_id=cid) for cid in ids]
        base = initial_update("Dear Sir\nWe demand\npayment now", FIELD)
        for doc in self.docs:
            doc.apply_update(base)
        self.fresh = 0x4E00  # CJK ideographs (3 UTF-8 bytes); some astral ones below

    def _char(self) -> str:
        self.fresh += 1
        return chr(self.fresh + (0x1F600 - 0x4E00 if self.rng.random() < 0.15 else 0))

    def edit(self, doc: Doc[Any]) -> None:
        rng = self.rng
        para = rng.randrange(3)
        node = _para(doc, para)
        line = plain_text(doc, FIELD).split("\n")[para]

        def byte(at: int) -> int:  # pycrdt addresses text by UTF-8 bytes
            return len(line[:at].encode())

        op = rng.random()
        if op < 0.45 or len(line) < 2:
            at = rng.randint(0, len(line))
            node.insert(byte(at), "".join(self._char() for _ in range(rng.randint(1, 3))))
        elif op < 0.6:
            at = rng.randrange(len(line))
            del node[byte(at) : byte(at + 1)]
        else:
            s = rng.randrange(len(line))
            e = rng.randint(s + 1, min(len(line), s + 4))
            value = rng.choice([True, None]) if op < 0.9 else True
            node.format(byte(s), byte(e), {rng.choice(MARKS): value})

    def sync(self, i: int, j: int) -> None:
        src, dst = self.docs[i], self.docs[j]
        dst.apply_update(src.get_update(dst.get_state()))

    def sync_all(self) -> None:
        for i in range(len(self.docs)):
            for j in range(len(self.docs)):
                if i != j:
                    self.sync(i, j)

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.edit(self.rng.choice(self.docs))
            if self.rng.random() < 0.3:
                i, j = self.rng.sample(range(len(self.docs)), 2)
                self.sync(i, j)
        self.sync_all()


SEEDS = list(range(40))


@pytest.mark.parametrize("seed", SEEDS)
def test_anchors_keep_their_text_through_formatted_multi_client_edits(seed: int) -> None:
    """Anchors made on a history of concurrent edits and formatting resolve to the same text
    after further edits elsewhere: [first anchored character, last one] while both exist."""
    rng = random.Random(seed)
    eds = _Editors(rng, clients=3)
    eds.run(40)
    doc = eds.docs[0]
    text = plain_text(doc, FIELD)
    state = doc.get_update()
    ranges: list[tuple[int, int]] = []
    while len(ranges) < 8:
        s = rng.randrange(len(text))
        e = rng.randint(s + 1, min(len(text), s + 5))
        if text[s] != "\n" and text[e - 1] != "\n":
            ranges.append((s, e))
    anchors = [to_anchor(state, FIELD, s, e) for s, e in ranges]
    # Right away; then after more edits, by the anchored characters (inserted ones are unique).
    assert resolve_all(state, FIELD, anchors) == [Resolved(s, e) for s, e in ranges]
    eds.run(40)
    now = plain_text(eds.docs[0], FIELD)
    assert all(plain_text(d, FIELD) == now for d in eds.docs)
    found = resolve_all(eds.docs[0].get_update(), FIELD, anchors)
    for (s, e), where in zip(ranges, found, strict=True):
        first, last = text[s], text[e - 1]
        if first.isascii() or last.isascii() or first not in now or last not in now:
            continue  # not traceable, or its ends were deleted: no claim
        assert where == Resolved(now.index(first), now.index(last) + 1), (seed, text[s:e])


@pytest.mark.parametrize("seed", SEEDS[:10])
def test_a_new_anchor_is_where_the_resolver_finds_it(seed: int) -> None:
    """range_anchor tells where the anchor it makes is (a POST seeds the comment reads with it):
    the resolver agrees, for ranges that start or end on line breaks too."""
    rng = random.Random(seed)
    eds = _Editors(rng, clients=3)
    eds.run(40)
    state = eds.docs[0].get_update()
    text = plain_text(eds.docs[0], FIELD)
    for _ in range(8):
        s = rng.randrange(len(text))
        e = rng.randint(s + 1, min(len(text), s + 12))
        if text[s:e].strip("\n"):
            anchor, where = range_anchor(state, FIELD, s, e)
            assert resolve_all(state, FIELD, [anchor]) == [where], (seed, text[s:e])
            kept = len(text[s:e].lstrip("\n"))
            assert (where.start, where.end) == (e - kept, len(text[:e].rstrip("\n")))
