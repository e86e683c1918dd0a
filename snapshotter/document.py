"""One letter's Yjs document as the snapshotter sees it: apply updates, measure each edit,
and render the body as plain text and as ProseMirror-style JSON.

The body is the root named by `settings.doc_field`: TipTap's Y.XmlFragment (blocks of
XmlElements holding XmlText), or a plain Y.Text of that name (paragraphs split on newlines).
Edits are measured from the CRDT's own change events, never by diffing whole documents, so
catch-up stays cheap for long letters. Both counts are in characters (Unicode code points, what
GET /v1/letters/{id} offsets count), whatever unit the event uses: yrs counts an XmlText's
retains and deletes in UTF-8 bytes, a Y.Text body's in UTF-16 units (Yjs' clocks), and an event
carries no deleted text. So the document keeps a shadow of what a deletion needs, in the event's
unit: each XmlText's text as UTF-8 with its formatting runs (and, for a Y.Text body, its text),
built at the first update and kept in step from the events. A removed block counts its text as
deleted, as an inserted one counts it as inserted; text one update both deletes and inserts (a
paragraph split or joined, a block made a heading: `snapshotter.moved`) only moved, and counts
as neither. Formatting is counted apart (`formatted`): characters whose marks changed (bold,
strike...: a mark yrs says is cleared up to the text's end counts only where it was set), and a
block's characters when its attributes change (a heading's level, an alignment).

`state()` carries the updates still pending on a missing dependency (`schemas.ystate`), so a
state saved between an update and the one it depends on (a batch, an eviction, a restart) keeps
the later one. While the document holds such parts, yrs changes blocks without change events
(`_settle`), and what it shows depends on how the updates were cut (`_reload`): each update is
then applied behind the pending parts, and the document is loaded again from its saved state
and its cached blocks and shadow dropped, so a version is what a restart from that state renders
(the update past a pending one of its client is not shown until that one is, as in Yjs). That
costs a save and a load of the whole letter per update until nothing is pending (measured: a
152 KB letter 0.2 -> 8.0 ms per update, 766 KB 1.5 -> 45 ms); the common case pays one look at
the update (a few microseconds).
"""

import hashlib
import json
import logging
import math
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from pycrdt import Doc, Text, XmlElement, XmlFragment, XmlText, get_update, merge_updates
from pycrdt._pycrdt import XmlElement as YXmlElement
from pycrdt._pycrdt import XmlFragment as YXmlFragment
from pycrdt._pycrdt import XmlText as YXmlText

from schemas.quarantine import PASSTHROUGH
from schemas.ystate import (
    REFUSED,
    newlines,
    parts_to_keep,
    pending_parts,
    split_pending,
    with_pending,
)
from snapshotter.moved import MovedText, code_points

log = logging.getLogger(__name__)
Json = dict[str, Any]
# `LetterDocument._count_typing`, the walk's shortcut for typing; off only in a test comparing
# the two.
TYPING = True
Runs = list[tuple[int, Json]]  # an XmlText's formatting: (UTF-8 bytes, attributes), in order


@dataclass(slots=True)
class TextShadow:
    text: bytes  # UTF-8; an embed is one byte, as yrs counts it
    runs: Runs  # lengths sum to len(text)


@dataclass(slots=True)
class InlineShadow:
    """An inline element (INLINE: a hard break, an image) inside a block: the plain text holds
    its `text` (UTF-8: a hard break's newline), never its children's."""

    text: bytes


# The shadow of a node (see above): an XmlText's, an inline element's, a block's children, None
# for anything else.
Shadow = TextShadow | InlineShadow | list["Shadow"] | None


@dataclass(slots=True)
class EditDelta:
    """What one update changed: characters inserted/deleted, characters (re)formatted, and the
    top-level blocks touched."""

    inserted: int = 0
    deleted: int = 0
    paragraphs: set[int] = field(default_factory=set)
    formatted: int = 0

    @property
    def empty(self) -> bool:
        return not (self.inserted or self.deleted or self.formatted or self.paragraphs)


@dataclass(frozen=True, slots=True)
class Snapshot:
    content: str  # plain text, blocks separated by newlines
    document: Json  # {"type": "doc", "content": [...]}, ProseMirror's JSON shape
    document_json: str  # `document` encoded (sorted keys), as stored
    digest: str  # sha256 of document_json: equal digests mean identical content


