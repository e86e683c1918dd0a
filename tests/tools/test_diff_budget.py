"""One diff's work is bounded (tools/diff.py `Budget`): where a run's edits lie far apart with
nothing untouched between (a Y.Text body, one long paragraph), difflib's search for the longest
match grows with the text and the edits; past the budget a run is compared by a quick, rough
alignment (`_quick`). The hunks still turn the start text into the end text exactly, and the
output says the attribution was coarse. Within the budget, nothing changes."""

import difflib
import random
from typing import Any

import pytest
from pycrdt import Doc, Text, XmlElement, XmlFragment, XmlText

from projector.document import DocUpdate
from snapshotter.document import LetterDocument
from tools import diff
from tools.diff import (
    Budget,
    Diff,
    Hunk,
    _attribute,
    _hunks,
    _Matcher,
    _opcodes,
    _quick,
    _Tracker,
    format_text,
)
from tools.replay import Replayed

FIELD = "default"
WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit. "
Runs = list[tuple[str, list[DocUpdate]]]


def _replayed(state: bytes) -> Replayed:
    return Replayed("l", 0, state, 0, None, None, 0, LetterDocument(FIELD, state).snapshot())


def _scattered(body: str, seed: int, runs: int = 6, edits: int = 8) -> tuple[bytes, bytes, Runs]:
    """A letter of repetitive text typed at once, then runs of two users' updates each typing
    or deleting a few characters at places far apart."""
    rng = random.Random(seed)
    doc: Doc[Any] = Doc()
    typed = (WORDS * 60)[:3000]
    text: Any
    if body == "text":
        text = doc.get(FIELD, type=Text)
        text.insert(0, "\n".join(typed[i : i + 300] for i in range(0, len(typed), 300)))
    else:
        root = doc.get(FIELD, type=XmlFragment)
        root.children.append(XmlElement("paragraph", {}, [XmlText(typed)]))
        text = root.children[0].children[0]
    start = doc.get_update()
    grouped: Runs = []
    for run in range(runs):
        grouped.append((f"user-{run % 2}", []))
        for _ in range(edits):
            before = doc.get_state()
            at = rng.randrange(len(text) - 10)
            if rng.random() < 0.5:
                text.insert(at, rng.choice(["the ", "claim ", "Sir\n", "we "]))
            else:
                del text[at : at + rng.randint(1, 6)]
            grouped[-1][1].append(DocUpdate(run, "", 0, doc.get_update(before)))
    return start, doc.get_update(), grouped


def _applied(start: str, hunks: list[Hunk]) -> str:
    lines = start.split("\n")
    for hunk in reversed(hunks):  # from the end: earlier line numbers stay valid
        at = hunk.start_line - 1
        assert lines[at : at + len(hunk.removed)] == hunk.removed
        lines[at : at + len(hunk.removed)] = hunk.added
    return "\n".join(lines)


def _rebuilt(a: str, b: str, opcodes: list[tuple[str, int, int, int, int]]) -> str:
    """`b` from `a` by the opcodes, checking they cover both texts in order."""
    out, i, j = [], 0, 0
    for op, i0, i1, j0, j1 in opcodes:
        assert (i0, j0) == (i, j) and i0 <= i1 and j0 <= j1
        if op == "equal":
            assert a[i0:i1] == b[j0:j1]
            out.append(a[i0:i1])
        else:
            out.append(b[j0:j1])
        i, j = i1, j1
    assert (i, j) == (len(a), len(b))
    return "".join(out)


@pytest.mark.parametrize("body", ["text", "paragraph"])
def test_past_the_budget_the_hunks_still_give_the_end_text_and_say_coarse(body: str) -> None:
    start, end, runs = _scattered(body, seed=1)
    a, b = _replayed(start), _replayed(end)
    budget = Budget(20_000)  # a few searches, then none
    hunks, _ = _attribute(a, b, runs, FIELD, budget)
    assert budget.coarse == len(runs)  # each run's edits lie far apart: each went past
    assert hunks and _applied(a.snapshot.content, hunks) == b.snapshot.content
    for hunk in hunks:  # still someone's, and only the editors'
        assert hunk.authors and set(hunk.authors) <= {"user-0", "user-1"}
    result = Diff("l", a, b, hunks, [], len(runs), budget.coarse, budget.coarse_lines)
    assert result.to_json()["coarse"] == {"runs": len(runs), "of": len(runs), "lines": False}
    assert f"(coarse: {len(runs)} of {len(runs)} runs went past" in format_text(result)


