"""Formatting and block structure of a letter's text, character by character: what `diff`
reports besides the text (tools/diff.py).

Every character of the plain text (`Snapshot.content`) gets a key: its marks (bold, a link and
its href, a highlight's colour...) and the chain of blocks it sits in, outermost first
(`bulletList > listItem > paragraph`, a heading with its level, a cell with its span), read
from the rendered ProseMirror JSON, so every mark and node TipTap writes is covered, known or
not. The line breaks between blocks have no key (`NONE`); a Y.Text body has one key throughout.
A `Layout` holds each block's keys as runs, and where each block starts. A block's runs are kept
by the identity of its rendered JSON, which the snapshotter's document keeps for the blocks an
update did not touch (`LetterDocument` re-renders only those), and a plain paragraph's (every
line of a Y.Text body, rendered anew each time) by its text; a layout takes the blocks a run
left at either end from the layout before, so a run of updates reads the blocks it touched.
"""

import json
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Any, Protocol

from snapshotter.document import INLINE

Json = dict[str, Any]
Key = tuple[tuple[str, ...], str]  # (marks as canonical JSON, sorted; block chain as JSON)
NONE: Key = ((), "")  # a line break: never reported
# Inline nodes other than text, as snapshotter.document renders them.
_BREAKS = {kind: text for kind, text in INLINE.items() if text is not None}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _ref(node: Json) -> Json:
    """A node or mark as `{type, attrs}`, its unset (null) attributes dropped."""
    attrs = node.get("attrs")
    kept = {k: v for k, v in attrs.items() if v is not None} if isinstance(attrs, dict) else {}
    return {"type": str(node.get("type", "")), **({"attrs": kept} if kept else {})}


Pieces = list[tuple[str, Key]]


@lru_cache(maxsize=256)
def _bare(kind: str) -> str:
    return _canonical({"type": kind})


def _chain(parent: str, node: Json) -> str:
    """The JSON list of the blocks from the top down to `node`, `parent` the list above it
    (or ""). Built as text: most nodes (every line of a Y.Text body) have no attributes."""
    kind = str(node.get("type", ""))
    ref = _canonical(_ref(node)) if node.get("attrs") else _bare(kind)
    return f"[{ref}]" if not parent else f"{parent[:-1]},{ref}]"


def _walk(node: Json, parent: str, keys: dict[Key, Key]) -> Pieces:
    """The block's text in pieces with their keys, as snapshotter.document renders its text:
    inline content on one line, each child block on lines of its own."""
    block = _chain(parent, node)
    lines: list[Pieces] = []
    inline: Pieces = []
    for child in node.get("content", []):
        kind = child.get("type")
        if kind == "text":
            marked = child.get("marks")
            marks = tuple(sorted(_canonical(_ref(m)) for m in marked)) if marked else ()
            key = (marks, block)
            inline.append((str(child.get("text", "")), keys.setdefault(key, key)))
        elif kind in _BREAKS:
            inline.append((_BREAKS[kind], NONE))
        else:
            if inline:
                lines.append(inline)
                inline = []
            lines.append(_walk(child, block, keys))
    if inline or not lines:
        lines.append(inline)
    out: Pieces = lines[0]
    for line in lines[1:]:
        out += [("\n", NONE), *line]
    return out


@dataclass(frozen=True, slots=True)
class _Block:
    node: Json  # held, so that its id is not reused while it is in a memo
    text: str
    runs: list[tuple[int, Key]]
    starts: list[int]  # where each run starts in the block, then the block's length

    def same(self, other: "_Block") -> bool:
        return self is other or (self.text == other.text and self.runs == other.runs)