class LetterDocument:
    def __init__(self, field_name: str, state: bytes = b"") -> None:
        self._field = field_name
        self._text_mode: bool | None = None  # unknown until the body has content
        # The shadow before the next update (None: built at the next `apply`); the text of a
        # Y.Text body. Only `apply` needs them: a document only rendered never builds them.
        self._tree: list[Shadow] | None = None
        self._text = ""
        # Rendered top-level blocks, kept in step with the CRDT's change events so a version
        # re-renders only the blocks that changed since the last one (None = re-render).
        self._cache: list[tuple[Json, str] | None] | None = None  # (block JSON, its text)
        self._state: bytes | None = None  # encoded state, until the next update
        self._delta = EditDelta()
        self._moved = MovedText()  # emptied for each transaction
        self._errors: list[Exception] = []
        self.dropped = 0  # pending parts the last `apply` dropped (`_retry`)
        self._load(state)

    def _load(self, state: bytes) -> None:
        """A new document holding `state` (before observing it: loading is no edit)."""
        self._doc: Doc[Any] = Doc()
        self._root = self._doc.get(self._field, type=XmlFragment)
        # A Y.Text body read as a fragment loses astral characters (str() and events' inserts);
        # read as Text, it does not. Got before any update: reading it in an observer can't.
        self._body_text = self._doc.get(self._field, type=Text)
        # Updates applied since the last `state()` that may have left parts pending, and the
        # parts still pending then: what `state()` must look through. `_pending`: whether the
        # document holds such parts, as last looked (`_unsettle`, `_settle`); None for a state
        # loaded and not looked at yet: its first update or save looks (`pending`).
        self._unsettled: list[bytes] = []
        self._pending: bool | None = False
        if state:
            self._doc.apply_update(state)
            self._unsettled.append(state)
            self._pending = None
        # Subscribed on the native type: pycrdt's wrapper would convert every attribute of
        # every event (a third of catch-up time); we read only `path` and `delta`. Through a
        # weak reference: the document holds its observer in Rust, where Python's collector
        # cannot see it, so observer -> self -> document would be a cycle never freed (each
        # document rendered by the tools, each letter the snapshotter evicts, kept for good).
        this = weakref.ref(self)

        def on_events(events: list[Any]) -> None:
            letter = this()
            if letter is not None:
                letter._on_native_events(events)

        self._subscription = self._root.integrated.observe_deep(on_events)

    @property
    def pending(self) -> bool:
        """Whether the document holds pending parts (what `snapshotter_letters_pending`
        counts): False for a loaded state until its first update or save looks (a document
        only rendered never looks)."""
        return self._pending is True

    def apply(self, update: bytes) -> EditDelta:
        """Apply a Yjs v1 update. Raises ValueError when pycrdt refuses it (`REFUSED`: it
        cannot decode it, or yrs cannot integrate it), the document then as before; anything
        else (a pyo3 panic: yrs broke) when the document cannot be trusted any more: the
        caller folds again from a saved state (the snapshotter's quarantine)."""
        if self._pending is None:  # a loaded state: is any of it pending?
            self._unsettle()
        # While parts are pending the state before is at hand (`_reload` keeps it), and a
        # failed apply goes back to it; else whether it changed anything is looked at after.
        before = self.state() if self._pending else None
        self._delta, self._state, self.dropped = EditDelta(), None, 0
        try:
            self._apply(update)
        except PASSTHROUGH:
            raise
        except BaseException as exc:
            self._errors.clear()  # events of an update half applied: no bug of ours
            self._cache = self._tree = None
            if before is not None:
                self._retry(before, update, exc)
            elif isinstance(exc, ValueError):
                raise
            elif isinstance(exc, REFUSED) and self._kept(update):
                raise _refusal(exc) from exc
            else:
                raise
        return self._delta

    def _apply(self, update: bytes) -> None:
        if self._tree is None:
            self._tree, self._text = self._shadow_now()
        # One transaction: what is pending is read from it before its commit, which runs the
        # observer (a transaction of its own after the commit was a second commit per update).
        with self._doc.transaction():
            self._doc.apply_update(self._behind_pending(update) if self._pending else update)
            pending = None if self._pending else pending_parts(self._doc, [update])
        self._settle(update, pending)
        if self._errors:  # raised inside the observer: a bug of ours, never bad input
            raise self._errors.pop()
        if self._pending:
            self._reload()

    def _kept(self, update: bytes) -> bool:
        """Whether a refused `update` left the document as it was. yrs decodes an update
        before it integrates it (a ValueError: nothing done), then integrates its structs in
        turn and stops at one it refuses (a RuntimeError), keeping none pending: nothing
        changed if no struct of it is below the document's state vector now (False, to be
        safe, also when one was known before it)."""
        return get_update(update, self._doc.get_state()) == get_update(update, b"\x00")

    def _retry(self, before: bytes, update: bytes, exc: BaseException) -> None:
        """A gapped apply failed (`exc`): the document is made again from `before`, and the
        update applied behind the pending parts (per client) that apply with it and with each
        other (`parts_to_keep`). A part that cannot (a bad record past the gateway: a restored
        log, corruption) is dropped: kept, it failed every later update of the letter (RR1:
        28 of 28). Only it: a good part it failed beside stays (it was dropped too)."""
        integrated, parts = split_pending(before)
        alone = _attempt(integrated, [], update)
        if not isinstance(alone, Doc):  # the update itself fails
            self._load(before)
            self._state = before
            raise (_refusal(alone) if isinstance(alone, REFUSED) else alone) from exc
        kept = parts_to_keep(parts, lambda some: _applied(integrated, some, update))
        self.dropped = len(parts) - len(kept)
        if self.dropped:
            log.warning("dropped %d of %d pending parts: %r", self.dropped, len(parts), exc)
        self._load(with_pending(integrated, kept))
        self._unsettle()
        self._delta = EditDelta()  # the failed apply's events counted nothing that stays
        self._apply(update)

    def _behind_pending(self, update: bytes) -> bytes:
        """`update` behind the parts pending, as the saved state holds them (`_reload`): what
        it shows is then what the reload keeps, so it is counted once, when it shows."""
        return merge_updates(*self._unsettled, update)  # refused: `apply` sorts it out

    def _reload(self) -> None:
        """While parts are pending, yrs' document depends on how the updates were cut: one
        applied on its own past a pending one of its client (its clocks after that one's) is
        integrated if its neighbours are known, but stays pending inside one update with the
        pending part (the saved state), and can even leave that part out for good once the
        missing update arrives. So the document becomes what its saved state loads as: a
        restart anywhere renders, and goes on, as this one does (`Doc` from `state()`)."""
        state = self.state()
        self._load(state)
        self._state = state  # the very bytes loaded: a restart from them is this document
        # Looked at now rather than by the next update (the same look): `pending` then speaks
        # of the document loaded, which may hold parts the one before had integrated.
        self._unsettle()

    def state(self) -> bytes:
        if self._state is None:
            self._unsettle()
            self._state = with_pending(self._doc.get_update(), self._unsettled)
        return self._state

    def _unsettle(self) -> None:
        self._unsettled = pending_parts(self._doc, self._unsettled)
        self._pending = bool(self._unsettled)

    def _settle(self, update: bytes, pending: list[bytes] | None) -> None:
        """While the document holds parts of updates that wait on a missing one (skipped:
        quarantined; or still to come), yrs integrates them, and an update's structs past a gap
        in its client's clocks, without change events: the cached blocks and the shadow cannot
        follow, so each update then drops both (the blocks are rendered again at the next
        snapshot, the shadow built again at the next update), until `state()` finds nothing
        pending. Any update may be the one that lets such parts in. An update that leaves
        nothing pending in a document that had nothing never will, so it is not kept.
        `pending`: what the update left pending (None while the document holds some)."""
        if not self._pending:
            if not pending:
                return
            self._pending = True
            self._unsettled += pending
        else:
            self._unsettled.append(update)
        self._cache = self._tree = None

    def blocks(self) -> list[tuple[Json, str]]:
        """The top-level blocks rendered (JSON, text), without encoding the whole document as
        `snapshot()` does. A block no update touched since the last call is the very same
        tuple; after an update yrs integrated in part without change events (`_settle`), every
        block is a new one."""
        with self._doc.transaction():  # one read transaction, not one per node
            return self._blocks()

    def snapshot(self) -> Snapshot:
        rendered = self.blocks()
        document: Json = {"type": "doc", "content": [block for block, _ in rendered]}
        encoded = json.dumps(document, sort_keys=True, separators=(",", ":"))
        content = "\n".join(text for _, text in rendered)
        digest = hashlib.sha256(encoded.encode()).hexdigest()
        return Snapshot(content, document, encoded, digest)

    def _is_text(self, txn: Any = None) -> bool:
        """`txn`: an event's, in the observer, where pycrdt's wrappers cannot read (each opens
        a transaction, and the document's is committing): the native types are read with it."""
        if self._text_mode is None:
            root, body = self._root.integrated, self._body_text.integrated
            if root.children(txn) if txn else any(True for _ in self._root.children):
                self._text_mode = False
            # Characters but no XML children: a Y.Text body.
            elif body.get_string(txn) if txn else str(self._body_text):
                self._text_mode = True
        return bool(self._text_mode)

    def _shadow_now(self) -> tuple[list[Shadow], str]:
        if self._is_text():
            return [], str(self._body_text)
        with self._doc.transaction() as transaction:
            # Private, for want of a public one: pycrdt hands a native transaction only to
            # observers (`event.transaction`), and the observer shadows inserted native nodes
            # with `_shadow` too: through the wrappers this walk would be a second copy of it.
            txn = transaction._txn
            children = self._root.integrated.children(txn)
            return [_shadow(child, txn, inline=False) for child in children], ""

    def _blocks(self) -> list[tuple[Json, str]]:
        if self._is_text():  # emptied, it renders as one never written (no blocks)
            text = str(self._body_text)
            return [(_paragraph(line), line) for line in text.split("\n")] if text else []
        children = self._root.children
        count = len(children)  # yrs keeps it: no walk
        if self._cache is None or len(self._cache) != count:
            self._cache = [None] * count
        cache = self._cache
        # Only the blocks an update touched are read: wrapping every child per call cost each
        # diff run (and snapshot) the letter's length (3,000 runs of a 3,000-block letter: 30
        # s). yrs finds the child at an index by walking from the first, so many are read in
        # one walk (by index, 10,000 blocks cost 1 s to 6 s per snapshot), a few by index.
        missing = list(_nones(cache))
        if len(missing) > _BY_INDEX:
            every = list(children)
            read = [every[i] for i in missing]
        else:
            read = [children[i] for i in missing]
        for index, node in zip(missing, read, strict=True):
            block = _node_json(node)
            cache[index] = (block, _block_text(block))
        return cast(list[tuple[Json, str]], cache.copy())  # every entry rendered now

    def _on_native_events(self, events: list[Any]) -> None:
        # Native nodes are read with the event's own transaction (`_count_nodes`): no pycrdt
        # wrapper, so no read transaction entered for them around every event.
        try:
            self._on_events(events)
        except Exception as exc:
            self._errors.append(exc)

    def _on_events(self, native: list[Any]) -> None:
        # Paths are those of the document after the transaction: shift the cache and the shadow
        # by the changes nearer the root first, then look up the nodes changed inside.
        self._moved.clear()
        events = [(event.path, event) for event in native]
        if len(events) > 1:  # one event (typing) is most transactions
            events.sort(key=lambda e: len(e[0]))
        for path, event in events:
            if not path and self._is_text(event.transaction):
                self._count_root_text(event.delta, event.transaction)
                continue
            node = self._shadow_at(path)
            target = event.target
            if isinstance(target, YXmlText):
                self._count_text(path, event.delta, node)
                continue
            # `keys` is converted on reading: read only for elements, whose events are few.
            if path and isinstance(target, YXmlElement) and event.keys:
                # An element's own attributes: its block is reformatted.
                self._invalidate(path[0])
                self._delta.formatted += code_points(_text(node))
                self._delta.paragraphs.add(path[0])
            self._count_nodes(path, event.delta, node, event.transaction)
        # Text only moved between blocks (a paragraph split or joined, retyped) is not an edit.
        moved = self._moved.characters()
        self._delta.inserted -= moved
        self._delta.deleted -= moved

    def _shadow_at(self, path: list[int]) -> Shadow:
        node: Shadow = self._tree
        for index in path:
            if not isinstance(node, list) or not 0 <= index < len(node):
                return None
            node = node[index]
        return node

    def _stale(self) -> None:
        # The shadow disagrees with an event (never seen): rebuild it before the next update.
        self._tree = None

    def _invalidate(self, block: int) -> None:
        if self._cache is not None and block < len(self._cache):
            self._cache[block] = None

    def _count_text(self, path: list[int], delta: list[Json], node: Shadow) -> None:
        """An XmlText changed: its delta counts UTF-8 bytes of `node`, its text before."""
        block = path[0]
        self._invalidate(block)
        if not isinstance(node, TextShadow):
            self._stale()
            node = TextShadow(b"", [])
        elif TYPING and self._count_typing(path, delta, node):
            return
        old, at, new = node.text, 0, []  # `new`: the node's text after, to keep the shadow in step
        after = 0  # bytes of `new`: where the next change is after the update
        formats = False  # whether an op carries attributes
        for op in delta:
            if "insert" in op:
                inserted = op["insert"]
                self._delta.inserted += _length(inserted)
                encoded = inserted.encode() if isinstance(inserted, str) else b"\0"
                new.append(encoded)
                self._moved.inserted.append(((*path, after), encoded))
                after += len(encoded)
                formats = formats or bool(op.get("attributes"))
            elif "delete" in op:
                size = op["delete"]
                gone = old[at : at + size]
                if len(gone) < size:
                    self._stale()
                self._delta.deleted += code_points(gone) + size - len(gone)
                self._moved.deleted.append(((*path, after), gone))
                at += size
            else:
                size = op.get("retain", 0)
                new.append(old[at : at + size])
                after += len(new[-1])
                at += size
                if not op.get("attributes"):
                    continue
                formats = True
            self._delta.paragraphs.add(block)
        new.append(old[at:])
        text = b"".join(new)
        # Unformatted text edited without formatting (typing, the usual update) stays one
        # unformatted run: the runs are followed only when either side has attributes.
        if formats or len(node.runs) > 1 or (node.runs and node.runs[0][1]):
            runs = self._follow_runs(delta, node)
        else:
            runs = [(len(text), {})] if text else []
        node.text, node.runs = text, runs  # in the tree, unless it is stale (then dropped)

    def _count_typing(self, path: list[int], delta: list[Json], node: TextShadow) -> bool:
        """Typing, most updates: text inserted, or deleted, at one place of an unformatted text,
        without attributes. Counts what `_count_text`'s walk would (the equality is tested);
        False, counting nothing, for any other delta."""
        if len(delta) == 2:
            first, op = delta
            at = first.get("retain")
            if at is None or len(first) != 1:
                return False
        elif len(delta) == 1:
            op, at = delta[0], 0
        else:
            return False
        runs, old = node.runs, node.text
        if len(op) != 1 or len(runs) > 1 or (runs and runs[0][1]) or at > len(old):
            return False
        inserted = op.get("insert")
        if isinstance(inserted, str):
            encoded = inserted.encode()
            text = old[:at] + encoded + old[at:]
            self._delta.inserted += len(inserted)
            self._moved.inserted.append(((*path, at), encoded))
        else:
            size = op.get("delete")
            if size is None or at + size > len(old):
                return False
            gone = old[at : at + size]
            text = old[:at] + old[at + size :]
            self._delta.deleted += code_points(gone)
            self._moved.deleted.append(((*path, at), gone))
        self._delta.paragraphs.add(path[0])
        node.text, node.runs = text, [(len(text), {})] if text else []
        return True

    def _follow_runs(self, delta: list[Json], node: TextShadow) -> Runs:
        """`node`'s formatting runs after `delta`, counting the characters whose marks changed."""
        old, runs, at = node.text, _Runs(node.runs), 0
        new_runs: Runs = []
        for op in delta:
            if "insert" in op:
                inserted = op["insert"]
                size = len(inserted.encode()) if isinstance(inserted, str) else 1
                new_runs.append((size, op.get("attributes") or {}))
            elif "delete" in op:
                runs.take(op["delete"])
                at += op["delete"]
            else:
                size = op.get("retain", 0)
                changes, start = op.get("attributes"), at
                for length, attrs in runs.take(size):
                    if changes:
                        was, attrs = attrs, _formatted(attrs, changes)
                        if attrs != was:
                            self._delta.formatted += code_points(old[start : start + length])
                    new_runs.append((length, attrs))
                    start += length
                at += size
        new_runs += runs.take(len(old) - at)
        return _merged(new_runs)

    def _count_nodes(self, path: list[int], delta: list[Json], old: Shadow, txn: Any) -> None:
        """Children of the body or of an element were inserted or removed (or only an
        element's attributes changed: an empty delta)."""
        if path:
            self._invalidate(path[0])
        if isinstance(old, InlineShadow):  # its attributes, or children the text never shows
            return
        children = old if isinstance(old, list) else None
        if children is None and self._tree is not None:
            self._stale()
        cache = None if path else self._cache
        cursor = 0
        for op in delta:
            if "retain" in op:
                cursor += op["retain"]
            elif "insert" in op:
                nodes = op["insert"]
                for node in nodes:
                    text = _plain(node, txn, inline=bool(path))
                    self._delta.inserted += len(text)
                    self._moved.inserted.append(((*path, cursor), text.encode()))
                    self._delta.paragraphs.add(path[0] if path else cursor)
                    if cache is not None:
                        cache.insert(cursor, None)
                    cursor += 1
                if children is not None:
                    children[cursor - len(nodes) : cursor - len(nodes)] = [
                        _shadow(node, txn, inline=bool(path)) for node in nodes
                    ]
            elif "delete" in op:
                self._delta.paragraphs.add(path[0] if path else cursor)
                if children is not None:  # a removed block's text is deleted text
                    gone = b"".join(map(_text, children[cursor : cursor + op["delete"]]))
                    self._delta.deleted += code_points(gone)
                    self._moved.deleted.append(((*path, cursor), gone))
                if cache is not None:
                    del cache[cursor : cursor + op["delete"]]
                if children is not None:
                    del children[cursor : cursor + op["delete"]]

    def _count_root_text(self, delta: list[Json], txn: Any) -> None:
        """A Y.Text body changed: its delta counts UTF-16 units (and its inserts read as a
        fragment lose astral characters), so the counts come from the text before and after."""
        old = self._text.encode("utf-16-le", "surrogatepass")
        text = self._body_text.integrated.get_string(txn)
        new = text.encode("utf-16-le", "surrogatepass")
        at, cursor, deleted, inserts = 0, 0, 0, [op for op in delta if "insert" in op]
        # Units inserted in all: what the delta's deletions and the lengths do not account for.
        spare = (len(new) - len(old)) // 2 + sum(op.get("delete", 0) for op in delta)
        # The line at `cursor`, counted on from the previous change (`cursor` grows): from the
        # start for each change was quadratic (10,000 changes in a 400 KB body: 5.9 s).
        line, counted = 0, 0
        for op in delta:
            if "retain" in op:
                at += op["retain"]
                cursor += op["retain"]
                continue
            if cursor >= counted:
                line += newlines(new, counted, cursor)
            else:  # an insert's units overestimated (never seen): count back
                line -= newlines(new, cursor, counted)
            counted = cursor
            self._delta.paragraphs.add(line)
            if "insert" in op:
                size = _units(op["insert"]) if op is not inserts[-1] else spare
                spare -= size
                cursor += size
            else:
                size = op.get("delete", 0)
                deleted += len(old[2 * at : 2 * (at + size)].decode("utf-16-le", "surrogatepass"))
                at += size
        self._delta.deleted += deleted
        self._delta.inserted += len(text) - len(self._text) + deleted
        self._text = text


