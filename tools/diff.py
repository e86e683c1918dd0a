"""Diff of a letter's text between two points (version numbers or instants), each change
attributed to the users whose edits in between made it.

Both ends are replays (tools.replay). Attribution follows the text through the edits in
between: the letter's `doc.update` records, grouped into runs of one user's consecutive updates,
are applied in log order to one document (an update pycrdt refuses or panics on is skipped, as
the consumers quarantine it; see `_Walk` for what follows one); after each run, difflib compares
the text before and after between their common prefix and suffix, so every character carries
who inserted it and every character of the start text who deleted it. The final difflib hunks
(by line) then name the users behind their inserted and deleted characters.

Formatting and block changes (`formatting`: marks set or cleared, a paragraph made a heading or
a list item) follow the same characters (tools/formatting.py): after each run, the characters
it kept whose marks or blocks changed note the run's user for what changed (a mark's name, or
"block"). A character is reported where its formatting at the end differs from the start's, or,
for text inserted in between, from the formatting it was inserted with (that belongs to the
insert), named with the users who changed that part of it since.

A run costs what it touched, not the letter's length: the document (the snapshotter's
`LetterDocument`) re-renders only the blocks the run's updates touched and keeps the others'
renderings, so the blocks the run left at either end are the very same objects; the text's
common ends are searched from there, the characters change in place between them, and the
formatting is read for the blocks between only. What remains per run over the whole letter runs
in C (joining the blocks' texts, list moves), bar a look at each block between the first and
the last the run touched: those it left untouched (the same objects, in the same order) are
anchors, their text alike on both sides, and difflib compares only the text between two anchors
(less its common ends). So a run typing in two paragraphs far apart (two co-editors, each in
their own) costs those paragraphs, not the thousands of characters between; and no character
is matched across an untouched paragraph (text deleted above it and typed again below is the
typist's, not moved there). Where no untouched block lies between two places a run edited far
apart, difflib's own search for the longest match is replaced on long texts by a suffix
automaton giving the same matches (`_Matcher`).

Even so, such runs cost the text between their edits again for each edit they made, so one
diff's searches have a work budget (`Budget`, `WORK_BUDGET`); past it, a run's text is aligned
by a quick comparison in linear time (`_quick`): the same text, but which characters it kept
may differ from difflib's, so the diff says it is coarse (`Diff.coarse`, a line of the text
output, `coarse` in JSON). The hunks compare the texts by line with a budget of their own.
"""

import asyncio
import difflib
import operator
import sys
from bisect import bisect_left
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, compress, count, islice
from typing import Any, TypeVar

from pycrdt import Doc

from gateway.live.loader import scan
from projector.document import DocUpdate, fold_document
from schemas.envelope import EventDecodeError, decode_record
from schemas.quarantine import PASSTHROUGH
from schemas.wording import counted
from schemas.ystate import pending_parts
from snapshotter import read
from snapshotter.document import LetterDocument
from tools.formatting import NONE, FormatChange, Key, Layout, Layouts, aspects, changes, reformatted
from tools.lost_rows import VERSIONS_LOST
from tools.replay import (
    FOLD_CHUNK,
    Cut,
    LetterNotFound,
    NotYetCreated,
    Replayed,
    exists,
    first_ms,
    replay,
)
from tools.sources import Sources
from tools.terminal import visible
from tools.timefmt import BadInstant, iso, parse_instant

Json = dict[str, Any]
T = TypeVar("T")
Span = tuple[int, int, int]  # (old start, new start, length) of text alike
Opcode = tuple[str, int, int, int, int]  # difflib's: (tag, old start, old end, new start, new end)


class BadRange(ValueError):
    """The end is before the start, or a version does not exist."""


class NoVersion(BadRange):
    """A version number the letter has no version of (in PostgreSQL: maybe not yet)."""

    def __init__(self, letter_id: str, number: int, why: str = "") -> None:
        self.number = number
        super().__init__(f"letter {letter_id} has no version {number}{why}")


class VersionLost(NoVersion):
    """A version the letter's saved working state counts that `letter_version` lacks: its row
    was removed by hand (REST answers 503 naming the rebuild; the CLI says it)."""

    def __init__(self, letter_id: str, number: int, counted: int) -> None:
        lost = VERSIONS_LOST.format(counted, letter_id)
        super().__init__(letter_id, number, f" in PostgreSQL: {lost}")


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
    # Per line, parallel to `removed`/`added` (`_line_users`): who deleted text from that
    # line, who inserted text of that line; `authors` stays the hunk's union (line breaks
    # too). Not compared: which of equal characters (a repeated word) an edit removed is the
    # alignment's choice, so two alignments of the same change may name lines differently.
    removed_by: list[list[str]] = field(default_factory=list, compare=False)
    added_by: list[list[str]] = field(default_factory=list, compare=False)

    def to_json(self) -> Json:
        return {"line": self.start_line, "removed": self.removed, "added": self.added,
                "authors": self.authors, "removed_by": self.removed_by,
                "added_by": self.added_by}  # fmt: skip


