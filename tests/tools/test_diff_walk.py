"""The diff's walk (tools/diff.py `_attribute`) keeps one document through the runs and compares
only what a run touched, yet attributes text and formatting exactly as the walk it replaced:
every run folded into the whole state, rendered anew, its text compared whole and every
character's formatting compared (`_reference`, kept here). Random co-editing histories of
three clients whose updates cross (concurrent edits merged), with refused updates among them."""

import difflib
import random
from collections.abc import Callable, Iterator
from typing import Any, cast

import pycrdt
import pytest
from pycrdt import Doc, Text, XmlElement, XmlFragment, XmlText

from projector.document import DocUpdate, fold_document
from schemas.quarantine import PASSTHROUGH
from snapshotter.document import LetterDocument, Snapshot
from tools import diff
from tools.diff import Hunk, _attribute, _Char, _hunks, _Rendered, _Tracker
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


def _reference(a: Replayed, b: Replayed, runs: Runs) -> tuple[list[Hunk], list[FormatChange]]:
    state, tracker = a.state, _Tracker(a.snapshot.content)
    keys = _keys(a.snapshot)
    for char, key in zip(tracker.chars, keys, strict=True):
        char.base = key
    for user, updates in runs:
        for update in updates:
            state = _fold(state, update)
        snapshot = LetterDocument(FIELD, state).snapshot()
        old, new, new_keys = tracker.text, snapshot.content, _keys(snapshot)
        short, lo, hi = min(len(old), len(new)), 0, 0
        while lo < short and old[lo] == new[lo]:
            lo += 1
        while hi < short - lo and old[-1 - hi] == new[-1 - hi]:
            hi += 1
        kept = [(i, i) for i in range(lo)]
        chars: list[_Char] = []
        matcher = difflib.SequenceMatcher(
            None, old[lo : len(old) - hi], new[lo : len(new) - hi], autojunk=False
        )
        for op, a0, a1, b0, _ in matcher.get_opcodes():
            if op == "equal":
                kept += [(lo + a0 + k, lo + b0 + k) for k in range(a1 - a0)]
                continue
            for gone in tracker.chars[lo + a0 : lo + a1]:
                if gone.origin is not None:
                    tracker.deleted_by.setdefault(gone.origin, set()).add(user)
        kept += [(len(old) - hi + k, len(new) - hi + k) for k in range(hi)]
        moved = {j: tracker.chars[i] for i, j in kept}
        for j in range(len(new)):
            chars.append(moved.get(j) or _Char(None, user, new_keys[j]))
        for i, j in kept:
            was, now = keys[i], new_keys[j]
            if was != now and NONE not in (was, now):
                char = tracker.chars[i]
                char.by = char.by or {}
                for name in aspects(was, now):
                    char.by.setdefault(name, set()).add(user)
        tracker.text, tracker.chars, keys = new, chars, new_keys
    layout = cast(Any, _PerChar(keys))
    return _hunks(a.snapshot.content, b.snapshot.content, tracker), changes(
        tracker.text, layout, tracker.chars
    )


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
    seed: int, body: type[XmlFragment] | type[Text], refused: bool = True
) -> tuple[bytes, bytes, Runs]:
    """(start state, end state, runs): three clients editing at once, their updates reaching
    the others late (crossing ones merged), some runs of one user long."""
    rng = random.Random(seed)
    clients = [_Client(f"user-{i}", body) for i in range(3)]
    edit: Callable[[random.Random, _Client], None] = (
        _xml_edit if body is XmlFragment else _text_edit
    )
    log: list[tuple[str, bytes]] = []
    for step in range(rng.randint(30, 70)):
        client = rng.choice(clients) if rng.random() < 0.6 or not log else clients[step % 3]
        for update in client.inbox:
            client.doc.apply_update(update)
        client.inbox.clear()
        before = client.doc.get_state()
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
        skipped = _reference(a, b, without)
        if skipped != _reference(a, b, runs):
            break
        runs = [run for run in without if run[1]]
    apply = _Rendered.apply

    def panicking(letter: _Rendered, update: bytes) -> Any:
        result = apply(letter, update)  # applied, then the panic
        if update is culprit.data:
            raise _Panic("boom")
        return result

    monkeypatch.setattr(_Rendered, "apply", panicking)
    _same(_attribute(a, b, runs, FIELD), skipped)


def _end(start: bytes, runs: Runs) -> bytes:
    for _, updates in runs:
        for update in updates:
            start = _fold(start, update)
    return start


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