@pytest.mark.parametrize("body", ["text", "paragraph"])
def test_within_the_budget_the_diff_is_exact_and_not_coarse(body: str) -> None:
    start, end, runs = _scattered(body, seed=2)
    a, b = _replayed(start), _replayed(end)
    budget = Budget()
    got = _attribute(a, b, runs, FIELD, budget)
    assert budget.coarse == 0 and not budget.coarse_lines
    unbounded = _attribute(a, b, runs, FIELD, Budget(10**15))
    assert [h.to_json() for h in got[0]] == [h.to_json() for h in unbounded[0]]
    result = Diff("l", a, b, got[0], got[1], len(runs), budget.coarse, budget.coarse_lines)
    assert result.to_json()["coarse"] is None
    assert "coarse" not in format_text(result)


def test_the_hunks_by_line_past_their_budget_give_the_end_text() -> None:
    rng = random.Random(3)
    old_lines = [rng.choice(["", "Dear Sir,", "Regards", f"line {i}"]) for i in range(400)]
    new_lines = list(old_lines)
    for _ in range(30):
        at = rng.randrange(len(new_lines))
        new_lines[at : at + rng.randint(0, 2)] = [rng.choice(["", "the claim", "Sir"])]
    old, new = "\n".join(old_lines), "\n".join(new_lines)
    tracker = _Tracker(old)
    tracker.advance(new, "bob")
    exact, rough = Budget(), Budget(0)
    assert _applied(old, _hunks(old, new, tracker, rough)) == new
    assert rough.coarse == 1
    want = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False).get_opcodes()
    hunks = _hunks(old, new, tracker, exact)
    assert exact.coarse == 0
    assert [(h.start_line, h.removed, h.added) for h in hunks] == [
        (a0 + 1, old_lines[a0:a1], new_lines[b0:b1]) for op, a0, a1, b0, b1 in want if op != "equal"
    ]


@pytest.mark.parametrize("seed", range(30))
def test_the_quick_alignment_rebuilds_the_text(seed: int) -> None:
    rng = random.Random(seed)
    letters = rng.choice(["ab", "lorem ipsum ", "abcdefghij", "😀é\n"])
    a = "".join(rng.choice(letters) for _ in range(rng.randint(0, 400)))
    b = a
    for _ in range(rng.randint(0, 8)):  # edits of `a`, or another text altogether
        at = rng.randint(0, len(b))
        b = (
            b[:at]
            + "".join(rng.choice(letters) for _ in range(rng.randint(0, 40)))
            + b[at + rng.randint(0, 30) :]
        )
    if rng.random() < 0.2:
        b = "".join(rng.choice(letters) for _ in range(rng.randint(0, 400)))
    for gram in (1, 3, 16):
        assert _rebuilt(a, b, _quick(a, b, (0, len(a)), (0, len(b)), gram)) == b
    opcodes, coarse = _opcodes(a, b, Budget(rng.randint(0, 3000)))
    assert _rebuilt(a, b, opcodes) == b
    if not coarse:
        assert opcodes == difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()


def test_the_quick_alignment_finds_small_edits_in_periodic_text() -> None:
    """Where difflib, matching the longest run first, retypes thousands of characters of
    repetitive text, the quick alignment finds the edits themselves."""
    a = (WORDS * 100)[:5000]
    b = a[:1000] + "the " + a[1000:3000] + a[3003:]
    changed = [(i0, i1, j0, j1) for op, i0, i1, j0, j1 in _quick(a, b, (0, 5000), (0, 5001), 16)
               if op != "equal"]  # fmt: skip
    assert changed == [(1000, 1000, 1000, 1004), (3000, 3003, 3004, 3004)]


def test_difflib_is_not_asked_to_scan_all_of_a_long_text_for_a_short_part(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """difflib's search looks at every place of `b` before the part searched, not only the
    part: 71,000 characters against the last of 170 KB took 21 s. That costs more than the
    automaton (the sum of the lengths), which searches it instead, within the budget."""
    a = (WORDS * 400)[:20_000]
    b = a + "x"
    matcher = _Matcher(a, b, budget := Budget())
    searched: list[tuple[int, int]] = []
    longest = diff._longest_common

    def counted(x: str, y: str) -> tuple[int, int, int]:
        searched.append((len(x), len(y)))
        return longest(x, y)

    monkeypatch.setattr(diff, "_longest_common", counted)
    assert matcher.find_longest_match(0, 20_000, 20_000, 20_001).size == 0
    assert searched == [(20_000, 1)]
    assert diff.WORK_BUDGET - budget.left == diff._DIFFLIB_MOST * 20_001
