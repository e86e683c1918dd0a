"""The diff's walk (tools/diff.py `_attribute`) keeps one document through the runs and compares
only what a run touched, yet attributes text and formatting exactly as the walk it replaced:
every run folded into the whole state, rendered anew, its text compared and every character's
formatting compared (`_reference`, kept here). Random co-editing histories of three clients
whose updates cross (concurrent edits merged), with refused updates among them.

The reference compares a run's text whole but for the blocks the run left untouched: their
text is kept as it is (anchors), and difflib compares what lies between two of them. Which
blocks a run touched is a fact of the CRDT's change events, so the reference reads it from a
document of its own applied update by update (the snapshotter's, which re-renders only what
the events name), and checks each such block's text alike in its whole renderings. Whole-text
difflib can match characters across an untouched block: text deleted above it and typed again
below would count as moved there, keeping its first author (`test_text_retyped_...`)."""

import difflib
import random
from collections.abc import Callable, Iterator
from itertools import pairwise
from typing import Any, cast

import pycrdt
import pytest
from pycrdt import Doc, Text, XmlElement, XmlFragment, XmlText

from projector.document import DocUpdate, fold_document
from schemas.quarantine import PASSTHROUGH
from snapshotter.document import LetterDocument, Snapshot
from tools import diff
from tools.diff import Hunk, _attribute, _Char, _hunks, _Tracker
from tools.formatting import NONE, FormatChange, Key, _walk, aspects, changes
from tools.replay import Replayed

FIELD = "default"
WORDS = ["the", "claim", "Sir", "we", "write", "about", "a", "of", "Regards", "é", "😀"]
MARKS: list[dict[str, Any]] = [{"bold": {}}, {"italic": {}}, {"bold": None}, {"italic": None},
                               {"link": {"href": "https://x.example/"}}]  # fmt: skip
Runs = list[tuple[str, list[DocUpdate]]]


def _replayed(state: bytes) -> Replayed:
    return Replayed("l", 0, state, 0, None, None, 0, LetterDocument(FIELD, state).snapshot())


def _fold(state: bytes, update: DocUpdate) -> bytes:
    try:
        return fold_document(state, [update], FIELD, attribute=False).state
    except PASSTHROUGH:
        raise
    except BaseException:  # refused or a panic: skipped, as the consumers quarantine it
        return state


def _keys(snapshot: Snapshot) -> list[Key]:
    """Every character's formatting, read from the whole rendered document."""
    table: dict[Key, Key] = {}
    texts, keys = [], []
    for i, node in enumerate(snapshot.document["content"]):
        pieces = _walk(node, "", table)
        texts.append("".join(text for text, _ in pieces))
        keys += ([NONE] if i else []) + [key for text, key in pieces for _ in text]
    known = "\n".join(texts) == snapshot.content
    return keys if known else [NONE] * len(snapshot.content)


class _PerChar:
    """`changes`' view of a layout: one run per character."""

    def __init__(self, keys: list[Key]) -> None:
        self.keys, self.length = keys, len(keys)

    def runs(self, lo: int, hi: int) -> Iterator[tuple[int, int, Key]]:
        for j in range(lo, hi):
            yield j, j + 1, self.keys[j]


def _reference(
    a: Replayed, b: Replayed, runs: Runs, fresh: int | None = None
) -> tuple[list[Hunk], list[FormatChange]]:
    """`fresh`: the run after which the blocks are rendered anew (none is known untouched)."""
    state, tracker = a.state, _Tracker(a.snapshot.content)
    keys = _keys(a.snapshot)
    for char, key in zip(tracker.chars, keys, strict=True):
        char.base = key
    touched = LetterDocument(FIELD, a.state)  # which blocks a run touched (CRDT change events)
    blocks, texts = touched.blocks(), _texts(a.state)
    if "\n".join(texts) != a.snapshot.content:
        blocks = []
    for run, (user, updates) in enumerate(runs):
        for update in updates:
            state = _fold(state, update)
            try:
                touched.apply(update.data)
            except PASSTHROUGH:
                raise
            except BaseException:  # refused or a panic: skipped, as by the consumers
                pass
        if run == fresh:
            touched = LetterDocument(FIELD, state)
        before, blocks = blocks, touched.blocks()
        snapshot = LetterDocument(FIELD, state).snapshot()
        old, new, new_keys = tracker.text, snapshot.content, _keys(snapshot)
        old_texts, texts = texts, _texts(state)
        assert len(texts) == len(blocks)
        # The untouched blocks, in order on both sides, their text alike: anchors.
        pairs = [(i, j) for j, x in enumerate(blocks) for i, y in enumerate(before) if x is y]
        assert [i for i, _ in pairs] == sorted(i for i, _ in pairs)
        was, now = _starts(old_texts), _starts(texts)
        spans = [(0, 0, 0)]
        for i, j in pairs:
            assert old_texts[i] == texts[j]
            spans.append((was[i], now[j], len(texts[j])))
        spans.append((len(old), len(new), 0))
        kept: list[tuple[int, int]] = []
        for (a0, b0, n), (a1, b1, anchored) in pairwise(spans):
            kept += _aligned(old, new, (a0 + n, a1), (b0 + n, b1), tracker, user)
            kept += [(a1 + k, b1 + k) for k in range(anchored)]
        chars: list[_Char] = []
        moved = {j: tracker.chars[i] for i, j in kept}
        for j in range(len(new)):
            chars.append(moved.get(j) or _Char(None, user, new_keys[j]))
        for i, j in kept:
            was_key, now_key = keys[i], new_keys[j]
            if was_key != now_key and NONE not in (was_key, now_key):
                char = tracker.chars[i]
                char.by = char.by or {}
                for name in aspects(was_key, now_key):
                    char.by.setdefault(name, set()).add(user)
        tracker.text, tracker.chars, keys = new, chars, new_keys
    layout = cast(Any, _PerChar(keys))
    return _hunks(a.snapshot.content, b.snapshot.content, tracker), changes(
        tracker.text, layout, tracker.chars
    )