@dataclass
class Diff:
    letter_id: str
    start: Replayed
    end: Replayed
    hunks: list[Hunk] = field(default_factory=list)
    formatting: list[FormatChange] = field(default_factory=list)
    runs: int = 0  # runs of one user's updates in between
    coarse: int = 0  # of them, those compared coarsely: the work budget ran out (`Budget`)
    coarse_lines: bool = False  # the hunks' comparison by line was coarse too

    def to_json(self) -> Json:
        """The CLI's `--json` and REST's body alike."""
        coarse = None
        if self.coarse or self.coarse_lines:
            coarse = {"runs": self.coarse, "of": self.runs, "lines": self.coarse_lines}
        return {
            "letter_id": self.letter_id,
            "from": _end_json(self.start),
            "to": _end_json(self.end),
            "hunks": [h.to_json() for h in self.hunks],
            "formatting": [f.to_json() for f in self.formatting],
            "coarse": coarse,
            "content": {"from": self.start.snapshot.content, "to": self.end.snapshot.content},
        }


def _end_json(end: Replayed) -> Json:
    as_of = None if end.last_ms is None else iso(end.last_ms)
    return {"position": end.position, "version": end.version, "as_of": as_of}


@dataclass(slots=True)
class _Char:
    origin: int | None  # index in the start text, None when inserted in between
    author: str = ""
    base: Key = NONE  # formatting at the start, or as inserted (tools.formatting.Tracked)
    by: dict[str, set[str]] | None = None  # who changed which part of it since


class _Tracker:
    """The text as it evolves, each character with its origin or its author."""

    def __init__(self, text: str, budget: "Budget | None" = None) -> None:
        self.text = text
        self.budget = budget or Budget()
        self._coarse = False  # whether the run being compared went past the budget
        self.chars = [_Char(i) for i in range(len(text))]
        self.deleted_by: dict[int, set[str]] = {}
        # The last run's alignment: (old start, new start, length) of the text it kept, and
        # the (start, end) of what it inserted, in the new text.
        self.kept: list[tuple[int, int, int]] = [(0, 0, len(text))]
        self.inserted: list[tuple[int, int]] = []

    def advance(self, new: str, user: str) -> None:
        self.advance_within(new, user)

    def advance_within(
        self, new: str, user: str, lo: int = 0, hi: int = 0, anchors: Sequence[Span] = ()
    ) -> None:
        """To `new`, of which the first `lo` and the last `hi` characters are known to be the
        text's, and so is each of `anchors` ((old start, new start, length), in order, between
        them): the blocks the run did not touch."""
        # The edits of a run are local: difflib (quadratic) compares only the text between two
        # spans known alike, less their common prefix and suffix; the characters change in
        # place there, from the last such text back (earlier indices stay valid).
        old = self.text
        self.kept, self.inserted, self._coarse = [(0, 0, lo)], [], False
        edits: list[tuple[int, int, list[_Char]]] = []
        a, b = lo, lo
        for a0, b0, n in [*anchors, (len(old) - hi, len(new) - hi, hi)]:
            edits.append(self._between(new, user, (a, a0), (b, b0)))
            self.kept.append((a0, b0, n))
            a, b = a0 + n, b0 + n
        for a0, a1, chars in reversed(edits):
            self.chars[a0:a1] = chars
        self.text = new
        self.budget.coarse += self._coarse

    def _between(
        self, new: str, user: str, a_span: tuple[int, int], b_span: tuple[int, int]
    ) -> tuple[int, int, list[_Char]]:
        """Aligns `new[b0:b1]` with the text's `[a0:a1]`, which it replaces: the span of the
        text that changed and its characters."""
        old = self.text
        p, s = _common_ends(old, new, a_span, b_span)
        a0, a1, b0, b1 = a_span[0] + p, a_span[1] - s, b_span[0] + p, b_span[1] - s
        self.kept.append((a0 - p, b0 - p, p))
        chars: list[_Char] = []
        opcodes: Sequence[Opcode] = []
        if a0 < a1 and b0 < b1:
            opcodes, coarse = _opcodes(old[a0:a1], new[b0:b1], self.budget)
            self._coarse |= coarse
        elif a0 < a1 or b0 < b1:  # text only typed, or only deleted: nothing to search
            opcodes = [("replace", 0, a1 - a0, 0, b1 - b0)]
        for op, i0, i1, j0, j1 in opcodes:
            if op == "equal":
                chars += self.chars[a0 + i0 : a0 + i1]
                self.kept.append((a0 + i0, b0 + j0, i1 - i0))
                continue
            for gone in self.chars[a0 + i0 : a0 + i1]:
                if gone.origin is not None:
                    self.deleted_by.setdefault(gone.origin, set()).add(user)
            chars += [_Char(None, user) for _ in range(j1 - j0)]
            self.inserted.append((b0 + j0, b0 + j1))
        self.kept.append((a1, b1, s))
        return a0, a1, chars

    def reformat(
        self, old: Layout, new: Layout, user: str, blocks: tuple[int, int] = (0, 0)
    ) -> None:
        """After `advance` to `new`'s text: note `user` on the kept characters whose formatting
        changed, and give the inserted ones their formatting as inserted."""
        for start, end, was, now in reformatted(old, new, self.kept, blocks):
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