# Blocks to render past which all children are read in one walk (a pycrdt wrapper each, ~3 us)
# rather than one by index (yrs walks from the first child each time, ~50 ns a child).
_BY_INDEX = 32


def _refusal(exc: BaseException) -> ValueError:
    """pycrdt's refusal as the ValueError `apply` raises for it."""
    return exc if isinstance(exc, ValueError) else ValueError(f"{type(exc).__name__}: {exc}")


def _attempt(state: bytes, parts: list[bytes], update: bytes) -> Doc[Any] | BaseException:
    """The document of `state` and `parts` with `update` applied behind `parts`, as `apply`
    would apply it there, or what that raises."""
    doc: Doc[Any] = Doc()
    try:
        doc.apply_update(with_pending(state, parts))
        doc.apply_update(merge_updates(*parts, update))
    except PASSTHROUGH:
        raise
    except BaseException as exc:
        return exc
    return doc


def _applied(state: bytes, parts: list[bytes], update: bytes) -> Doc[Any] | None:
    done = _attempt(state, parts, update)
    return done if isinstance(done, Doc) else None


def _nones(cache: list[Any]) -> Iterator[int]:
    """The indices of `cache`'s None entries, searched in C (`list.index`): a look per call at
    each block in Python was itself the letter's length per diff run."""
    at = -1
    try:
        while True:
            at = cache.index(None, at + 1)
            yield at
    except ValueError:
        return