class Layouts:
    """Builds the layout of each rendered document, reusing the runs of unchanged blocks."""

    def __init__(self) -> None:
        # Never pruned: a memo's block holds its node, whose id no other node can take. The
        # blocks a walk re-renders stay (a few per run), so a layout costs the blocks it reads.
        self._memo: dict[int, _Block] = {}
        self._plain: dict[str, _Block] = {}  # plain paragraphs, by their text
        self._keys: dict[Key, Key] = {NONE: NONE}  # one object per key: cheap comparisons

    def layout(
        self,
        blocks: Sequence[Json],
        content: str,
        before: "Layout | None" = None,
        kept: tuple[int, int] = (0, 0),
    ) -> "Layout":
        """`kept`: how many blocks at either end are those of `before` (the same nodes), whose
        runs it reuses; only the blocks between are read (a run of updates touched them)."""
        head, tail = kept if before is not None and before.blocks else (0, 0)
        parts = [self._part(node) for node in blocks[head : len(blocks) - tail]]
        old = before.blocks if before is not None else []
        at = before.block_starts[head] if before is not None and head else 0
        middle = "\n".join(part.text for part in parts)
        starts = [*(before.block_starts[:head] if before is not None else [])]
        starts += accumulate((len(part.text) + 1 for part in parts), initial=at)
        if before is not None and tail:  # the blocks after, shifted by what changed
            shift = starts[-1] - before.block_starts[len(old) - tail]
            starts += [start + shift for start in before.block_starts[len(old) - tail + 1 :]]
        if content[at : at + len(middle)] != middle or starts[-1] != len(content) + 1:
            return Layout([], [0], len(content))  # never seen: report nothing
        return Layout([*old[:head], *parts, *old[len(old) - tail :]], starts, len(content))

    def _part(self, node: Json) -> _Block:
        text = _plain_text(node)
        if text is not None:  # every line of a Y.Text body, rendered anew each time
            found = self._plain.get(text) or self._block(node)
            self._plain[text] = found
            return found
        memo = self._memo.get(id(node))
        if memo is None or memo.node is not node:
            memo = self._memo[id(node)] = self._block(node)
        return memo

    def _block(self, node: Json) -> _Block:
        pieces = _walk(node, "", self._keys)
        runs = [(len(text), key) for text, key in pieces if text]
        starts = [0, *accumulate(length for length, _ in runs)]
        return _Block(node, "".join(text for text, _ in pieces), runs, starts)


def _plain_text(node: Json) -> str | None:
    """The text of a paragraph without attributes holding at most one text without marks."""
    if node.keys() - {"type", "content"} or node.get("type") != "paragraph":
        return None
    content = node.get("content", [])
    if not content:
        return ""
    if len(content) > 1 or content[0].keys() != {"type", "text"} or content[0]["type"] != "text":
        return None
    return str(content[0]["text"])


@dataclass(frozen=True, slots=True)
class Layout:
    blocks: list[_Block]  # none: the text has no known formatting (a NONE run throughout)
    block_starts: list[int]  # where each block starts, then the length + 1
    length: int

    def runs(self, lo: int, hi: int) -> Iterator[tuple[int, int, Key]]:
        """(start, end, key) of the runs over [lo, hi), clipped to it; the line break after a
        block is a run of its own."""
        if not self.blocks:
            if lo < hi:
                yield lo, hi, NONE
            return
        i = bisect_right(self.block_starts, lo) - 1
        while lo < hi and i < len(self.blocks):
            block, at = self.blocks[i], self.block_starts[i]
            j = bisect_right(block.starts, lo - at) - 1
            while lo < hi and j < len(block.runs):
                end = min(at + block.starts[j + 1], hi)
                yield lo, end, block.runs[j][1]
                lo, j = end, j + 1
            end = min(self.block_starts[i + 1], hi, self.length)
            if lo < end:
                yield lo, end, NONE
                lo = end
            i += 1

    def window(self, other: "Layout", kept: tuple[int, int] = (0, 0)) -> tuple[int, int]:
        """The part of this text where `other` (the text before) may differ in formatting:
        between the blocks both render alike at either end (mostly as the very same objects,
        `kept` of them known to be; a Y.Text body's are rendered anew each time)."""
        mine, theirs = self.blocks, other.blocks
        short = min(len(mine), len(theirs))
        p, s = kept if mine and theirs else (0, 0)
        while p < short and mine[p].same(theirs[p]):
            p += 1
        while s < short - p and mine[-1 - s].same(theirs[-1 - s]):
            s += 1
        return self.block_starts[p], min(self.block_starts[len(mine) - s], self.length)


