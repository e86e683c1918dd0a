"""Diff of a letter's text between two points (version numbers or instants), each change
attributed to the users whose edits in between made it.

Both ends are replays (tools.replay). Attribution follows the text through the edits in
between: the letter's `doc.update` records, grouped into runs of one user's consecutive updates,
are folded in log order as the replay folds them (the projector's `fold_document`; an update
that makes pycrdt panic is skipped, as the consumers quarantine it); after each run, difflib
compares the text before and after (between their common prefix and suffix), so every character
carries who inserted it and every character of the start text who deleted it. The final
difflib hunks (by line) then name the users behind their inserted and deleted characters.

Formatting and block changes (`formatting`: marks set or cleared, a paragraph made a heading or
a list item) follow the same characters (tools/formatting.py): after each run, the characters
it kept whose marks or blocks changed note the run's user for what changed (a mark's name, or
"block"). A character is reported where its formatting at the end differs from the start's, or,
for text inserted in between, from the formatting it was inserted with (that belongs to the
insert), named with the users who changed that part of it since. One document follows the
runs (the snapshotter's `LetterDocument`, which re-renders only the blocks an update touched),
so a run renders and reads the marks of the blocks it touched only; what remains per run over
the whole letter runs in C (the fold's decoding and encoding, the rendered JSON's encoding,
slice comparisons and list copies).
"""

import asyncio
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.live.loader import scan
from projector.document import DocUpdate, fold_document
from schemas.envelope import EventDecodeError, decode_record
from schemas.quarantine import PASSTHROUGH
from snapshotter import read
from snapshotter.document import LetterDocument, Snapshot
from tools.formatting import NONE, FormatChange, Key, Layout, Layouts, aspects, changes, reformatted
from tools.replay import FOLD_CHUNK, Cut, LetterNotFound, Replayed, exists, replay
from tools.sources import Sources
from tools.terminal import visible
from tools.timefmt import iso, parse_instant

Json = dict[str, Any]


class BadRange(ValueError):
    """The end is before the start, or a version does not exist."""


class Backwards(BadRange):
    """The end is before the start; `phrased` names them as the caller's parameters do (the
    CLI's `--from`/`--to`, REST's `from`/`to`)."""

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = start, end
        super().__init__(self.phrased("--from", "--to"))

    def phrased(self, start_name: str, end_name: str) -> str:
        return f"{end_name} (position {self.end}) is before {start_name} (position {self.start})"


@dataclass
class Hunk:
    start_line: int  # 1-based, in the start text
    removed: list[str]
    added: list[str]
    authors: list[str]  # users whose inserts/deletes make this change

    def to_json(self) -> Json:
        return {"line": self.start_line, "removed": self.removed, "added": self.added,
                "authors": self.authors}  # fmt: skip


@dataclass
class Diff:
    letter_id: str
    start: Replayed
    end: Replayed
    hunks: list[Hunk] = field(default_factory=list)
    formatting: list[FormatChange] = field(default_factory=list)

    def to_json(self) -> Json:
        """The CLI's `--json` and REST's body alike."""
        return {
            "letter_id": self.letter_id,
            "from": _end_json(self.start),
            "to": _end_json(self.end),
            "hunks": [h.to_json() for h in self.hunks],
            "formatting": [f.to_json() for f in self.formatting],
            "content": {"from": self.start.snapshot.content, "to": self.end.snapshot.content},
        }


def _end_json(end: Replayed) -> Json:
    as_of = None if end.last_ms is None else iso(end.last_ms)
    return {"position": end.position, "version": end.base_version, "as_of": as_of}


@dataclass(slots=True)
class _Char:
    origin: int | None  # index in the start text, None when inserted in between
    author: str = ""
    base: Key = NONE  # formatting at the start, or as inserted (tools.formatting.Tracked)
    by: dict[str, set[str]] | None = None  # who changed which part of it since


