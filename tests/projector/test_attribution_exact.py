"""The fold's cheaper attribution (PF2) gives exactly what the per-update scratch pass gave
(`tests/projector/document_oracle.py`, the module before it): same `touched`, `state`, `clean`
and `refused` for every batch of random logs: several users editing concurrently, paragraphs
added and removed, deletes, formatting, updates logged before the one they depend on (pending),
duplicates and refused bytes, an XML letter or a Y.Text body, any batch boundaries."""

from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text, XmlElement, XmlFragment, XmlText

from gateway.content import initial_update
from projector import document
from projector.document import DocUpdate, fold_document
from tests.projector import document_oracle

FIELD = "default"
USERS = 3
GARBAGE = [b"\x01", b"garbage", b"\xff\xff\x01"]

# (user, action, a, b): a and b pick positions modulo what exists when the op runs.
OPS = st.lists(
    st.tuples(
        st.integers(0, USERS - 1),
        st.sampled_from(["type", "type", "type", "delete", "format", "para", "unpara", "sync"]),
        st.integers(0, 1000),
        st.integers(0, 1000),
    ),
    min_size=1,
    max_size=40,
)


@dataclass
class Log:
    base: bytes
    entries: list[tuple[str, bytes]]  # (user, update), in the order the users made them


def _paragraph_text(root: XmlFragment, index: int) -> XmlText:
    element = root.children[index]
    assert isinstance(element, XmlElement)
    for child in element.children:
        if isinstance(child, XmlText):
            return child
    text = XmlText("")
    element.children.append(text)
    return text


def _xml_edit(root: XmlFragment, action: str, a: int, b: int) -> None:
    count = len(root.children)
    if action == "para" or not count:  # (two users may remove the last two at once)
        root.children.insert(a % (count + 1), XmlElement("paragraph", {}, [XmlText("p")]))
        return
    if action == "unpara":
        if count > 1:
            del root.children[a % count]
        return
    text = _paragraph_text(root, a % count)
    size = _plain(text)
    if action == "type":
        text.insert(b % (size + 1), "xy😀z"[b % 4 :])
    elif action == "delete" and size:
        start = b % size
        del text[start : min(size, start + 1 + a % 3)]
    elif action == "format" and size:
        start = b % size
        text.format(start, min(size, start + 2), {"bold": True})


def _plain(node: Text | XmlText) -> int:
    """How many characters before the first astral one: deletes and formats stay there, where
    every way of counting positions agrees."""
    text = "".join(chunk for chunk, _ in node.diff() if isinstance(chunk, str))
    return next((i for i, c in enumerate(text) if ord(c) > 0xFFFF), len(text))


def _text_edit(body: Text, action: str, a: int, b: int) -> None:
    size = _plain(body)
    if action in ("type", "para"):
        body.insert(b % (size + 1), "\n" if action == "para" else "ab😀\nc"[a % 5 :])
    elif action in ("delete", "unpara") and size:
        start = b % size
        del body[start : min(size, start + 1 + a % 3)]
    elif action == "format" and size:
        start = b % size
        body.format(start, min(size, start + 2), {"bold": True})


def _log(text_body: bool, ops: list[tuple[int, str, int, int]]) -> Log:
    if text_body:
        seed: Doc[Any] = Doc()
        seed.get(FIELD, type=Text).insert(0, "one\ntwo 😀\nthree")
        base = seed.get_update()
    else:
        base = initial_update("one\ntwo\nthree", FIELD)
    docs: list[Doc[Any]] = []
    for _ in range(USERS):
        doc: Doc[Any] = Doc()
        doc.apply_update(base)
        docs.append(doc)
    entries: list[tuple[str, bytes]] = []
    for user, action, a, b in ops:
        doc = docs[user]
        if action == "sync":  # user takes in another's edits (no log entry)
            other = docs[a % USERS]
            doc.apply_update(other.get_update(doc.get_state()))
            continue
        for _ in range(1 + (a // 7) % 10 if action == "type" else 1):  # a run of keystrokes
            vector = doc.get_state()
            if text_body:
                _text_edit(doc.get(FIELD, type=Text), action, a, b)
            else:
                _xml_edit(doc.get(FIELD, type=XmlFragment), action, a, b)
            update = doc.get_update(vector)
            if update != b"\x00\x00":
                entries.append((f"u{user}", update))
    return Log(base, entries)


@st.composite
def logged(draw: st.DrawFn) -> tuple[Log, list[DocUpdate], list[int]]:
    """A log of updates with some disorder, and batch sizes to fold it in."""
    log = _log(draw(st.booleans()), draw(OPS))
    entries = list(log.entries)
    for at in draw(st.lists(st.integers(0, 100), max_size=4)):  # an answer before its cause
        if len(entries) > 1:
            i = at % (len(entries) - 1)
            entries[i], entries[i + 1] = entries[i + 1], entries[i]
    for at in draw(st.lists(st.integers(0, 100), max_size=2)):  # a retried append
        if entries:
            entries.insert(at % (len(entries) + 1), entries[at % len(entries)])
    for at in draw(st.lists(st.integers(0, 100), max_size=2)):  # poison
        entries.insert(at % (len(entries) + 1), ("u9", GARBAGE[at % len(GARBAGE)]))
    lost: bool = draw(st.booleans())  # a dependency that never comes
    if entries and lost:
        entries.pop(draw(st.integers(0, len(entries) - 1)))
    updates = [DocUpdate(i, user, 1000 + i, data) for i, (user, data) in enumerate(entries)]
    sizes = draw(st.lists(st.integers(1, 30), min_size=1, max_size=8))
    return log, updates, sizes


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logged())
def test_every_batch_folds_as_the_per_update_scratch_pass(
    case: tuple[Log, list[DocUpdate], list[int]],
) -> None:
    _folds_alike(*case)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logged())
def test_long_batches_fold_alike_whatever_the_size_of_the_state(
    case: tuple[Log, list[DocUpdate], list[int]],
) -> None:
    """The same, the head of every long batch applied at once first whatever the size of the
    state (`_attribute_tail`; its size rule would leave most of these to the pass one by one)."""
    head_bytes = document.HEAD_BYTES
    document.HEAD_BYTES = 1 << 40
    try:
        _folds_alike(*case)
    finally:
        document.HEAD_BYTES = head_bytes


def _folds_alike(log: Log, updates: list[DocUpdate], sizes: list[int]) -> None:
    state, clean, at, turn = log.base, True, 0, 0
    while at < len(updates):
        batch = updates[at : at + sizes[turn % len(sizes)]]
        at, turn = at + len(batch), turn + 1
        got = fold_document(state, batch, FIELD, clean)
        want = document_oracle.fold_document(state, batch, FIELD, clean)
        assert got.touched == want.touched
        assert (got.state, got.clean, got.refused) == (want.state, want.clean, want.refused)
        state, clean = want.state, want.clean