def _common_ends(
    a: str, b: str, a_span: tuple[int, int] | None = None, b_span: tuple[int, int] | None = None
) -> tuple[int, int]:
    """Lengths of the common prefix and of the common suffix after it (never overlapping) of
    `a[a0:a1]` and `b[b0:b1]` (the spans; the whole texts without)."""
    a0, a1 = a_span or (0, len(a))
    b0, b1 = b_span or (0, len(b))
    short = min(a1 - a0, b1 - b0)
    lo = _extend(lambda i, j: a[a0 + i : a0 + j] == b[b0 + i : b0 + j], short)
    hi = _extend(lambda i, j: a[a1 - j : a1 - i] == b[b1 - j : b1 - i], short - lo)
    return lo, hi


def _extend(same: Callable[[int, int], bool], most: int) -> int:
    """The largest n <= most for which the first n characters of two texts are alike;
    `same(i, j)`: characters i to j are alike. Compared in slices (which run in C) that double
    in length, then a binary search in the slice that differs: time in what is alike."""
    known, step = 0, 64
    while known < most:
        end = min(known + step, most)
        if not same(known, end):
            lo, hi = known, end - 1
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if same(known, mid) else (lo, mid - 1)
            return lo
        known, step = end, step * 2
    return known


class _Matcher(difflib.SequenceMatcher[str]):
    """difflib's matcher, the same matches, sooner on long repetitive texts, and within a work
    budget. difflib's search for the longest match between `a[alo:ahi]` and `b[blo:bhi]` scans,
    for each character of that part of `a`, where it occurs in `b` up to `bhi` (all of `b`
    before it too, not only the part): 71,000 characters against one at the end of a 170 KB
    text took 21 s. A suffix automaton of the part of `b`, then the part of `a` walked through
    it, costs the sum of their lengths instead (about `_DIFFLIB_MOST` of difflib's scans per
    character). Untouched blocks keep most runs' texts short, but not where none lies between
    two places a run edited far apart: a Y.Text body (its lines are rendered anew, none known
    untouched), one long paragraph, a replace-all over many in a row. Each search is counted
    against `budget` (difflib's scans, or the automaton's characters at `_DIFFLIB_MOST` each);
    one that does not fit answers no match and is noted (`refused`): `_opcodes` aligns that
    part roughly instead."""

    b2j: dict[str, list[int]]  # difflib's: where each character of `b` occurs, in order

    def __init__(self, a: str, b: str, budget: "Budget | None" = None) -> None:
        super().__init__(None, a, b, autojunk=False)
        self._a, self._b = a, b
        self._budget = budget or Budget()
        self.refused: set[tuple[int, int]] = set()  # (alo, blo) of the searches not afforded

    def find_longest_match(
        self, alo: int = 0, ahi: int | None = None, blo: int = 0, bhi: int | None = None
    ) -> difflib.Match:
        ahi = len(self._a) if ahi is None else ahi
        bhi = len(self._b) if bhi is None else bhi
        scans = self._scans(alo, ahi, bhi)
        automaton = _DIFFLIB_MOST * (ahi - alo + bhi - blo)
        if not self._budget.spend(min(scans, automaton)):
            self.refused.add((alo, blo))  # no match inside: one "replace" opcode, just this part
            return difflib.Match(alo, blo, 0)
        if scans <= automaton:
            return super().find_longest_match(alo, ahi, blo, bhi)
        i, j, k = _longest_common(self._a[alo:ahi], self._b[blo:bhi])
        return difflib.Match(alo + i, blo + j, k) if k else difflib.Match(alo, blo, 0)

    def _scans(self, alo: int, ahi: int, bhi: int) -> int:
        """How many positions of `b` difflib's search looks at (its inner loop's turns)."""
        where = self.b2j
        return sum(
            n * bisect_left(where.get(ch, ()), bhi) for ch, n in Counter(self._a[alo:ahi]).items()
        )


# The automaton's cost per character, in difflib's scans (measured: 0.6-2 us a character, 0.4-0.5
# us a scan); difflib's search is used while it scans no more than this per character.
_DIFFLIB_MOST = 3


