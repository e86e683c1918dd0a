"""Deleting whole paragraphs, one carrying a comment, and undoing it brings the comment back.

y-prosemirror deletes a selection of whole paragraphs as their Y.XmlElements; Yjs'
UndoManager puts back copies of the elements (new ids, each copy's right origin the deleted
element) holding copies of their text, in new Y.XmlTexts. A replica (the gateway's document,
the other pages) has garbage-collected the deleted paragraphs' content, so the anchor's
characters no longer name their paragraph: the resolver finds the quote in the restored
paragraphs instead (gateway/collab/anchors.py `Resolver._reparented`, as anchors.ts). The edits
are made by stock Yjs in Node, as the browser makes them; each update is applied to the
replica as the gateway receives it."""

import pytest

from tests.collab.undo_replay import covered_after_steps

QUOTE = "police report number 1011"
TEXT = f"Dear Sir,\nYes. The {QUOTE} says so.\nThe second one is lost.\nRegards"

# TipTap's paragraphs; paragraphs [at, at + count) deleted as y-prosemirror does, then the steps
# named by argv ("undo", "redo", "cut", "type:<text>": a new paragraph typed where they were). The
# updates of each step are printed (base64).
YJS = r"""
const Y = require('yjs')
const doc = new Y.Doc()
const out = []
doc.on('update', (u) => out.push(Buffer.from(u).toString('base64')))
const fragment = doc.getXmlFragment('default')
const [quote, text, at, count, ...actions] = process.argv.slice(1)
const paragraph = (line) => {
  const p = new Y.XmlElement('paragraph')
  p.insert(0, [new Y.XmlText(line)])
  return p
}
fragment.insert(0, text.split('\n').map(paragraph))
const undo = new Y.UndoManager(fragment, { captureTimeout: 0 })
const step = (f) => { const n = out.length; f(); return out.slice(n) }
const created = out.slice()
const steps = [step(() => fragment.delete(Number(at), Number(count)))]
for (const action of actions) {
  if (action === 'undo') steps.push(step(() => undo.undo()))
  else if (action === 'redo') steps.push(step(() => undo.redo()))
  else if (action === 'cut') {  // the quote's first occurrence, by another page (not undone)
    const text = fragment.get(1).get(0)
    const cut = () => text.delete(text.toString().indexOf(quote), quote.length)
    steps.push(step(() => doc.transact(cut, 'colleague')))
  }
  else steps.push(step(() => fragment.insert(Number(at), [paragraph(action.slice(5))])))
}
process.stdout.write(JSON.stringify({ created, steps }))
"""


def _edited(text: str, at: int, count: int, *actions: str) -> list[str | None]:
    """What the anchor on QUOTE covers on the replica after the deletion and each action."""
    return covered_after_steps(YJS, [QUOTE, text, str(at), str(count), *actions], QUOTE)


@pytest.mark.parametrize(
    ("at", "count"),
    [(1, 2), (0, 3), (1, 1), (0, 4)],  # its paragraph and the next, ..., the whole letter
)
def test_undoing_the_deletion_of_whole_paragraphs(at: int, count: int) -> None:
    # A redo deletes the copies; an undo again copies the copies.
    seen = _edited(TEXT, at, count, "undo", "redo", "undo", "redo", "undo")
    assert seen == [None, QUOTE, None, QUOTE, None, QUOTE]


def test_the_quote_found_at_its_place_in_its_paragraph() -> None:
    text = f"Dear Sir,\nOn the {QUOTE[:6]} and then {QUOTE}.\nRegards"
    assert _edited(text, 1, 1, "undo") == [None, QUOTE]


def test_a_paragraph_typed_in_their_place_is_other_text() -> None:
    """A new paragraph typed where the deleted ones were has the first deleted element as right
    origin, as a copy has: taken only if it reads as the quote, else the thread stays
    detached."""
    assert _edited(TEXT, 1, 2, "type:Something else entirely.") == [None, None]


def test_an_ambiguous_quote_stays_detached() -> None:
    """The quote twice in the restored paragraphs: which one was commented is not known."""
    text = f"Dear Sir,\nYes. The {QUOTE} says so.\nAnd {QUOTE} again.\nRegards"
    assert _edited(text, 1, 2, "undo") == [None, None]


def test_the_paragraph_after_a_deleted_one_is_no_copy() -> None:
    """The next paragraph has the deleted one as left origin (typed after it), not as right
    origin: it is no copy, even if it holds the quote."""
    text = f"The {QUOTE} first.\nAnd the {QUOTE} again.\nRegards"
    assert _edited(text, 0, 1) == [None]


def test_text_deleted_inside_its_paragraph_is_not_looked_for_elsewhere() -> None:
    """Its characters deleted (its paragraph not) while deleted paragraphs holding the quote are
    restored: the thread's text is gone, whatever the restored text reads."""
    text = f"Dear Sir,\nYes. The {QUOTE} says so.\nAlso the {QUOTE}.\nRegards"
    # The thread is on the first QUOTE.
    assert _edited(text, 2, 1, "cut", "undo") == [QUOTE, None, None]
