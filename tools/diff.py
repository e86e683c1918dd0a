"""Diff of a letter's text between two points (version numbers or instants), each change
attributed to the users whose edits in between made it.

Both ends are replays (tools.replay). Attribution follows the text through the edits in
between: the letter's `doc.update` records, grouped into runs of one user's consecutive updates,
are folded in log order as the replay folds them (the projector's `fold_document`; an update
that makes pycrdt panic is skipped, as the consumers quarantine it); after each run, difflib
compares the text before and after (between their common prefix and suffix), so every character
carries who inserted it and every character of the start text who deleted it. The final
difflib hunks (by line) then name the users behind their inserted and deleted characters.
"""

import asyncio
import difflib
from dataclasses import dataclass, field
from typing import Any

from gateway.live.loader import scan
from projector.document import DocUpdate, fold_document
from schemas.envelope import EventDecodeError, decode_record
from schemas.quarantine import PASSTHROUGH
from snapshotter import read
from snapshotter.document import LetterDocument
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

    def to_json(self) -> Json:
        """The CLI's `--json` and REST's body alike."""
        return {
            "letter_id": self.letter_id,
            "from": _end_json(self.start),
            "to": _end_json(self.end),
            "hunks": [h.to_json() for h in self.hunks],
            "content": {"from": self.start.snapshot.content, "to": self.end.snapshot.content},
        }


def _end_json(end: Replayed) -> Json:
    as_of = None if end.last_ms is None else iso(end.last_ms)
    return {"position": end.position, "version": end.base_version, "as_of": as_of}


@dataclass
class _Char:
    origin: int | None  # index in the start text, None when inserted in between
    author: str = ""


class _Tracker:
    """The text as it evolves, each character with its origin or its author."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.chars = [_Char(i) for i in range(len(text))]
        self.deleted_by: dict[int, set[str]] = {}

    def advance(self, new: str, user: str) -> None:
        # The edits of a run are local: difflib (quadratic) compares only what lies between
        # the common prefix and suffix, not the whole letter.
        lo, hi = _common_ends(self.text, new)
        matcher = difflib.SequenceMatcher(None, self.text[lo : len(self.text) - hi],
                                          new[lo : len(new) - hi], autojunk=False)  # fmt: skip
        chars = self.chars[:lo]
        for op, a0, a1, b0, b1 in matcher.get_opcodes():
            if op == "equal":
                chars += self.chars[lo + a0 : lo + a1]
                continue
            for old in self.chars[lo + a0 : lo + a1]:
                if old.origin is not None:
                    self.deleted_by.setdefault(old.origin, set()).add(user)
            chars += [_Char(None, user) for _ in range(b1 - b0)]
        chars += self.chars[len(self.chars) - hi :]
        self.text, self.chars = new, chars


def _common_ends(a: str, b: str) -> tuple[int, int]:
    """Lengths of the common prefix and of the common suffix after it (never overlapping)."""
    short = min(len(a), len(b))
    lo = next((i for i in range(short) if a[i] != b[i]), short)
    hi = next((i for i in range(short - lo) if a[-1 - i] != b[-1 - i]), short - lo)
    return lo, hi


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
    hunks = await asyncio.to_thread(_attribute, a, b, runs, src.settings.doc_field)
    return Diff(letter_id, a, b, hunks)


def _attribute(
    a: Replayed, b: Replayed, runs: list[tuple[str, list[DocUpdate]]], doc_field: str
) -> list[Hunk]:
    tracker, state = _Tracker(a.snapshot.content), a.state
    for user, updates in runs:
        for i in range(0, len(updates), FOLD_CHUNK):
            state = _fold(state, updates[i : i + FOLD_CHUNK], doc_field)
        tracker.advance(LetterDocument(doc_field, state).snapshot().content, user)
    return _hunks(a.snapshot.content, b.snapshot.content, tracker)


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
    if not result.hunks:
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