class Budget:
    """The work of one diff's searches for the longest match, in difflib's scans (above): past
    it, a run's changed text is compared coarsely (`_Matcher`), so a diff answers in bounded
    time whatever its edits. `coarse`: how many runs (or comparisons) were; `coarse_lines`:
    whether the hunks' comparison by line was too (`_hunks`)."""

    def __init__(self, steps: int | None = None) -> None:
        self.left = WORK_BUDGET if steps is None else steps
        self.coarse = 0
        self.coarse_lines = False

    @classmethod
    def for_letter(cls, chars: int) -> "Budget":
        """A letter's: a longer one's exact comparison costs more (the text between a run's
        edits), so the budget grows with it, up to WORK_BUDGET_MOST."""
        return cls(min(WORK_BUDGET_MOST, max(WORK_BUDGET, WORK_PER_CHAR * chars)))

    def spend(self, steps: int) -> bool:
        if steps > self.left:
            return False
        self.left -= steps
        return True


_GRAM = 16  # characters alike that align two texts again past a difference (`_quick`)

# 10 M scans: about 2-2.5 s of CPU on the machine measured; a letter gets 250 per character of
# its end text (a 60 KB plain-text letter's ordinary edits, two per run far apart, stay exact),
# at most 40 M (~8-10 s). Co-edited XML letters spend none: their untouched paragraphs anchor
# each run (docs/performance.md "Auditor diff"). A search that would not fit is not started.
WORK_BUDGET = 10_000_000
WORK_PER_CHAR = 250
WORK_BUDGET_MOST = 40_000_000


def _opcodes(a: str, b: str, budget: "Budget", gram: int = _GRAM) -> tuple[list[Opcode], bool]:
    """difflib's opcodes from `a` to `b` within `budget`, and whether a part it could not
    afford to search was aligned quickly and roughly instead (`_quick`, `gram`)."""
    if not budget.spend(len(b)):  # difflib indexes `b` first
        return _quick(a, b, (0, len(a)), (0, len(b)), gram), True
    matcher = _Matcher(a, b, budget)
    opcodes: list[Opcode] = []
    for op in matcher.get_opcodes():
        if op[0] == "replace" and (op[1], op[3]) in matcher.refused:
            opcodes += _quick(a, b, (op[1], op[2]), (op[3], op[4]), gram)
        else:
            opcodes.append(op)
    return opcodes, bool(matcher.refused)


def _quick(
    a: str, b: str, a_span: tuple[int, int], b_span: tuple[int, int], gram: int
) -> list[Opcode]:
    """Opcodes from `a[alo:ahi]` to `b[blo:bhi]` in time linear in their lengths, mostly in C:
    the text alike from the front (`_extend`); past a difference, the nearest place where the
    two run alike again for `gram` characters (`_resync`), stepped back over what is alike
    before it. Only text alike is kept, so the opcodes give `b` exactly; which characters count
    as kept and which as retyped may differ from difflib's (whose search the budget limits)."""
    (i, ahi), (j, bhi) = a_span, b_span
    ops: list[Opcode] = []
    allowance = [_QUICK_MOST * (ahi - i + bhi - j)]  # characters searched: linear, whatever
    while i < ahi and j < bhi:
        n = _ahead(a, b, i, j, min(ahi - i, bhi - j))
        if n:
            ops.append(("equal", i, i + n, j, j + n))
            i, j = i + n, j + n
            continue
        found = _resync(a, b, (i, ahi), (j, bhi), gram, allowance)
        if found is None:
            break
        back = _behind(a, b, *found, min(found[0] - i, found[1] - j))
        ops.append(("replace", i, found[0] - back, j, found[1] - back))
        i, j = found[0] - back, found[1] - back
    if i < ahi or j < bhi:
        ops.append(("replace", i, ahi, j, bhi))
    return ops


def _resync(
    a: str, b: str, a_span: tuple[int, int], b_span: tuple[int, int], g: int, allowance: list[int]
) -> tuple[int, int] | None:
    """The nearest (i, j) past the starts of the spans where `g` characters are alike:
    text typed (`a`'s next characters found on in `b`), deleted (`b`'s found on in `a`) or
    replaced, within a distance that doubles until found (periodic text, a letter's repeated
    phrases, has near matches at the wrong distance: the nearest is the likeliest)."""
    (i, ahi), (j, bhi) = a_span, b_span
    gap = 1
    while gap <= max(ahi - i, bhi - j) and allowance[0] > 0:
        found: list[tuple[int, int]] = []
        if i + g <= ahi:  # typed
            k = b.find(a[i : i + g], j, min(bhi, j + gap + g))
            found += [(i, k)] if k >= 0 else []
        if j + g <= bhi:  # deleted
            k = a.find(b[j : j + g], i, min(ahi, i + gap + g))
            found += [(k, j)] if k >= 0 else []
        if i + gap + g <= ahi:  # replaced
            k = b.find(a[i + gap : i + gap + g], j, min(bhi, j + 2 * gap + g))
            found += [(i + gap, k)] if k >= 0 else []
        allowance[0] -= 4 * gap + 3 * g
        if found:
            return min(found, key=lambda at: at[0] - i + at[1] - j)
        gap *= 2
    return None


