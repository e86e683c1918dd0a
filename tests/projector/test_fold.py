"""The pure fold, without services."""

import json
import random
from dataclasses import replace

import pytest

from projector.awareness import AwarenessDecodeError, decode_awareness, presence
from projector.fold import fold_letter
from projector.state import LetterState
from schemas import (
    CommentDeleted,
    CommentEdited,
    CommentResolved,
    Event,
    LetterCreated,
    Topic,
    new_event,
)
from tests.projector.support import (
    FIRM,
    Editor,
    awareness,
    comment,
    created,
    doc_text,
    items,
    joined,
    left,
    reply,
)


def test_out_of_order_updates_converge_in_one_batch() -> None:
    ed = Editor("L")
    ups = [ed.paragraph("a"), ed.type(0, "b"), ed.type(0, "c"), ed.paragraph("d")]
    state = LetterState("L")
    fold_letter(state, items([ed.event(u) for u in reversed(ups)]), "default")
    assert doc_text(state.doc) == "<paragraph>abc</paragraph><paragraph>d</paragraph>"


def test_a_stretch_folded_again_changes_nothing() -> None:
    ed = Editor("L")
    events = [ed.event(ed.paragraph("x")), joined("L", "c1"), comment("L", "t", "hi")]
    state = LetterState("L")
    fold_letter(state, items(events), "default")
    before = (state.doc, state.rest_json())
    outcome = fold_letter(state, items(events), "default")
    assert (state.doc, state.rest_json()) == before and not outcome.folded


def test_a_retried_append_is_folded_once() -> None:
    first = reply("L", "t", "r1", "once")
    edit = new_event(
        "L", CommentEdited(thread_id="t", comment_id="r1", body="edited"), firm=FIRM, user="u2"
    )
    state = LetterState("L")
    # The retry puts `first` again after the edit: same event id, later offset.
    fold_letter(state, items([comment("L", "t", "hi"), first, edit, first]), "default")
    bodies = [c["body"] for c in state.comments["t"]["comments"]]
    assert bodies == ["hi", "edited"]


def test_comment_lifecycle() -> None:
    state = LetterState("L")
    resolved = new_event("L", CommentResolved(thread_id="t"), firm=FIRM, user="u1")
    fold_letter(
        state, items([comment("L", "t", "a"), reply("L", "t", "r", "b"), resolved]), "default"
    )
    assert state.comments["t"]["resolved"] is True
    deletes = [CommentDeleted(thread_id="t", comment_id=c) for c in ("t-0", "r")]
    fold_letter(
        state, items([new_event("L", d, firm=FIRM, user="u1") for d in deletes], 3), "default"
    )
    assert state.comments == {}


def test_user_leaves_presence_with_the_last_connection() -> None:
    state = LetterState("L")
    fold_letter(state, items([joined("L", "a"), joined("L", "b"), left("L", "a")]), "default")
    assert set(presence(state)) == {"u1"}
    fold_letter(state, items([left("L", "b")], 3), "default")
    late = awareness("L", 5, 9, {"user": {"id": "u1"}}, conn="b")  # after its leave
    fold_letter(state, items([late], 0, Topic.PRESENCE), "default")
    assert presence(state) == {}


def test_presence_status_explicit_or_derived_from_activity() -> None:
    state = LetterState("L")
    fold_letter(state, items([joined("L", "a", "u1"), joined("L", "b", "u2")]), "default")
    aw = awareness("L", 1, 1, {"user": {"id": "u2", "name": "Bo"}, "status": "away"}, "b", "u2")
    fold_letter(state, items([aw], 0, Topic.PRESENCE), "default")
    now = presence(state)
    assert now["u2"]["status"] == "away" and now["u2"]["name"] == "Bo"
    assert now["u1"]["status"] == "active"
    state.clock += 61_000
    assert presence(state)["u1"]["status"] == "idle"
    state.clock += 300_000
    assert presence(state)["u1"]["status"] == "away"


def test_awareness_renewal_is_not_activity() -> None:
    state = LetterState("L")
    aw = {"user": {"id": "u1"}, "cursor": 3}
    fold_letter(state, items([awareness("L", 1, 1, aw, "c")], 0, Topic.PRESENCE), "default")
    seen = state.activity["u1"]["seen"]
    renewal = awareness("L", 1, 2, aw, "c")
    object.__setattr__(renewal.envelope, "ts", seen + 15_000)
    fold_letter(state, items([renewal], 1, Topic.PRESENCE), "default")
    assert state.activity["u1"]["seen"] == seen and state.clients["1"]["clock"] == 2


@pytest.mark.parametrize("raw", [b"", b"\x01\x01", b"\x01\x01\x01\x03abc", b"\x01\x01\x01\x01\x31"])
def test_bad_awareness_bytes_are_refused(raw: bytes) -> None:
    with pytest.raises(AwarenessDecodeError):
        decode_awareness(raw)


def test_recent_edits_are_attributed_per_user_and_paragraph() -> None:
    ann, bob = Editor("L", "ann"), Editor("L", "bob")
    setup = [ann.paragraph("one"), ann.paragraph("two"), ann.paragraph("three")]
    for u in setup:
        bob.doc.apply_update(u)
    state = LetterState("L")
    fold_letter(state, items([ann.event(u) for u in setup]), "default")
    batch = [bob.event(bob.type(2, "!")), ann.event(ann.type(0, "?"))]
    fold_letter(state, items(batch, 3), "default")
    assert state.recent["2"]["userId"] == "bob" and state.recent["0"]["userId"] == "ann"
    assert state.recent["1"]["userId"] == "ann"


