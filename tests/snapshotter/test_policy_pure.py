"""The pure modules without fixtures: version policy, edit coalescing, document rendering."""

import gc
import random
import weakref
from typing import Any

from pycrdt import Doc, Text, XmlElement, XmlFragment, XmlText

from snapshotter import versions
from snapshotter.audit import Bursts
from snapshotter.document import EditDelta, LetterDocument

POLICY = versions.Policy(activity_ms=300_000, max_updates=3)


def test_autosave_is_due_by_count_or_by_activity_time() -> None:
    state = versions.VersionState()
    for ts in (0, 1000):
        versions.record_update(state, "alice", ts)
        assert not versions.autosave_due(state, ts, POLICY)
    versions.record_update(state, "bob", 2000)
    assert versions.autosave_due(state, 2000, POLICY)
    timed = versions.VersionState()
    versions.record_update(timed, "alice", 10_000)
    assert not versions.autosave_due(timed, 309_999, POLICY)
    assert versions.autosave_due(timed, 310_000, POLICY)


def test_cut_numbers_densely_and_resets_counters() -> None:
    state = versions.VersionState()
    versions.record_update(state, "bob", 5)
    versions.record_update(state, "alice", 6)
    data = versions.cut(state, versions.Kind.AUTOSAVE, "d1")
    assert data == {"type": "autosave", "label": "", "contributors": ["alice", "bob"], "updates": 2}
    assert (state.last_number, state.updates, state.activity_start_ms) == (1, 0, None)
    assert not versions.should_cut(state, versions.Kind.AUTOSAVE, "d1")
    assert not versions.should_cut(state, versions.Kind.SESSION_END, "d1")
    assert versions.should_cut(state, versions.Kind.NAMED, "d1")
    versions.cut(state, versions.Kind.NAMED, "d1", "Final")
    assert state.last_number == 2


def test_bursts_coalesce_per_user_within_the_window() -> None:
    bursts = Bursts(window_ms=5000)
    one = EditDelta(3, 0, {0})
    assert bursts.edit("alice", 10, 1000, one) is None
    assert bursts.edit("bob", 11, 1500, one) is None
    assert bursts.edit("alice", 12, 5900, EditDelta(0, 2, {1})) is None
    closed = bursts.edit("alice", 13, 11_000, one)
    assert closed is not None
    assert (closed.first_offset, closed.last_offset, closed.inserted, closed.deleted) == (
        10,
        12,
        3,
        2,
    )
    assert closed.paragraphs == [0, 1] and closed.updates == 2
    expired = bursts.expire(now_ms=11_000)
    assert [user for user, _ in expired] == ["bob"]
    assert [user for user, _ in bursts.close("alice")] == ["alice"] and not bursts.open


def _tiptap_doc() -> Doc[Any]:
    doc: Doc[Any] = Doc()
    body = doc.get("default", type=XmlFragment)
    level: Any = {"level": 2}  # pycrdt's hint says str values; numbers work (and TipTap uses them)
    heading = body.children.append(XmlElement("heading", level))
    heading.children.append(XmlText("Re: claim"))
    para = body.children.append(XmlElement("paragraph"))
    text = para.children.append(XmlText("Pay now"))
    text.format(0, 3, {"bold": {}})
    return doc


def test_document_renders_text_and_prosemirror_json_and_measures_edits() -> None:
    source = _tiptap_doc()
    letter = LetterDocument("default")
    delta = letter.apply(source.get_update())
    assert delta.inserted == len("Re: claim") + len("Pay now") and delta.paragraphs == {0, 1}
    snap = letter.snapshot()
    assert snap.content == "Re: claim\nPay now"
    assert snap.document == {
        "type": "doc",
        "content": [
            {
                "type": "heading",
                "attrs": {"level": 2},
                "content": [{"type": "text", "text": "Re: claim"}],
            },
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "Pay", "marks": [{"type": "bold"}]},
                    {"type": "text", "text": " now"},
                ],
            },
        ],
    }
    before = source.get_state()
    para = source.get("default", type=XmlFragment).children[1]
    assert isinstance(para, XmlElement)
    text = para.children[0]
    assert isinstance(text, XmlText)
    del text[3:7]
    delta = letter.apply(source.get_update(before))
    assert (delta.inserted, delta.deleted, delta.paragraphs) == (0, 4, {1})
    restored = LetterDocument("default", letter.state())
    assert restored.snapshot() == letter.snapshot() != snap


def test_a_plain_ytext_body_works_too() -> None:
    source: Doc[Any] = Doc()
    body = source.get("default", type=Text)
    body += "line one\nline two"
    letter = LetterDocument("default")
    letter.apply(source.get_update())
    before = source.get_state()
    body.insert(9, "new ")
    delta = letter.apply(source.get_update(before))
    assert (delta.inserted, delta.paragraphs) == (4, {1})
    assert letter.snapshot().content == "line one\nnew line two"
    assert letter.snapshot().document["content"][1] == {
        "type": "paragraph",
        "content": [{"type": "text", "text": "new line two"}],
    }


def test_incremental_rendering_matches_a_fresh_render() -> None:
    rng = random.Random(3)
    source: Doc[Any] = Doc()
    body = source.get("default", type=XmlFragment)
    letter = LetterDocument("default")
    for step in range(300):
        before = source.get_state()
        with source.transaction():
            _random_edit(body, rng)
        letter.apply(source.get_update(before))
        if step % 7 == 0:
            fresh = LetterDocument("default", source.get_update())
            assert letter.snapshot() == fresh.snapshot()


def _random_edit(body: XmlFragment, rng: random.Random) -> None:
    count = len(body.children)
    roll = rng.random()
    if count == 0 or roll < 0.2:
        para = XmlElement("paragraph", None, [XmlText(rng.choice(["a", "bc", "def"]))])
        body.children.insert(rng.randrange(count + 1), para)
    elif roll < 0.3:
        del body.children[rng.randrange(count)]
    else:
        element = body.children[rng.randrange(count)]
        assert isinstance(element, XmlElement)
        text = element.children[0]
        assert isinstance(text, XmlText)
        text.insert(rng.randrange(len(text) + 1), "xy")
        if rng.random() < 0.3:
            text.format(0, 1, {"italic": {}})


def test_plain_text_of_nested_blocks_and_hard_breaks() -> None:
    source: Doc[Any] = Doc()
    body = source.get("default", type=XmlFragment)
    para = body.children.append(XmlElement("paragraph"))
    para.children.append(XmlText("Line one"))
    para.children.append(XmlElement("hardBreak"))
    para.children.append(XmlText("line two"))
    items = body.children.append(XmlElement("bulletList"))
    for word in ("first", "second"):
        item = items.children.append(XmlElement("listItem"))
        item.children.append(XmlElement("paragraph", None, [XmlText(word)]))
    body.children.append(XmlElement("paragraph"))  # an empty paragraph is an empty line
    letter = LetterDocument("default", source.get_update())
    assert letter.snapshot().content == "Line one\nline two\nfirst\nsecond\n"


def test_a_letter_document_dropped_is_freed() -> None:
    """Its observer lives in Rust, out of the cyclic collector's sight: it must not keep the
    document alive (the tools render one per version, the snapshotter drops evicted letters')."""
    source = _tiptap_doc()
    letter = LetterDocument("default", source.get_update())
    source.get("default", type=XmlFragment).children.append(XmlElement("paragraph"))
    assert letter.apply(source.get_update()).paragraphs == {2}  # the observer at work
    freed = weakref.ref(letter)
    del letter
    gc.collect()
    assert freed() is None