_QUICK_MOST = 64  # characters searched per character of the texts, at most


def _ahead(a: str, b: str, i: int, j: int, most: int) -> int:
    """How many characters from a[i] and b[j] on are alike (at most `most`)."""
    return _extend(lambda x, y: a[i + x : i + y] == b[j + x : j + y], most)


def _behind(a: str, b: str, i: int, j: int, most: int) -> int:
    """How many characters before a[i] and b[j] are alike (at most `most`)."""
    return _extend(lambda x, y: a[i - y : i - x] == b[j - y : j - x], most)


def _longest_common(a: str, b: str) -> tuple[int, int, int]:
    """(i, j, k): the longest text both hold, a[i:i+k] == b[j:j+k], the first such in `a`, then
    in `b`: what difflib's `find_longest_match` answers without junk. A suffix automaton of `b`
    (states: `length`, suffix `link`, transitions `moves`), then `a` walked through it."""
    length, link = [0], [-1]
    moves: list[dict[str, int]] = [{}]
    last = 0
    for ch in b:
        cur = len(length)
        length.append(length[last] + 1)
        link.append(0)
        moves.append({})
        p = last
        while p != -1 and ch not in moves[p]:
            moves[p][ch] = cur
            p = link[p]
        if p != -1:
            q = moves[p][ch]
            if length[p] + 1 == length[q]:
                link[cur] = q
            else:
                clone = len(length)
                length.append(length[p] + 1)
                link.append(link[q])
                moves.append(dict(moves[q]))
                while p != -1 and moves[p].get(ch) == q:
                    moves[p][ch] = clone
                    p = link[p]
                link[q] = link[cur] = clone
        last = cur
    state = run = best = 0
    end = -1
    for i, ch in enumerate(a):  # the longest text of `b` ending at each character of `a`
        while state and ch not in moves[state]:
            state = link[state]
            run = length[state]
        found = moves[state].get(ch)
        state, run = (0, 0) if found is None else (found, run + 1)
        if run > best:  # strictly: the first in `a`
            best, end = run, i
    if not best:
        return 0, 0, 0
    start = end - best + 1
    return start, b.find(a[start : end + 1]), best  # the first in `b`


class Busy(Exception):
    """As many diffs as the process allows were under way for the whole wait."""


class YoursUnderWay(Busy):
    """The caller's previous diff is still waiting or running (one per caller at a time)."""


class Slots:
    """At most `count` diffs at once in a process (REST's `/diff`): a diff takes a core for
    up to seconds, so more auditors at once would share the cores and each wait the longer. A
    diff waits for a slot `wait_s` at most, then raises `Busy`. A slot is held until the diff
    ends, even when its caller gave up (a thread cannot be stopped: its work runs on). One
    `owner` (a user) has one diff waiting or running at a time, else `YoursUnderWay`: one user
    repeating requests would otherwise fill the queue and starve every other firm's auditors."""

    def __init__(self, count: int, wait_s: float) -> None:
        self._free = asyncio.Semaphore(count)
        self._wait_s = wait_s
        self._owners: set[str] = set()

    async def run(self, work: Callable[[], Awaitable[T]], owner: str) -> T:
        if owner in self._owners:
            raise YoursUnderWay("a diff of yours is under way: one at a time")
        self._owners.add(owner)
        try:
            async with asyncio.timeout(self._wait_s):
                await self._free.acquire()
        except BaseException as exc:  # waited too long, or the caller gave up while waiting
            self._owners.discard(owner)
            if isinstance(exc, TimeoutError):
                raise Busy(f"too many diffs under way (waited {self._wait_s:g} s)") from None
            raise
        task = asyncio.ensure_future(work())
        task.add_done_callback(lambda done: self._release(done, owner))
        return await asyncio.shield(task)

    def _release(self, task: "asyncio.Future[Any]", owner: str) -> None:
        self._free.release()
        self._owners.discard(owner)
        if not task.cancelled():
            task.exception()  # retrieved: a caller that gave up does not log it as lost


async def diff(src: Sources, letter_id: str, start: Cut, end: Cut) -> Diff:
    """Backwards for an end before the start; NotYetCreated for a start before the letter's
    first record, as `replay` refuses that cut (tools.replay.replay_existing): a diff from an
    empty document would show the letter's creation as typed by its first editors."""
    a = await replay(src, letter_id, start)
    b = await replay(src, letter_id, end)
    if b.position < a.position:
        raise Backwards(a.position, b.position)
    if a.last_ms is None:  # the start folds nothing of the letter: before its creation
        raise NotYetCreated(letter_id, start, await first_ms(src, letter_id))
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
    budget = Budget.for_letter(len(b.snapshot.content))
    hunks, formatting = await asyncio.to_thread(
        _attribute, a, b, runs, src.settings.doc_field, budget
    )
    _in_run_order(hunks, [user for user, _ in runs])
    return Diff(letter_id, a, b, hunks, formatting, len(runs), budget.coarse, budget.coarse_lines)