def test_a_refused_update_is_reported_and_the_rest_folded() -> None:
    ed = Editor("L")
    good = ed.event(ed.paragraph("ok"))
    outcome = fold_letter(LetterState("L"), items([ed.event(b"\xff\xfe"), good]), "default")
    assert [(t, o) for t, o, _ in outcome.poison] == [(Topic.LETTERS, 0)]
    assert outcome.folded["doc.update"] == 1


def test_recent_edits_of_a_text_body_count_lines() -> None:
    from pycrdt import Doc, Text

    doc: Doc[Text] = Doc()
    body = doc.get("default", type=Text)
    body += "zero\none\ntwo"
    start = doc.get_update()
    state = LetterState("L")
    fold_letter(
        state, items([new_event("L", start, firm=FIRM, user="a", type="doc.update")]), "default"
    )
    sv = doc.get_state()
    body.insert(len("zero\none\nt"), "!")
    edit = doc.get_update(sv)
    fold_letter(
        state, items([new_event("L", edit, firm=FIRM, user="b", type="doc.update")], 1), "default"
    )
    assert state.recent["2"]["userId"] == "b" and state.recent["0"]["userId"] == "a"


def test_recent_edits_do_not_depend_on_where_batches_split() -> None:
    """The names in `recent` follow log order, so a projector that crashed mid-stretch (other
    batch boundaries) folds what a replay does: an edit before its user's join has no name."""
    ed = Editor("L")
    events = [ed.event(ed.paragraph("a")), joined("L", "c1"), ed.event(ed.paragraph("b"))]
    whole, split = LetterState("L"), LetterState("L")
    fold_letter(whole, items(events), "default")
    for i, event in enumerate(events):
        fold_letter(split, items([event], i), "default")
    assert whole.rest_json() == split.rest_json()
    assert [whole.recent[p]["name"] for p in ("0", "1")] == ["", "U1"]


def test_the_creators_initial_content_is_named_before_they_join() -> None:
    made = created("L", "ann")
    assert isinstance(made.payload, LetterCreated)
    made = replace(made, payload=made.payload.model_copy(update={"creator_name": "Ann Lee"}))
    ed = Editor("L", "ann")
    state = LetterState("L")
    fold_letter(state, items([made, ed.event(ed.paragraph("Dear Sir"))]), "default")
    assert state.recent["0"]["userId"] == "ann" and state.recent["0"]["name"] == "Ann Lee"
    # A record logged before the name was kept, or a join later: as before.
    older = LetterState("L")
    fresh = Editor("L", "ann")
    fold_letter(older, items([created("L", "ann"), fresh.event(fresh.paragraph("x"))]), "default")
    assert older.recent["0"]["name"] == ""
    fold_letter(state, items([joined("L", "c1", "ann")], 2), "default")
    assert state.users["ann"] == {"name": "ANN", "color": "#123456"}


def _history(rng: random.Random) -> tuple[list[Event], list[Event]]:
    """A letter's letters and presence records, as test_crash.py's bursts make them."""
    eds = [Editor("L", f"u{i}") for i in range(3)]
    letters, presence_ = [eds[0].event(eds[0].paragraph("start"))], []
    for ed in eds[1:]:
        ed.doc.apply_update(eds[0].doc.get_update())
    for i in range(60):
        ed, roll = rng.choice(eds), rng.random()
        if roll < 0.6:
            letters.append(ed.event(ed.type(rng.randrange(len(ed.root.children)), "ab "[i % 3])))
        elif roll < 0.7:
            letters.append(ed.event(ed.paragraph(f"p{i}")))
        elif roll < 0.8:
            letters += [comment("L", f"t{i}", "c", user=ed.user), reply("L", f"t{i}", f"r{i}", "r")]
        elif roll < 0.9:
            conn = f"c{i}"
            letters += [joined("L", conn, ed.user), left("L", conn, ed.user)]
        else:
            state = {"user": {"id": ed.user}, "cursor": {"anchor": i}}
            presence_.append(awareness("L", 100 + i % 5, i, state, f"aw-{ed.user}", ed.user))
    return letters, presence_


@pytest.mark.parametrize("seed", range(12))
def test_a_fold_does_not_depend_on_batches_or_topic_interleaving(seed: int) -> None:
    """A crashed projector resumes with other batches than a replay's: both must agree."""
    rng = random.Random(seed)
    letters, presence_ = _history(rng)
    whole = LetterState("L")
    fold_letter(whole, items(letters) + items(presence_, 0, Topic.PRESENCE), "default")
    by_topic = {Topic.LETTERS: items(letters), Topic.PRESENCE: items(presence_, 0, Topic.PRESENCE)}
    split = LetterState("L")
    while any(by_topic.values()):  # batches of 1-8 records, the topics in any interleaving
        topic = rng.choice([t for t, rest in by_topic.items() if rest])
        take = rng.randint(1, 8)
        fold_letter(split, by_topic[topic][:take], "default")
        by_topic[topic] = by_topic[topic][take:]
    assert doc_text(split.doc) == doc_text(whole.doc)
    assert json.loads(split.rest_json()) == json.loads(whole.rest_json())