def _texts(state: bytes) -> list[str]:
    """Each block's text, rendered anew."""
    return [text for _, text in LetterDocument(FIELD, state).blocks()]


def _starts(texts: list[str]) -> list[int]:
    return [sum(map(len, texts[:i])) + i for i in range(len(texts) + 1)]


def _aligned(
    old: str, new: str, a: tuple[int, int], b: tuple[int, int], tracker: _Tracker, user: str
) -> list[tuple[int, int]]:
    """(old index, new index) of the characters kept between two anchors: the common prefix,
    then the suffix, then difflib's matches between; the others deleted by `user`."""
    (a0, a1), (b0, b1) = a, b
    kept = []
    while a0 < a1 and b0 < b1 and old[a0] == new[b0]:
        kept.append((a0, b0))
        a0, b0 = a0 + 1, b0 + 1
    suffix = []
    while a0 < a1 and b0 < b1 and old[a1 - 1] == new[b1 - 1]:
        a1, b1 = a1 - 1, b1 - 1
        suffix.append((a1, b1))
    matcher = difflib.SequenceMatcher(None, old[a0:a1], new[b0:b1], autojunk=False)
    for op, i0, i1, j0, _ in matcher.get_opcodes():
        if op == "equal":
            kept += [(a0 + i0 + k, b0 + j0 + k) for k in range(i1 - i0)]
            continue
        for gone in tracker.chars[a0 + i0 : a0 + i1]:
            if gone.origin is not None:
                tracker.deleted_by.setdefault(gone.origin, set()).add(user)
    return kept + suffix[::-1]


class _Client:
    def __init__(self, name: str, body: type[XmlFragment] | type[Text]) -> None:
        self.name = name
        self.doc: Doc[Any] = Doc()
        self.root: Any = self.doc.get(FIELD, type=body)
        self.inbox: list[bytes] = []

    def paragraphs(self) -> list[Any]:
        return list(self.root.children)


def _text_of(block: Any) -> XmlText | None:
    inner = list(block.children)
    while inner and isinstance(inner[0], XmlElement):  # a list item's paragraph
        inner = list(inner[0].children)
    return next((c for c in inner if isinstance(c, XmlText)), None)


def _words(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))


def _xml_edit(rng: random.Random, client: _Client) -> None:
    blocks = client.paragraphs()
    kind = rng.choice(["type", "type", "type", "delete", "format", "format", "block", "split"])
    if not blocks or (kind == "block" and rng.random() < 0.3):
        where = rng.randint(0, len(blocks))
        client.root.children.insert(where, XmlElement("paragraph", {}, [XmlText(_words(rng))]))
        return
    index = rng.randrange(len(blocks))
    text = _text_of(blocks[index])
    if text is None:
        return
    plain = "".join(part for part, _ in text.diff() if isinstance(part, str))
    # yrs counts an XmlText in UTF-8 bytes: offsets at characters' starts.
    at = [len(plain[:i].encode()) for i in range(len(plain) + 1)]
    start, stop = sorted(rng.sample(range(len(at)), 2) if len(at) > 1 else [0, 0])
    if kind == "type":
        text.insert(at[start], _words(rng) + " ", rng.choice([None, {"bold": {}}]))
    elif kind == "delete" and plain:
        del text[at[start] : at[min(stop, start + 6)]]
    elif kind == "format" and plain:
        text.format(at[start], at[min(stop, start + 8)], rng.choice(MARKS))
    elif kind == "block":  # a heading or a list item, as the editor writes them: replaced
        with client.doc.transaction():
            del client.root.children[index]
            if rng.random() < 0.5:
                level: Any = {"level": rng.choice([1, 2])}  # a number, as the editor writes it
                node = XmlElement("heading", level, [XmlText(plain)])
            else:
                item = XmlElement("listItem", {}, [XmlElement("paragraph", {}, [XmlText(plain)])])
                node = XmlElement("bulletList", {}, [item])
            client.root.children.insert(index, node)
    elif kind == "split" and len(blocks) > 1:
        del client.root.children[index]