def _attribute(
    a: Replayed,
    b: Replayed,
    runs: list[tuple[str, list[DocUpdate]]],
    doc_field: str,
    budget: Budget | None = None,
) -> tuple[list[Hunk], list[FormatChange]]:
    """`budget` (default `WORK_BUDGET`) counts how many runs went past it."""
    tracker, walk, layouts = (
        _Tracker(a.snapshot.content, budget),
        _Walk(a.state, doc_field),
        Layouts(),
    )
    blocks = walk.blocks()
    text = "\n".join(t for _, t in blocks)
    layout = layouts.layout([node for node, _ in blocks], text)
    tracker.base(layout, 0, layout.length)
    nodes, texts = [node for node, _ in blocks], [text for _, text in blocks]
    starts = _starts(texts)
    for user, updates in runs:
        walk.apply(updates)
        before, blocks = blocks, walk.blocks()
        # The blocks at either end the run left as they were (the very same renderings): the
        # lists of their nodes, texts and starts are those before, only the middle read anew.
        head, tail = _ends(before, blocks)
        middle = blocks[head : len(blocks) - tail]
        nodes = _spliced(nodes, head, tail, [node for node, _ in middle])
        texts = _spliced(texts, head, tail, [text for _, text in middle])
        content = "\n".join(texts)
        was, starts = starts, _restarted(starts, texts, head, tail)
        lo = starts[head] - 1 if head else 0
        hi = len(content) - starts[len(texts) - tail] if tail else 0
        anchors = _untouched(before, blocks, (head, tail), was, starts)
        tracker.advance_within(content, user, lo, hi, anchors)
        new = layouts.layout(nodes, content, layout, (head, tail))
        tracker.reformat(layout, new, user, (head, tail))
        layout = new
    lines = Budget()  # the hunks' own: however much the runs took
    hunks = _hunks(a.snapshot.content, b.snapshot.content, tracker, lines)
    tracker.budget.coarse_lines = lines.coarse > 0
    return hunks, changes(tracker.text, layout, tracker.chars)


def _ends(before: list[T], after: list[T]) -> tuple[int, int]:
    """How many items at the start and at the end of `after` are `before`'s (the very same
    objects), not overlapping. Compared in C: a look at each block in Python per run was the
    letter's length again for every run."""
    short = min(len(before), len(after))
    head = _alike(before, after, short)
    return head, _alike(reversed(before), reversed(after), short - head)


def _alike(a: Iterable[T], b: Iterable[T], most: int) -> int:
    """How many leading items of `a` and `b` are the same objects, at most `most`."""
    differ = map(operator.is_not, islice(a, most), b)
    return next(compress(count(), differ), most)


def _spliced(was: list[T], head: int, tail: int, middle: list[T]) -> list[T]:
    """`was` with all but its first `head` and last `tail` items replaced by `middle`."""
    return [*was[:head], *middle, *was[len(was) - tail :]]


def _restarted(was: list[int], texts: list[str], head: int, tail: int) -> list[int]:
    """`_starts(texts)`, from `was`, the starts of the texts before a run, of which the first
    `head` and the last `tail` are `texts`' (the blocks the run left): only the starts between
    are counted, those after shifted (in C) by what the run changed."""
    middle = texts[head : len(texts) - tail]
    starts = was[:head]
    starts += accumulate(map((1).__add__, map(len, middle)), initial=was[head])
    old_tail = len(was) - 1 - tail  # index of the first block of the tail, before
    shift = starts[-1] - was[old_tail]
    starts += map(shift.__add__, was[old_tail + 1 :]) if shift else was[old_tail + 1 :]
    return starts


def _untouched(
    before: list[Any], after: list[Any], ends: tuple[int, int], was: list[int], now: list[int]
) -> list[Span]:
    """The blocks a run left untouched between those it touched (the very same renderings:
    their text is alike), as spans of the texts, blocks next to each other on both sides in
    one. `ends`: how many at either end are known untouched; `was`, `now`: `_block_starts`."""
    head, tail = ends
    where = {id(block): i for i, block in enumerate(before[head : len(before) - tail], head)}
    spans: list[Span] = []
    last, next_to = head - 1, -1  # the last anchored block before, and where the one after it
    for j in range(head, len(after) - tail):
        i = where.get(id(after[j]), -1)
        if i <= last:  # touched, or out of order (never seen): compared
            continue
        if i == last + 1 and j == next_to:  # right after the last one: the same span
            a0, b0, _ = spans[-1]
            spans[-1] = (a0, b0, was[i + 1] - 1 - a0)
        else:
            spans.append((was[i], now[j], was[i + 1] - 1 - was[i]))
        last, next_to = i, j + 1
    return spans


