"""One letter's Yjs document as the snapshotter sees it: apply updates, measure each edit,
and render the body as plain text and as ProseMirror-style JSON.

The body is the root named by `settings.doc_field`: TipTap's Y.XmlFragment (blocks of
XmlElements holding XmlText), or a plain Y.Text of that name (paragraphs split on newlines).
Edits are measured from the CRDT's own change events, never by diffing whole documents, so
catch-up stays cheap for long letters. Characters inside a removed block are not counted as
deleted (the event no longer carries them); the removal shows in `paragraphs`.

`state()` carries the updates still pending on a missing dependency (`schemas.ystate`), so a
state saved between an update and the one it depends on (a batch, an eviction, a restart) keeps
the later one.
"""

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, cast

from pycrdt import Doc, XmlElement, XmlFragment, XmlText
from pycrdt._base import base_types

from schemas.ystate import pending_parts, with_pending

Json = dict[str, Any]


@dataclass(slots=True)
class EditDelta:
    """What one update changed: characters inserted/deleted and the top-level blocks touched."""

    inserted: int = 0
    deleted: int = 0
    paragraphs: set[int] = field(default_factory=set)

    @property
    def empty(self) -> bool:
        return not (self.inserted or self.deleted or self.paragraphs)


@dataclass(frozen=True, slots=True)
class Snapshot:
    content: str  # plain text, blocks separated by newlines
    document: Json  # {"type": "doc", "content": [...]}, ProseMirror's JSON shape
    document_json: str  # `document` encoded (sorted keys), as stored
    digest: str  # sha256 of document_json: equal digests mean identical content


class LetterDocument:
    def __init__(self, field_name: str, state: bytes = b"") -> None:
        self._doc: Doc[Any] = Doc()
        self._root = self._doc.get(field_name, type=XmlFragment)
        self._text_mode: bool | None = None  # unknown until the body has content
        # Rendered top-level blocks, kept in step with the CRDT's change events so a version
        # re-renders only the blocks that changed since the last one (None = re-render).
        self._cache: list[tuple[Json, str] | None] | None = None  # (block JSON, its text)
        self._state: bytes | None = None  # encoded state, until the next update
        # Updates applied since the last `state()` that may have left parts pending, and the
        # parts still pending then: what `state()` must look through.
        self._unsettled: list[bytes] = []
        if state:
            self._doc.apply_update(state)
            self._unsettled.append(state)
        self._delta = EditDelta()
        self._errors: list[Exception] = []
        # Subscribed on the native type: pycrdt's wrapper would convert every attribute of
        # every event (a third of catch-up time); we read only `path` and `delta`.
        self._subscription = self._root.integrated.observe_deep(self._on_native_events)

    def apply(self, update: bytes) -> EditDelta:
        """Apply a Yjs v1 update; raises ValueError when it cannot be decoded."""
        self._delta, self._state = EditDelta(), None
        self._doc.apply_update(update)
        self._unsettled.append(update)
        if self._errors:  # raised inside the observer: a bug of ours, never bad input
            raise self._errors.pop()
        return self._delta

    def state(self) -> bytes:
        if self._state is None:
            self._unsettled = pending_parts(self._doc, self._unsettled)
            self._state = with_pending(self._doc.get_update(), self._unsettled)
        return self._state

    def snapshot(self) -> Snapshot:
        with self._doc.transaction():  # one read transaction instead of one per node
            rendered = self._blocks()
        document: Json = {"type": "doc", "content": [block for block, _ in rendered]}
        encoded = json.dumps(document, sort_keys=True, separators=(",", ":"))
        content = "\n".join(text for _, text in rendered)
        digest = hashlib.sha256(encoded.encode()).hexdigest()
        return Snapshot(content, document, encoded, digest)

    def _is_text(self) -> bool:
        if self._text_mode is None and str(self._root):
            # A Y.Text root read as a fragment has characters but no XML children.
            self._text_mode = not any(True for _ in self._root.children)
        return bool(self._text_mode)

    def _blocks(self) -> list[tuple[Json, str]]:
        if self._is_text():
            return [(_paragraph(line), line) for line in str(self._root).split("\n")]
        children = self._root.children
        if self._cache is None or len(self._cache) != len(children):
            self._cache = [None] * len(children)
        cache = self._cache
        for index, entry in enumerate(cache):
            if entry is None:
                block = _node_json(children[index])
                cache[index] = (block, _block_text(block))
        return [entry for entry in cache if entry is not None]

    def _on_native_events(self, events: list[Any]) -> None:
        try:
            with self._doc._read_transaction(events[0].transaction):
                self._on_events([(list(e.path), e.delta) for e in events])
        except Exception as exc:
            self._errors.append(exc)

    def _on_events(self, events: list[tuple[list[int], list[Json]]]) -> None:
        # Paths are those of the document after the transaction: shift the cache by the
        # top-level changes first, then invalidate the blocks changed inside.
        for path, delta in sorted(events, key=lambda e: len(e[0])):
            if path:
                self._invalidate(path[0])
                self._count_text(path[0], delta)
            elif self._root_is_text(delta):
                self._count_root_text(delta)
            else:
                self._count_blocks(delta)

    def _root_is_text(self, delta: list[Json]) -> bool:
        if self._text_mode is None:
            inserted = [item for op in delta for item in op.get("insert", [])]
            if inserted:
                self._text_mode = isinstance(inserted[0], str)
        return bool(self._text_mode)

    def _invalidate(self, block: int) -> None:
        if self._cache is not None and block < len(self._cache):
            self._cache[block] = None

    def _count_text(self, block: int, delta: list[Json]) -> None:
        for op in delta:
            if "insert" in op:
                self._delta.inserted += _length(op["insert"])
            elif "delete" in op:
                self._delta.deleted += op["delete"]
            elif "attributes" not in op:
                continue
            self._delta.paragraphs.add(block)

    def _count_blocks(self, delta: list[Json]) -> None:
        cursor, cache = 0, self._cache
        for op in delta:
            if "retain" in op:
                cursor += op["retain"]
            elif "insert" in op:
                for node in op["insert"]:
                    self._delta.inserted += len(_plain(node, self._doc))
                    self._delta.paragraphs.add(cursor)
                    if cache is not None:
                        cache.insert(cursor, None)
                    cursor += 1
            elif "delete" in op:
                self._delta.paragraphs.add(cursor)
                if cache is not None:
                    del cache[cursor : cursor + op["delete"]]

    def _count_root_text(self, delta: list[Json]) -> None:
        text, cursor = str(self._root), 0
        for op in delta:
            if "retain" in op:
                cursor += op["retain"]
                continue
            self._delta.paragraphs.add(text.count("\n", 0, cursor))
            if "insert" in op:
                size = _length(op["insert"])
                self._delta.inserted += size
                cursor += size
            else:
                self._delta.deleted += op.get("delete", 0)