def _text_edit(rng: random.Random, client: _Client) -> None:
    plain = str(client.root)
    at = [len(plain[:i].encode()) for i in range(len(plain) + 1)]  # in UTF-8 bytes too
    start, stop = sorted(rng.sample(range(len(at)), 2) if len(at) > 1 else [0, 0])
    if rng.random() < 0.35 and plain:
        del client.root[at[start] : at[min(stop, start + 6)]]
    else:
        client.root.insert(at[start], rng.choice([_words(rng), "\n", f"{_words(rng)}\n"]))


def _history(
    seed: int, body: type[XmlFragment] | type[Text], refused: bool = True, edits: int = 1
) -> tuple[bytes, bytes, Runs]:
    """(start state, end state, runs): three clients editing at once, their updates reaching
    the others late (crossing ones merged), some runs of one user long; with `edits` > 1, a
    letter of 12 paragraphs to begin with and up to that many edits per update, anywhere."""
    rng = random.Random(seed)
    clients = [_Client(f"user-{i}", body) for i in range(3)]
    edit: Callable[[random.Random, _Client], None] = (
        _xml_edit if body is XmlFragment else _text_edit
    )
    log: list[tuple[str, bytes]] = []
    if edits > 1:
        for _ in range(12):
            block = XmlElement("paragraph", {}, [XmlText(_words(rng))])
            clients[0].root.children.append(block)
        log.append((clients[0].name, clients[0].doc.get_update()))
        for other in clients[1:]:
            other.doc.apply_update(log[0][1])
    for step in range(rng.randint(30, 70)):
        client = rng.choice(clients) if rng.random() < 0.6 or not log else clients[step % 3]
        for update in client.inbox:
            client.doc.apply_update(update)
        client.inbox.clear()
        before = client.doc.get_state()
        for _ in range(rng.randint(1, edits) if edits > 1 else 1):
            edit(rng, client)
        update = client.doc.get_update(before)
        log.append((client.name, update))
        if refused and rng.random() < 0.04:
            log.append((client.name, b"\x01\x02not an update"))  # refused, skipped
        for other in clients:
            if other is not client:
                other.inbox.append(update)
    cut = rng.randint(1, len(log) // 2)
    states: list[bytes] = []
    doc: Doc[Any] = Doc()
    for i, (_, update) in enumerate(log):
        if i == cut:
            states.append(doc.get_update())
        try:
            doc.apply_update(update)
        except ValueError:
            pass
    runs: Runs = []
    for offset, (user, update) in enumerate(log[cut:]):
        if not runs or runs[-1][0] != user:
            runs.append((user, []))
        runs[-1][1].append(DocUpdate(offset, "", 0, update))
    return states[0], doc.get_update(), runs


def _same(
    got: tuple[list[Hunk], list[FormatChange]], want: tuple[list[Hunk], list[FormatChange]]
) -> None:
    assert [h.to_json() for h in got[0]] == [h.to_json() for h in want[0]]
    assert [f.to_json() for f in got[1]] == [f.to_json() for f in want[1]]


@pytest.mark.parametrize("seed", range(40))
def test_the_walk_attributes_as_the_whole_state_walk(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    if seed % 2:  # the suffix automaton's search for every match, not only long texts'
        monkeypatch.setattr(diff, "_DIFFLIB_MOST", 0)
    start, end, runs = _history(seed, XmlFragment)
    a, b = _replayed(start), _replayed(end)
    _same(_attribute(a, b, runs, FIELD), _reference(a, b, runs))


@pytest.mark.parametrize("seed", range(20))
def test_runs_that_touch_blocks_far_apart_attribute_as_the_whole_state_walk(seed: int) -> None:
    """Between the blocks a run touched, those it did not touch are anchors (their text kept)."""
    start, end, runs = _history(seed, XmlFragment, edits=4)
    a, b = _replayed(start), _replayed(end)
    _same(_attribute(a, b, runs, FIELD), _reference(a, b, runs))


@pytest.mark.parametrize("seed", range(10))
def test_a_text_body_walk_attributes_as_the_whole_state_walk(seed: int) -> None:
    start, end, runs = _history(seed, Text)
    a, b = _replayed(start), _replayed(end)
    _same(_attribute(a, b, runs, FIELD), _reference(a, b, runs))


def test_the_walk_decodes_the_state_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each update is applied once to one document: not the whole state again for each run
    (what made a long, co-edited letter's diff take seconds per thousand runs)."""
    start, end, runs = _history(3, XmlFragment, refused=False)
    a, b = _replayed(start), _replayed(end)
    decoded: list[int] = []
    apply_update = pycrdt.Doc.apply_update

    def counted(doc: Any, update: bytes) -> None:
        decoded.append(len(update))
        apply_update(doc, update)

    monkeypatch.setattr(pycrdt.Doc, "apply_update", counted)
    _attribute(a, b, runs, FIELD)
    assert len(runs) > 10
    # The start state twice: the walk's document, and a look for parts pending in it.
    assert sum(decoded) <= 2 * len(start) + sum(len(u.data) for _, us in runs for u in us)


class _Panic(BaseException):
    """As pyo3's PanicException: not an Exception."""


def test_an_update_pycrdt_panics_on_is_skipped_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """It may have left the document half changed: the walk goes on without any of it (the
    last update of the history, which no other depends on, and one that changes the diff)."""
    start, _, runs = _history(5, XmlFragment, refused=False)
    while True:
        culprit = runs[-1][1][-1]
        without = [*runs[:-1], (runs[-1][0], runs[-1][1][:-1])]
        a, b = _replayed(start), _replayed(_end(start, without))
        # The walk renders the blocks anew after a panic: none is known untouched.
        skipped = _reference(a, b, without, fresh=len(without) - 1)
        if skipped != _reference(a, b, runs):
            break
        runs = [run for run in without if run[1]]
    apply = LetterDocument.apply

    def panicking(letter: LetterDocument, update: bytes) -> Any:
        result = apply(letter, update)  # applied, then the panic
        if update is culprit.data:
            raise _Panic("boom")
        return result

    monkeypatch.setattr(LetterDocument, "apply", panicking)
    _same(_attribute(a, b, runs, FIELD), skipped)


def _end(start: bytes, runs: Runs) -> bytes:
    for _, updates in runs:
        for update in updates:
            start = _fold(start, update)
    return start


def test_text_retyped_past_an_untouched_paragraph_is_the_typists() -> None:
    """Bob deletes Alice's sentence and types it again two paragraphs down, in one run: his
    characters, not hers moved across the paragraph between (which difflib, comparing the text
    from the first change to the last, would match her sentence past)."""
    doc: Doc[Any] = Doc()
    root = doc.get(FIELD, type=XmlFragment)
    for text in ["", "mid", "q"]:
        root.children.append(XmlElement("paragraph", {}, [XmlText(text)]))
    start = doc.get_update()
    first, _, last = (_text_of(block) for block in root.children)
    assert first is not None and last is not None
    runs: Runs = []

    def typed(user: str, block: XmlText, text: str, replaced: int = 0) -> None:
        before = doc.get_state()
        with doc.transaction():
            del block[0:replaced]
            block.insert(0, text)
        if not runs or runs[-1][0] != user:
            runs.append((user, []))
        runs[-1][1].append(DocUpdate(len(runs), "", 0, doc.get_update(before)))

    typed("alice", first, "the long sentence here")
    typed("bob", first, "z", replaced=len("the long sentence here"))
    typed("bob", last, "the long sentence here ")
    a, b = _replayed(start), _replayed(doc.get_update())
    hunks, _ = _attribute(a, b, runs, FIELD)
    assert [(h.removed, h.added, h.authors) for h in hunks] == [
        ([""], ["z"], ["bob"]),
        (["q"], ["the long sentence here q"], ["bob"]),
    ]


@pytest.mark.parametrize("seed", range(20))
def test_the_matcher_matches_as_difflib(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same opcodes as difflib's on repetitive texts (few letters, repeated words), with
    its longest-match search by suffix automaton everywhere."""
    monkeypatch.setattr(diff, "_DIFFLIB_MOST", 0)
    rng = random.Random(seed)
    for _ in range(150):
        letters = rng.choice(["ab", "abc", "abcdefg", "lorem ipsum ", "😀é\n"])
        a = "".join(rng.choice(letters) for _ in range(rng.randint(0, 80)))
        b = "".join(rng.choice(letters) for _ in range(rng.randint(0, 80)))
        if rng.random() < 0.5:  # an edit of `a`
            b = a[: rng.randint(0, len(a))] + b + a[rng.randint(0, len(a)) :]
        want = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
        assert diff._Matcher(a, b).get_opcodes() == want, (a, b)