class _Walk:
    """The letter's document through the runs: one pycrdt document each update is applied to
    once. An update pycrdt refuses or panics on is skipped, as the consumers skip (quarantine)
    its record. Updates that depend on one skipped (or on one missing from the start state)
    stay pending, and the rendering does not follow them (yrs applies a pending deletion
    without a change event): from then on, as before, the walk folds each run into the whole
    state as the replay does and applies that (a cost per run in the letter's length, for
    letters whose log holds such an update)."""

    def __init__(self, state: bytes, doc_field: str) -> None:
        self._start, self._field = state, doc_field
        self._applied: list[DocUpdate] = []
        self._letter = LetterDocument(doc_field, state)
        scratch: Doc[Any] = Doc()
        scratch.apply_update(state)
        self._folded: bytes | None = state if pending_parts(scratch, [state]) else None

    def apply(self, updates: list[DocUpdate]) -> None:
        for i, update in enumerate(updates):
            if self._folded is not None:
                self._fold_run(updates[i:])
                return
            try:
                self._letter.apply(update.data)
            except ValueError:  # refused: pycrdt decodes an update whole before applying it
                self._folded = _fold(self._start, self._applied, self._field)
            except PASSTHROUGH:
                raise
            except BaseException:  # pyo3's PanicException: the document may be broken
                self._folded = _fold(self._start, self._applied, self._field)
                self._letter = LetterDocument(self._field, self._folded)
            else:
                self._applied.append(update)

    def _fold_run(self, updates: list[DocUpdate]) -> None:
        assert self._folded is not None
        for i in range(0, len(updates), FOLD_CHUNK):
            self._folded = _fold(self._folded, updates[i : i + FOLD_CHUNK], self._field)
        self._letter.apply(self._folded)

    def blocks(self) -> list[tuple[Json, str]]:
        return self._letter.blocks()


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


def _hunks(old: str, new: str, tracker: _Tracker, budget: Budget | None = None) -> list[Hunk]:
    """By line; the comparison within `budget` (its own by default): past it, hunks may span
    more lines than difflib's would (`budget.coarse`), still the same text."""

    def deleted(lo: int, hi: int) -> set[str]:
        return set().union(*[tracker.deleted_by.get(i, ()) for i in range(lo, hi)])

    def inserted(lo: int, hi: int) -> set[str]:
        return {c.author for c in tracker.chars[lo:hi] if c.origin is None}

    old_lines, new_lines = old.split("\n"), new.split("\n")
    old_starts, new_starts = _starts(old_lines), _starts(new_lines)
    tracked = tracker.text == new  # else (a refused update) attribution is best effort
    kept_at: dict[int, int] = {}  # start text index -> new text index, of those kept

    def changed(lo: int, hi: int) -> set[str]:
        """Who changed the start text's line [lo, hi) (hi: its line break): deleted from it,
        or inserted within or next to what is kept of it: "We accept." made "We do not
        accept." names who inserted "do not ", not who deleted the line before it."""
        users = deleted(lo, hi + 1 if hi < len(old) else hi)  # its break deleted: joined
        if not tracked:
            return users
        if not kept_at:
            kept_at.update(
                (c.origin, i) for i, c in enumerate(tracker.chars) if c.origin is not None
            )
        at = [kept_at[i] for i in range(lo, hi) if i in kept_at]
        if not at:
            return users
        first, last, chars = at[0], at[-1] + 1, tracker.chars
        # Typed at its start or end, not a new line beside it (an inserted line break ends it).
        while first > 0 and chars[first - 1].origin is None and new[first - 1] != "\n":
            first -= 1
        while last < len(chars) and chars[last].origin is None and new[last] != "\n":
            last += 1
        return users | inserted(first, last)

    hunks = []
    budget = budget or Budget()
    # One character per line, alike lines alike: difflib's matches are those of the lists (a
    # letter's many blank lines made its search over the lists cost seconds, `_Matcher`).
    opcodes: Sequence[Opcode]
    if len(old_lines) + len(new_lines) <= sys.maxunicode:
        codes: dict[str, str] = {}
        a, b = ("".join([codes.setdefault(x, chr(len(codes))) for x in lines])
                for lines in (old_lines, new_lines))  # fmt: skip
        opcodes, coarse = _opcodes(a, b, budget, _LINE_GRAM)
        budget.coarse += coarse
    else:  # more lines than characters to name them (never seen): difflib's own
        opcodes = difflib.SequenceMatcher(None, old_lines, new_lines, False).get_opcodes()
    for op, a0, a1, b0, b1 in opcodes:
        if op == "equal":
            continue
        authors = deleted(old_starts[a0], old_starts[a1])
        if tracked:
            authors |= inserted(new_starts[b0], new_starts[b1])
        removed_by = [sorted(_line_users(old_starts, a, len(old), changed)) for a in range(a0, a1)]
        added_by = [
            sorted(_line_users(new_starts, b, len(new), inserted)) if tracked else []
            for b in range(b0, b1)
        ]
        hunks.append(
            Hunk(
                a0 + 1,
                old_lines[a0:a1],
                new_lines[b0:b1],
                sorted(authors),
                removed_by,
                added_by,
            )
        )
    return hunks


