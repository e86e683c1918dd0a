"""Formatting and block structure of a letter's text, character by character: what `diff`
reports besides the text (tools/diff.py).

Every character of the plain text (`Snapshot.content`) gets a key: its marks (bold, a link and
its href, a highlight's colour...) and the chain of blocks it sits in, outermost first
(`bulletList > listItem > paragraph`, a heading with its level, a cell with its span), read
from the rendered ProseMirror JSON, so every mark and node TipTap writes is covered, known or
not. The line breaks between blocks have no key (`NONE`); a Y.Text body has one key throughout.
A `Layout` holds the keys as runs. A block's runs are kept by the identity of its rendered JSON,
which the snapshotter's document keeps for the blocks an update did not touch
(`LetterDocument` re-renders only those), and a plain paragraph's (every line of a Y.Text body,
rendered anew each time) by its text, so a run of updates reads the blocks it touched.
"""

import json
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Any, Protocol

Json = dict[str, Any]
Key = tuple[tuple[str, ...], str]  # (marks as canonical JSON, sorted; block chain as JSON)
NONE: Key = ((), "")  # a line break: never reported
# Inline nodes and their text, as snapshotter.document renders them (`_INLINE`).
_BREAKS = {"hardBreak": "\n", "hard_break": "\n", "image": ""}


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

    def same(self, other: "_Block") -> bool:
        return self is other or (self.text == other.text and self.runs == other.runs)


class Layouts:
    """Builds the layout of each rendered document, reusing the runs of unchanged blocks."""

    def __init__(self) -> None:
        self._memo: dict[int, _Block] = {}
        self._plain: dict[str, _Block] = {}  # plain paragraphs, by their text
        self._keys: dict[Key, Key] = {NONE: NONE}  # one object per key: cheap comparisons

    def layout(self, blocks: Sequence[Json], content: str) -> "Layout":
        memo: dict[int, _Block] = {}
        plain: dict[str, _Block] = {}
        parts = []
        for node in blocks:
            text = _plain_text(node)
            if text is not None:  # every line of a Y.Text body, rendered anew each time
                found = self._plain.get(text) or plain.get(text) or self._block(node)
                plain[text] = found
            else:
                found = self._memo.get(id(node)) or self._block(node)
                if found.node is not node:  # the id of a block no longer rendered
                    found = self._block(node)
                memo[id(node)] = found
            parts.append(found)
        self._memo, self._plain = memo, plain
        if "\n".join(part.text for part in parts) != content:  # never seen: report nothing
            return Layout([0, len(content)], [NONE], len(content), [], [0])
        runs = list(parts[0].runs) if parts else []
        for part in parts[1:]:
            runs += [(1, NONE), *part.runs]
        starts = [0, *accumulate(length for length, _ in runs)]
        block_starts = [0, *accumulate(len(part.text) + 1 for part in parts)]
        return Layout(starts, [key for _, key in runs], len(content), parts, block_starts)

    def _block(self, node: Json) -> _Block:
        pieces = _walk(node, "", self._keys)
        runs = [(len(text), key) for text, key in pieces if text]
        return _Block(node, "".join(text for text, _ in pieces), runs)


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
    starts: list[int]  # where each run starts, then the text's length
    keys: list[Key]
    length: int
    blocks: list[_Block]
    block_starts: list[int]  # where each block starts, then the length + 1

    def runs(self, lo: int, hi: int) -> Iterator[tuple[int, int, Key]]:
        """(start, end, key) of the runs over [lo, hi), clipped to it."""
        i = bisect_right(self.starts, lo) - 1
        while lo < hi and i < len(self.keys):
            end = min(self.starts[i + 1], hi)
            yield lo, end, self.keys[i]
            lo, i = end, i + 1

    def window(self, other: "Layout") -> tuple[int, int]:
        """The part of this text where `other` (the text before) may differ in formatting:
        between the blocks both render alike at either end (mostly as the very same objects;
        a Y.Text body's are rendered anew each time)."""
        mine, theirs = self.blocks, other.blocks
        short, p, s = min(len(mine), len(theirs)), 0, 0
        while p < short and mine[p].same(theirs[p]):
            p += 1
        while s < short - p and mine[-1 - s].same(theirs[-1 - s]):
            s += 1
        return self.block_starts[p], min(self.block_starts[len(mine) - s], self.length)


def reformatted(
    old: Layout, new: Layout, kept: Sequence[tuple[int, int, int]]
) -> Iterator[tuple[int, int, Key, Key]]:
    """Spans (in the new text) of the characters kept from the old text (`kept`: the text
    alignment's (old start, new start, length) segments) whose key changed."""
    lo, hi = new.window(old)
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