def reformatted(
    old: Layout,
    new: Layout,
    kept: Sequence[tuple[int, int, int]],
    blocks: tuple[int, int] = (0, 0),
) -> Iterator[tuple[int, int, Key, Key]]:
    """Spans (in the new text) of the characters kept from the old text (`kept`: the text
    alignment's (old start, new start, length) segments) whose key changed; `blocks`: how many
    blocks at either end `new` took from `old` as they were (`Layouts.layout`'s `kept`)."""
    lo, hi = new.window(old, blocks)
    for a0, b0, length in kept:
        start, stop = max(b0, lo), min(b0 + length, hi)
        shift = a0 - b0
        for b_start, b_end, key in new.runs(start, stop):
            for a_start, a_end, was in old.runs(b_start + shift, b_end + shift):
                if was is not key and NONE not in (was, key):
                    yield a_start - shift, a_end - shift, was, key


@lru_cache(maxsize=4096)
def aspects(was: Key, now: Key) -> frozenset[str]:
    """What differs between two keys: the names of the marks set or cleared, and "block"."""
    names = {json.loads(m)["type"] for m in set(was[0]) ^ set(now[0])}
    return frozenset(names | ({"block"} if was[1] != now[1] else set()))


class Tracked(Protocol):
    base: Key  # the key at the start, or when the character was inserted
    by: dict[str, set[str]] | None  # aspect -> users who changed it since


@dataclass
class FormatChange:
    line: int  # 1-based, in the end text (the span may be text inserted in between)
    text: str
    added: list[Json]  # marks, ProseMirror's shape
    removed: list[Json]
    block: tuple[list[Json], list[Json]] | None  # the chain of blocks before and after
    by: list[str]

    def to_json(self) -> Json:
        block = None if self.block is None else {"from": self.block[0], "to": self.block[1]}
        return {"line": self.line, "text": self.text, "added": self.added,
                "removed": self.removed, "block": block, "by": self.by}  # fmt: skip

    def describe(self) -> str:
        parts = [f"+{_short(m)}" for m in self.added] + [f"-{_short(m)}" for m in self.removed]
        if self.block is not None:
            parts.append(" -> ".join(" > ".join(map(_short, c)) for c in self.block))
        return " ".join(parts)


def _short(node: Json) -> str:
    attrs = node.get("attrs", {})
    # Raw: the caller escapes the line for terminals (tools/terminal.py).
    inner = ", ".join(f"{k}={_value(v)}" for k, v in attrs.items())
    return f"{node['type']}({inner})" if inner else str(node["type"])


def _value(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def changes(text: str, layout: Layout, chars: Sequence[Tracked]) -> list[FormatChange]:
    """The characters of the end text whose key differs from their base, in spans of one
    change made by the same users (never across a line)."""
    spans: list[tuple[int, int, Key, Key, tuple[str, ...]]] = []
    for start, end, key in layout.runs(0, layout.length):
        for j in range(start, end):
            char = chars[j]
            if not char.by or key == char.base or NONE in (key, char.base) or text[j] == "\n":
                continue
            names = aspects(char.base, key)
            users = tuple(sorted(set().union(*(char.by.get(n, set()) for n in names))))
            if spans and spans[-1][1] == j and spans[-1][2:] == (char.base, key, users):
                spans[-1] = (spans[-1][0], j + 1, *spans[-1][2:])
            else:
                spans.append((j, j + 1, char.base, key, users))
    breaks = [i for i, c in enumerate(text) if c == "\n"]
    return [
        _change(bisect_right(breaks, a) + 1, text[a:b], was, now, users)
        for a, b, was, now, users in spans
    ]


def _change(line: int, text: str, was: Key, now: Key, users: tuple[str, ...]) -> FormatChange:
    marks = [json.loads(m) for m in sorted(set(now[0]) - set(was[0]))]
    gone = [json.loads(m) for m in sorted(set(was[0]) - set(now[0]))]
    block = None if was[1] == now[1] else (json.loads(was[1]), json.loads(now[1]))
    return FormatChange(line, text, marks, gone, block, list(users))