class _Tracker:
    """The text as it evolves, each character with its origin or its author."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.chars = [_Char(i) for i in range(len(text))]
        self.deleted_by: dict[int, set[str]] = {}
        # The last run's alignment: (old start, new start, length) of the text it kept, and
        # the (start, end) of what it inserted, in the new text.
        self.kept: list[tuple[int, int, int]] = [(0, 0, len(text))]
        self.inserted: list[tuple[int, int]] = []

    def advance(self, new: str, user: str) -> None:
        # The edits of a run are local: difflib (quadratic) compares only what lies between
        # the common prefix and suffix, not the whole letter.
        lo, hi = _common_ends(self.text, new)
        matcher = difflib.SequenceMatcher(None, self.text[lo : len(self.text) - hi],
                                          new[lo : len(new) - hi], autojunk=False)  # fmt: skip
        chars = self.chars[:lo]
        self.kept, self.inserted = [(0, 0, lo)], []
        for op, a0, a1, b0, b1 in matcher.get_opcodes():
            if op == "equal":
                chars += self.chars[lo + a0 : lo + a1]
                self.kept.append((lo + a0, lo + b0, a1 - a0))
                continue
            for old in self.chars[lo + a0 : lo + a1]:
                if old.origin is not None:
                    self.deleted_by.setdefault(old.origin, set()).add(user)
            chars += [_Char(None, user) for _ in range(b1 - b0)]
            self.inserted.append((lo + b0, lo + b1))
        chars += self.chars[len(self.chars) - hi :]
        self.kept.append((len(self.text) - hi, len(new) - hi, hi))
        self.text, self.chars = new, chars

    def reformat(self, old: Layout, new: Layout, user: str) -> None:
        """After `advance` to `new`'s text: note `user` on the kept characters whose formatting
        changed, and give the inserted ones their formatting as inserted."""
        for start, end, was, now in reformatted(old, new, self.kept):
            names = aspects(was, now)
            for char in self.chars[start:end]:
                char.by = char.by or {}
                for name in names:
                    char.by.setdefault(name, set()).add(user)
        for start, end in self.inserted:
            self.base(new, start, end)

    def base(self, layout: Layout, start: int, end: int) -> None:
        for lo, hi, key in layout.runs(start, end):
            for char in self.chars[lo:hi]:
                char.base = key


def _common_ends(a: str, b: str) -> tuple[int, int]:
    """Lengths of the common prefix and of the common suffix after it (never overlapping)."""
    short = min(len(a), len(b))
    lo = _longest(lambda n: a[:n] == b[:n], short)
    hi = _longest(lambda n: a[len(a) - n :] == b[len(b) - n :], short - lo)
    return lo, hi


def _longest(same: Callable[[int], bool], most: int) -> int:
    """The largest n <= most for which `same(n)` holds (it holds up to some n, then never):
    a binary search over slice comparisons, which run in C, where a Python loop over the
    characters of a long letter took most of a run's time."""
    lo, hi = 0, most
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if same(mid) else (lo, mid - 1)
    return lo


async def diff(src: Sources, letter_id: str, start: Cut, end: Cut) -> Diff:
    a = await replay(src, letter_id, start)
    b = await replay(src, letter_id, end)
    if b.position < a.position:
        raise Backwards(a.position, b.position)
    runs: list[tuple[str, list[DocUpdate]]] = []
    async for record in scan(src.log, src.letters_topic, letter_id, a.position, b.position):
        try:
            event = decode_record(record.key, record.value, record.headers)
        except EventDecodeError:
            continue
        if event.type != "doc.update" or not isinstance(event.payload, bytes):
            continue
        if not runs or event.envelope.user != runs[-1][0]:
            runs.append((event.envelope.user, []))
        runs[-1][1].append(DocUpdate(record.offset, "", record.timestamp, event.payload))
    # CPU-bound (pycrdt and difflib over the whole letter): off the event loop, so the REST
    # gateway that serves `/diff` keeps answering everyone else meanwhile.
    hunks, formatting = await asyncio.to_thread(_attribute, a, b, runs, src.settings.doc_field)
    return Diff(letter_id, a, b, hunks, formatting)