def _shadow(node: Any, txn: Any, *, inline: bool = True) -> Shadow:
    """`inline`: `node` is inside a block (not a child of the body), where an INLINE element
    stands for its text; as a block of its own, a hard break is an empty line."""
    if isinstance(node, YXmlText):
        parts = [
            (part.encode() if isinstance(part, str) else b"\0", attrs or {})
            for part, attrs in node.diff(txn)
        ]
        runs = _merged([(len(text), attrs) for text, attrs in parts])
        return TextShadow(b"".join(text for text, _ in parts), runs)
    if inline and isinstance(node, YXmlElement):
        tag = node.tag()  # type: ignore[attr-defined]  # pycrdt's stub lacks it
        if tag in INLINE:
            return InlineShadow((INLINE[tag] or "").encode())
    if isinstance(node, YXmlElement | YXmlFragment):
        return [_shadow(child, txn) for child in node.children(txn)]
    return None


def _text(node: Shadow) -> bytes:
    """A shadowed node's plain text (its XmlTexts' and inline elements', UTF-8)."""
    if isinstance(node, TextShadow | InlineShadow):
        return node.text
    return b"".join(map(_text, node)) if isinstance(node, list) else b""


class _Runs:
    """Formatting runs read front to back, a number of bytes at a time."""

    def __init__(self, runs: Runs) -> None:
        self._runs, self._next, self._used = runs, 0, 0

    def take(self, size: int) -> Runs:
        out: Runs = []
        while size > 0 and self._next < len(self._runs):
            length, attrs = self._runs[self._next]
            part = min(size, length - self._used)
            out.append((part, attrs))
            size -= part
            self._used += part
            if self._used == length:
                self._next, self._used = self._next + 1, 0
        return out