def _line_users(
    starts: list[int], line: int, length: int, users_in: Callable[[int, int], set[str]]
) -> set[str]:
    """Who changed the characters of `line` (`users_in`: who deleted, or inserted, those of
    a span). Its line breaks count only where none of its text changed (a line split or
    joined): else the user who pressed Enter after someone's line would be named on it."""
    start, end = starts[line], starts[line + 1] - 1  # less its newline
    users = users_in(start, end)
    if not users:
        for i in (start - 1, end):
            if 0 <= i < length:
                users |= users_in(i, i + 1)
    return users


def _in_run_order(hunks: list[Hunk], users: Sequence[str]) -> None:
    """Each line's users in the order of their first runs in the range (`_hunks` sorts them
    by name: the tracker does not keep when each character changed)."""
    order = {user: i for i, user in enumerate(dict.fromkeys(users))}
    for hunk in hunks:
        for lines in (hunk.removed_by, hunk.added_by):
            for names in lines:
                names.sort(key=lambda user: order.get(user, len(order)))  # stable: then by name


_LINE_GRAM = 3  # lines alike that align the texts again past a difference (`_quick`)


def _starts(lines: list[str]) -> list[int]:
    """Character offset of each line's start, plus the end (lines joined by newlines)."""
    return list(accumulate(map((1).__add__, map(len, lines)), initial=0))  # in C


def format_text(result: Diff) -> str:
    """Unified-diff-like lines; the letter's lines and the names escaped (tools/terminal.py)."""
    letter = visible(result.letter_id)
    out = [f"--- {letter} {_named(result.start)}", f"+++ {letter} {_named(result.end)}"]
    for hunk in result.hunks:
        who = visible(", ".join(hunk.authors)) or "unknown"
        out.append(f"@@ line {hunk.start_line} @@ by {who}")
        out += _marked("-", hunk.removed, hunk.removed_by, len(hunk.authors) > 1)
        out += _marked("+", hunk.added, hunk.added_by, len(hunk.authors) > 1)
    for change in result.formatting:  # lines of the end text, after the text's hunks
        who = visible(", ".join(change.by)) or "unknown"
        line = f'~ line {change.line} "{change.text}": {change.describe()}'
        out.append(f"{visible(line)} by {who}")
    if not result.hunks and not result.formatting:
        out.append("(no change)")
    if result.coarse:
        out.append(
            f"(coarse: {result.coarse} of {counted(result.runs, 'run')} went past the diff's "
            "work budget: their edits were told apart by a quicker comparison, so who is named "
            "near them may be off)"
        )
    if result.coarse_lines:
        out.append(
            "(coarse: the comparison by line went past the diff's work budget: hunks may "
            "span more lines than changed)"
        )
    return "\n".join(out) + "\n"


def _named(end: Replayed) -> str:
    """An end as JSON names it: the version it is exactly, else the instant of the letter's
    last record folded (`as_of`), with its position."""
    as_of = None if end.last_ms is None else iso(end.last_ms)
    if end.version is not None:
        return f"version {end.version} at position {end.position}" + (
            "" if as_of is None else f" (as of {as_of})"
        )
    if as_of is not None:
        return f"as of {as_of} at position {end.position}"
    return f"at position {end.position}"


def _marked(sign: str, lines: list[str], by: list[list[str]], several: bool) -> list[str]:
    """A hunk's lines; in one by several users, each followed by who changed it (`  [bob]`;
    nothing for a line whose own text none changed: text only added to or split off it). A
    hunk by one user keeps its plain lines: the header names them."""
    if not several:
        return [f"{sign}{visible(line)}" for line in lines]
    out = []
    for i, line in enumerate(lines):
        users = by[i] if i < len(by) else []  # a Hunk made without them: none known
        mark = f"  [{visible(', '.join(users))}]" if users else ""
        out.append(f"{sign}{visible(line)}{mark}")
    return out


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
            # Counted by the state saved with it: committed since the first look, or lost.
            counted = await read.versions_counted(src.pg, letter_id)
            if not 1 <= int(number) <= counted:  # (0 is never a version)
                raise NoVersion(letter_id, int(number))
            found = await read.version(src.pg, letter_id, int(number))
            if found is None:
                raise VersionLost(letter_id, int(number), counted)
        return Cut(offset=found.log_offset, version=found.version_number)
    try:
        return Cut(at_ms=parse_instant(spec))
    except BadInstant as exc:  # either form was meant: say both (the hint kept)
        instant = f"{spec!r} is not an ISO-8601 instant"
        said = str(exc)
        if not said.startswith(instant):  # an instant, out of range: that alone
            raise
        either = f"{spec!r} is neither a version number (digits, such as 3) nor an ISO-8601 instant"
        raise BadInstant(either + said[len(instant) :]) from None