def _attribute(
    a: Replayed, b: Replayed, runs: list[tuple[str, list[DocUpdate]]], doc_field: str
) -> tuple[list[Hunk], list[FormatChange]]:
    tracker, state = _Tracker(a.snapshot.content), a.state
    # One document for the whole walk: it re-renders only the blocks each run touched.
    letter, layouts = LetterDocument(doc_field, state), Layouts()
    layout = _layout(layouts, letter.snapshot())
    tracker.base(layout, 0, layout.length)
    for user, updates in runs:
        for i in range(0, len(updates), FOLD_CHUNK):
            state = _fold(state, updates[i : i + FOLD_CHUNK], doc_field)
        letter.apply(state)
        snapshot = letter.snapshot()
        tracker.advance(snapshot.content, user)
        new = _layout(layouts, snapshot)
        tracker.reformat(layout, new, user)
        layout = new
    return _hunks(a.snapshot.content, b.snapshot.content, tracker), changes(
        tracker.text, layout, tracker.chars
    )


def _layout(layouts: Layouts, snapshot: Snapshot) -> Layout:
    return layouts.layout(snapshot.document["content"], snapshot.content)


def _fold(state: bytes, updates: list[DocUpdate], doc_field: str) -> bytes:
    """`state` with `updates` applied by the projector's fold, as `tools.replay` folds them (it
    drops the updates pycrdt refuses). An update that makes pycrdt panic (a BaseException) is
    skipped, as the consumers skip (quarantine) its record."""
    try:
        return fold_document(state, updates, doc_field, attribute=False).state
    except PASSTHROUGH:
        raise
    except BaseException:  # pyo3's PanicException: find the culprits one by one
        if len(updates) == 1:
            return state
    for update in updates:
        state = _fold(state, [update], doc_field)
    return state


def _hunks(old: str, new: str, tracker: _Tracker) -> list[Hunk]:
    old_lines, new_lines = old.split("\n"), new.split("\n")
    old_starts, new_starts = _starts(old_lines), _starts(new_lines)
    tracked = tracker.text == new  # else (a refused update) attribution is best effort
    hunks = []
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            continue
        authors: set[str] = set()
        for i in range(old_starts[a0], old_starts[a1]):
            authors |= tracker.deleted_by.get(i, set())
        if tracked:
            chars = tracker.chars[new_starts[b0] : new_starts[b1]]
            authors |= {c.author for c in chars if c.origin is None}
        hunks.append(Hunk(a0 + 1, old_lines[a0:a1], new_lines[b0:b1], sorted(authors)))
    return hunks


def _starts(lines: list[str]) -> list[int]:
    """Character offset of each line's start, plus the end (lines joined by newlines)."""
    starts, offset = [], 0
    for line in lines:
        starts.append(offset)
        offset += len(line) + 1
    return [*starts, offset]


def format_text(result: Diff) -> str:
    """Unified-diff-like lines; the letter's lines and the names escaped (tools/terminal.py)."""
    letter = visible(result.letter_id)
    out = [f"--- {letter} at position {result.start.position}",
           f"+++ {letter} at position {result.end.position}"]  # fmt: skip
    for hunk in result.hunks:
        who = visible(", ".join(hunk.authors)) or "unknown"
        out.append(f"@@ line {hunk.start_line} @@ by {who}")
        out += [f"-{visible(line)}" for line in hunk.removed]
        out += [f"+{visible(line)}" for line in hunk.added]
    for change in result.formatting:  # lines of the end text, after the text's hunks
        who = visible(", ".join(change.by)) or "unknown"
        line = f'~ line {change.line} "{change.text}": {change.describe()}'
        out.append(f"{visible(line)} by {who}")
    if not result.hunks and not result.formatting:
        out.append("(no change)")
    return "\n".join(out) + "\n"


async def resolve_point(src: Sources, letter_id: str, spec: str) -> Cut:
    """A version number (digits) or an ISO-8601 instant, as a replay cut."""
    number = spec.strip()
    if number.isascii() and number.isdigit():  # str.isdigit alone also takes "²", "٣"
        if src.pg is None:
            raise BadRange("version numbers need PostgreSQL (STENO_DATABASE_URL)")
        found = await read.version(src.pg, letter_id, int(number))
        if found is None:
            if not await exists(src, letter_id):  # as an instant of an unknown letter says
                raise LetterNotFound(letter_id)
            raise BadRange(f"letter {letter_id} has no version {int(number)}")
        return Cut(offset=found.log_offset)
    return Cut(at_ms=parse_instant(spec))