def _formatted(attrs: Json, changes: Json) -> Json:
    """`attrs` with a delta's attributes applied (None clears one)."""
    out = dict(attrs)
    for name, value in changes.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def _merged(runs: Runs) -> Runs:
    out: Runs = []
    for length, attrs in runs:
        if out and out[-1][1] == attrs:
            out[-1] = (out[-1][0] + length, attrs)
        elif length:
            out.append((length, attrs))
    return out


def _units(inserted: Any) -> int:
    """UTF-16 units of a Y.Text body's insert (as far as the fragment's reading shows it)."""
    items = inserted if isinstance(inserted, list) else [inserted]
    return sum(
        len(x.encode("utf-16-le", "surrogatepass")) // 2 if isinstance(x, str) else 1 for x in items
    )


def _length(inserted: Any) -> int:
    if isinstance(inserted, str):
        return len(inserted)
    if isinstance(inserted, list):
        return sum(len(item) if isinstance(item, str) else 1 for item in inserted)
    return 1  # an embed


def _plain(node: Any, txn: Any, *, inline: bool = True) -> str:
    """A native node's plain text as `_block_text` renders it (`inline`: as `_shadow`'s),
    without the newlines between blocks; read with `txn`, an event's transaction."""
    if isinstance(node, YXmlText):
        return "".join(part for part, _ in node.diff(txn) if isinstance(part, str))
    if isinstance(node, YXmlElement):
        if inline:
            tag = node.tag()  # type: ignore[attr-defined]  # pycrdt's stub lacks it
            if tag in INLINE:
                return INLINE[tag] or ""
        return "".join(_plain(child, txn) for child in node.children(txn))
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


# Inline nodes and their text (None: its own `text`); tools/formatting.py reads the same.
INLINE = {"text": None, "hardBreak": "\n", "hard_break": "\n", "image": ""}


def _block_text(block: Json) -> str:
    """Plain text: inline nodes concatenated (a hard break is a newline), blocks on lines."""
    lines: list[str] = []
    inline: list[str] = []
    for child in block.get("content", []):
        kind = child.get("type")
        if kind == "text":
            inline.append(str(child.get("text", "")))
        elif kind in INLINE:
            inline.append(INLINE[kind] or "")
        else:
            if inline:
                lines.append("".join(inline))
                inline = []
            lines.append(_block_text(child))
    if inline or not lines:
        lines.append("".join(inline))
    return "\n".join(lines)