def _length(inserted: Any) -> int:
    if isinstance(inserted, str):
        return len(inserted)
    if isinstance(inserted, list):
        return sum(len(item) if isinstance(item, str) else 1 for item in inserted)
    return 1  # an embed


def _plain(node: Any, doc: Doc[Any] | None = None) -> str:
    wrapper = base_types.get(type(node))  # native types in raw events get pycrdt's wrapper
    if wrapper is not None:
        node = wrapper(_integrated=node, _doc=doc)
    if isinstance(node, XmlText):
        return "".join(part for part, _ in node.diff() if isinstance(part, str))
    if isinstance(node, XmlElement):
        return "".join(_plain(child) for child in node.children)
    return node if isinstance(node, str) else ""


def _paragraph(text: str) -> Json:
    return (
        {"type": "paragraph", "content": [{"type": "text", "text": text}]}
        if text
        else {"type": "paragraph"}
    )


def _node_json(node: Any) -> Json:
    if isinstance(node, XmlElement):
        out: Json = {"type": node.tag or "paragraph"}
        attrs = {key: _clean(value) for key, value in cast(Any, node.attributes)}
        if attrs:
            out["attrs"] = attrs
        content = [part for child in node.children for part in _children_json(child)]
        if content:
            out["content"] = content
        return out
    return {"type": "paragraph", "content": _children_json(node)}


def _children_json(node: Any) -> list[Json]:
    if isinstance(node, XmlText):
        return [_text_json(part, attrs) for part, attrs in node.diff() if isinstance(part, str)]
    return [_node_json(node)]


def _text_json(text: str, attrs: dict[str, Any] | None) -> Json:
    out: Json = {"type": "text", "text": text}
    if attrs:
        out["marks"] = [_mark(name, value) for name, value in sorted(attrs.items())]
    return out


def _mark(name: str, value: Any) -> Json:
    # y-prosemirror stores a mark as a format attribute: mark name -> mark attrs (or true).
    if isinstance(value, dict) and value:
        return {"type": name, "attrs": {k: _clean(v) for k, v in value.items()}}
    return {"type": name}


def _clean(value: Any) -> Any:
    # Yjs numbers arrive as floats; keep integral ones integers, as the editor wrote them. NaN
    # and Infinity (any JS number may be an attribute) are not JSON: null, as JSON.stringify
    # writes them (json.dumps would write "NaN", which jsonb and every JSON parser refuse).
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer():
            return int(value)
    return value


_INLINE = {"text": None, "hardBreak": "\n", "hard_break": "\n", "image": ""}


def _block_text(block: Json) -> str:
    """Plain text: inline nodes concatenated (a hard break is a newline), blocks on lines."""
    lines: list[str] = []
    inline: list[str] = []
    for child in block.get("content", []):
        kind = child.get("type")
        if kind == "text":
            inline.append(str(child.get("text", "")))
        elif kind in _INLINE:
            inline.append(_INLINE[kind] or "")
        else:
            if inline:
                lines.append("".join(inline))
                inline = []
            lines.append(_block_text(child))
    if inline or not lines:
        lines.append("".join(inline))
    return "\n".join(lines)
