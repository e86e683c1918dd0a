"""Comment anchors: plain-text offsets of the letter <-> Yjs relative positions.

Offsets count code points of the text GET /v1/letters/{id} renders (gateway/content.py: block
elements joined by "\\n"). An anchor's start is a relative position on the first character of
the range (assoc 0, Yjs' default) and its end one on the last character with assoc -1 ("just
after it"), so concurrent inserts outside the range stay outside and the range keeps its text.
The bytes are Yjs' `encodeRelativePosition` (base64), so browsers decode them with
`Y.decodeRelativePosition` and may send their own.

Retyping a range's ending ("14" -> "15") deletes its last character, and Yjs puts the new text
after the deleted one, past where the end resolves. So an anchor also holds `after`: a position
on the character after the range (assoc 0), or at the end of its paragraph (what
`Y.createRelativePositionFromTypeIndex(xmlText, xmlText.length)` makes: the type's id, no item).
The range ends there only once its last character is deleted and its first is not (a range
replaced whole stays detached); else `end` keeps the end exclusive.

Undoing a deletion does not undelete: Yjs' UndoManager inserts copies of the deleted items (new
ids) and follows `item.redone` itself only on the client that undid. So a position on a deleted
character moves to the copy at its place (`Resolver._restored`), kept when the range then
reads as the quote (text typed before a character looks like a copy). Whole paragraphs deleted
are copied as new elements (each a right origin on the one it copies) holding new text, and
their deleted content is garbage-collected, which paragraph it was in forgotten: a range with
both ends there is found by its quote in the restored paragraphs (`Resolver._reparented`).
web/src/editor/anchors.ts does the same, so the page marks what GET answers.

pycrdt 0.14 has sticky indexes for Y.Text and Y.Array only, not for the Y.XmlText paragraphs
TipTap writes, and it exposes no item ids. We learn them from the update encoding instead:
deleting a character in a scratch copy of the document yields an update whose delete set is
exactly that character's id; inserting one at the start of each paragraph yields an item whose
parent (or right origin) names that paragraph's Y.XmlText. Decoding uses pycrdt's StickyIndex
(index within the item's parent, in mixed units: Resolver._offset) plus the parent map of the
document's own state. Both directions work on a document built from the state's bytes, never on
a live one, so they may run in a worker thread (comment_anchors.py does).

The walk over the paragraphs (`content.leaves`, the text GET renders) and the edits of scratch
copies call pycrdt's bindings of the Yrs types (`pycrdt._pycrdt`) under one transaction: its
wrappers cost ten times as much on a long letter. pycrdt is pinned below 0.15.
"""

import base64
import bisect
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pycrdt import Doc, Encoder, StickyIndex
from pycrdt._pycrdt import Text as YText
from pycrdt._pycrdt import Transaction as YTransaction

from gateway.content import Leaf, leaves, raw_transaction
from gateway.wire.limits import STATE_LIMITS
from gateway.wire.reader import Reader
from gateway.wire.update import GC, REF_ORIGIN, REF_PARENT, SKIP, UpdateScan, scan_update
from schemas.events import Anchor

ID = tuple[int, int]  # (client, clock)
QUOTE_MAX = Anchor.model_fields["quote"].metadata[0].max_length
RESTORE_HOPS = 16  # undo, redo, undo again...: copies of copies followed (web: anchors.ts)


class AnchorError(ValueError):
    """Offsets out of range, or an anchor that does not decode (HTTP 422)."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """Where an anchor is: code-point offsets into the text (None: its character is gone).
    `open_end`: its last character is gone and it ends at `after`, so text typed at its end
    joins it."""

    start: int | None
    end: int | None
    open_end: bool = False

    @property
    def detached(self) -> bool:
        return self.start is None or self.end is None or self.end <= self.start


# -- offsets -> anchor -----------------------------------------------------------------------


def to_anchor(state: bytes, field: str, start: int, end: int) -> Anchor:
    """The anchor of [start, end) in the text of `state` (a Yjs update of the whole document);
    AnchorError when it covers no text."""
    return range_anchor(state, field, start, end)[0]


def range_anchor(state: bytes, field: str, start: int, end: int) -> tuple[Anchor, Resolved]:
    """to_anchor, and where the anchor is in that text: from its first character in the range
    to its last (line breaks at the ends of the range are not in a paragraph: left out)."""
    scratch = _load(state)
    body = leaves(scratch, field)
    runs, text = body.runs, body.text()
    if start == end:
        raise AnchorError(f"anchor [{start}, {end}) is empty: to must be greater than from")
    if end < start:
        raise AnchorError(f"anchor [{start}, {end}) ends before it starts")
    if not 0 <= start < end <= len(text):
        raise AnchorError(f"anchor [{start}, {end}) is outside the text (length {len(text)})")
    first, last = _char_at(runs, start, end, 1), _char_at(runs, end - 1, start - 1, -1)
    if first is None or last is None:
        raise AnchorError("anchor covers no text (only line breaks)")
    leaf, index = last
    # The later ones first: deleting one shifts nothing before it.
    follow = _char_span(scratch, leaf, index + 1, state)[:2] if index + 1 < len(leaf.text) else None
    client, clock, length = _char_span(scratch, *last, state)
    last_id = (client, clock + length - 1)  # its last UTF-16 unit: Yjs clocks count those
    first_id = (client, clock) if first == last else _char_span(scratch, *first, state)[:2]
    after = _b64(follow, 0) if follow else _end_of(state, field, leaf, last_id)
    anchor = Anchor(
        start=_b64(first_id, 0), end=_b64(last_id, -1), after=after, quote=quote(text, start, end)
    )
    return anchor, Resolved(first[0].start + first[1], leaf.start + index + 1)


def quote(text: str, start: int, end: int) -> str:
    """The anchored text as shown beside the comment, cut to what `Anchor.quote` holds: the
    anchor is the range, however long (a comment on the whole letter), not the quote."""
    return text[start:end][:QUOTE_MAX]


def _char_at(runs: list[Leaf], pos: int, stop: int, step: int) -> tuple[Leaf, int] | None:
    """The first character inside a leaf from `pos` towards `stop` (exclusive). By bisection over
    the non-empty leaves (disjoint, in order): a scan of the leaves per position cost range x
    paragraphs, minutes for a range over 100,000 empty ones (docs/performance.md)."""
    full = [leaf for leaf in runs if leaf.text]
    if step > 0:  # the first leaf ending after `pos`: `pos` is in it, or its start is next
        k = bisect.bisect_right(full, pos, key=lambda leaf: leaf.end)
        at = max(pos, full[k].start) if k < len(full) else stop
        return (full[k], at - full[k].start) if at < stop else None
    # The last leaf starting at or before `pos`: `pos` is in it, or its last character is next.
    k = bisect.bisect_right(full, pos, key=lambda leaf: leaf.start) - 1
    at = min(pos, full[k].end - 1) if k >= 0 else stop
    return (full[k], at - full[k].start) if at > stop else None


def _char_span(doc: Doc[Any], leaf: Leaf, index: int, state: bytes) -> tuple[int, int, int]:
    """The client, first clock and clock length of one character (by deleting it from `doc`, a
    scratch copy of `state`)."""
    byte = len(leaf.text[:index].encode())  # pycrdt edits text by UTF-8 bytes
    width = len(leaf.text[index].encode())
    update = _captured(doc, lambda txn: leaf.node.remove_range(txn, byte, width))
    deletes = scan_update(update, STATE_LIMITS).deletes
    units = len(leaf.text[index].encode("utf-16-le")) // 2  # its clock length
    if len(deletes) == 1 and deletes[0][2] == units:
        return deletes[0]
    # Deleting a character also deletes the format markers around it that became redundant
    # (Yjs cleanupFormattingGap): the delete set, sorted by client and merging adjacent clocks,
    # holds those too. The character is the unit that counts towards the text; a format marker
    # does not, so a position on it has the same index whatever its assoc.
    with _load(state).transaction() as txn:
        for client, clock, length in deletes:
            for unit in range(clock, clock + length):
                after = StickyIndex.decode(_position((client, unit), 0)).get_index(txn)
                before = StickyIndex.decode(_position((client, unit), -1)).get_index(txn)
                if before != after:
                    return client, unit, units
    raise AnchorError("no character in the delete set")  # pragma: no cover: Yjs deleted it


def _end_of(state: bytes, field: str, leaf: Leaf, item: ID) -> str:
    """Yjs' position at the end of the leaf holding `item` (assoc 0): by the id of its type, or
    the root's name for a body of one Y.Text; "" if that type has no id (not TipTap's)."""
    encoder = Encoder()
    if isinstance(leaf.node, YText):
        encoder.write_var_uint(1)  # a root type, by name
        encoder.write_var_string(field)
    else:
        parent = _ParentMap(scan_update(state, STATE_LIMITS)).parent(item)
        if parent is None:
            return ""
        encoder.write_var_uint(2)  # a type item, by id
        encoder.write_var_uint(parent[0])
        encoder.write_var_uint(parent[1])
    return base64.b64encode(encoder.to_bytes() + bytes([0])).decode()  # assoc 0


def _b64(item: ID, assoc: int) -> str:
    return base64.b64encode(_position(item, assoc)).decode()


def _position(item: ID, assoc: int) -> bytes:
    """Yjs' encodeRelativePosition of a position on `item`."""
    encoder = Encoder()
    encoder.write_var_uint(0)  # a position relative to an item
    encoder.write_var_uint(item[0])
    encoder.write_var_uint(item[1])
    # lib0 writeVarInt of 0 or -1: one byte, sign in bit 6.
    return encoder.to_bytes() + bytes([0x41 if assoc < 0 else 0])


# -- anchor -> offsets -----------------------------------------------------------------------


class Resolver:
    """Resolves many anchors against one document state, a Yjs update of the whole document
    (one scan, one walk). It builds its own documents from it, so it may run in a worker
    thread while the event loop changes the live one."""

    def __init__(self, state: bytes, field: str) -> None:
        self._field = field
        self._doc = _load(state)
        scratch = _load(state)  # gets a character at the start of each leaf (_leaf_ids)
        self._body = leaves(scratch, field)
        self._runs = self._body.runs
        # The doc's own encoding: its structs are the blocks _offset measures from.
        self._parents = _ParentMap(scan_update(self._doc.get_update(), STATE_LIMITS))
        self._flat = bool(self._runs) and isinstance(self._runs[0].node, YText)
        self._owner = {} if self._flat or not self._runs else self._leaf_ids(scratch)
        self._runs_by_origin: dict[int, _OriginRuns] | None = None

    @cached_property
    def text(self) -> str:
        """The text the offsets count in, line breaks after its last character included; rendered
        once."""
        return self._body.text()

    def resolve(self, anchor: Anchor) -> Resolved:
        start, end = self._restored(anchor.start), self._restored(anchor.end)
        if (start, end) != (anchor.start, anchor.end):
            # Text typed just before a character has it as right origin, as a copy has: taken
            # for restored only when it reads as the quote (README "Comments").
            where = self._resolve(anchor, start, end)
            if not where.detached and self._quoted(anchor.quote, where):
                return where
            if self._deleted(anchor.start) and self._deleted(anchor.end):
                # Copies lie among its deleted characters (an edited text's undo, several
                # items): their offsets would span copies, not its text. Detached.
                return Resolved(None, None)
        if self._deleted(anchor.start) and self._deleted(anchor.end) and self._gone(anchor):
            # Both in paragraphs that are gone (deleted whole: their content garbage-collected,
            # which parent they had is not known): the quote in a restored paragraph.
            found = self._reparented(anchor.quote)
            if found is not None:
                return found
        return self._resolve(anchor, anchor.start, anchor.end)

    def _gone(self, anchor: Anchor) -> bool:
        """Whether neither end's character is in a paragraph of the letter."""
        items = _item_or_none(anchor.start), _item_or_none(anchor.end)
        return all(item is not None and self._leaf_of(item) is None for item in items)

    def _reparented(self, quote: str) -> Resolved | None:
        """Where the quote is in the restored paragraphs (README "Comments"): undoing the
        deletion of whole paragraphs puts back copies of their elements, holding copies of
        their text. Only a whole quote (not cut at QUOTE_MAX) within one paragraph, found once
        in them: else which text it was is not known (detached)."""
        if not quote or len(quote) >= QUOTE_MAX or "\n" in quote:
            return None
        copied = self._copied
        found = None
        at = copied.text.find(quote)
        while at >= 0:
            k = bisect.bisect_right(copied.starts, at) - 1
            leaf, unsure = copied.leaves[k]
            if not unsure or self._is_copy(k, unsure):
                if found is not None:
                    return None
                found = leaf.start + at - copied.starts[k]
            at = copied.text.find(quote, at + 1)
        return None if found is None else Resolved(found, found + len(quote))

    @cached_property
    def _copied(self) -> "_Copied":
        """The leaves in an element UndoManager restored: one (or its ancestor) whose right
        origin is a deleted item, as a copy's is the element it copies (web: `copiedTexts`).
        With the (item, origin) pairs to look at when that is not sure (none: it is): an item
        with one origin may have it on its left (`_before`, only for a leaf with the quote)."""
        leaves = []
        for own, leaf in self._owner.items():
            unsure = self._copy_origins(own)
            if unsure is not None:
                leaves.append((leaf, unsure))
        starts = [0]
        for leaf, _ in leaves:
            starts.append(starts[-1] + len(leaf.text) + 1)
        # Joined by line breaks, which no quote searched for holds: one search for all.
        return _Copied(leaves, starts, "\n".join(leaf.text for leaf, _ in leaves), {})

    def _copy_origins(self, item: ID | None) -> tuple[tuple[ID, ID], ...] | None:
        """Of a leaf: () if it is in a restored element, the (item, origin) pairs that tell if
        it may be, None if not."""
        unsure: list[tuple[ID, ID]] = []
        while item is not None:
            origin = self._parents.origin(item)
            if origin is not None and self._parents.deleted(origin[0]):
                if origin[1]:
                    return ()
                unsure.append((item, origin[0]))
            item = self._parents.parent(item)
        return tuple(unsure) if unsure else None

    def _is_copy(self, k: int, unsure: tuple[tuple[ID, ID], ...]) -> bool:
        known = self._copied.sure.get(k)
        if known is None:
            known = self._copied.sure[k] = any(self._before(*pair) for pair in unsure)
        return known

    def _before(self, item: ID, other: ID) -> bool:
        """Whether `item` precedes `other` in their parent (so `other` is its right origin, not
        its left one): by their indexes there, `other` deleted."""
        with self._doc.transaction() as txn:
            try:
                mine = StickyIndex.decode(_position(item, 0)).get_index(txn)
                theirs = StickyIndex.decode(_position(other, 0)).get_index(txn)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException:  # pycrdt panics derive from BaseException
                return False
        return mine < theirs

    def _resolve(self, anchor: Anchor, start: str, end: str) -> Resolved:
        # Text retyped in place of the last character went in after it, up to `after`. Not once
        # the first is gone too: the range's text was replaced whole, and it stays detached.
        if anchor.after and self._deleted(end) and not self._deleted(start):
            moved = self.after(anchor.after)
            if moved is not None:
                return Resolved(self._offset(start), moved, open_end=True)
        return Resolved(self._offset(start), self._offset(end))

    def _quoted(self, quote: str, where: Resolved) -> bool:
        return quote_matches(self.text[where.start : where.end], quote)

    def _restored(self, encoded: str) -> str:
        """The position on the copy of its deleted character that Yjs' UndoManager put back
        (Yjs follows `item.redone`, which only the undoing client has): a redo and an undo
        again copy the copy. Unchanged if its character is not deleted or not restored."""
        try:
            r = Reader(base64.b64decode(encoded, validate=True))
            if r.uint() != 0:
                return encoded
            item, assoc = (r.uint(), r.uint()), r.signed()
        except ValueError:
            return encoded
        for _ in range(RESTORE_HOPS):
            if not self._parents.deleted(item):
                return _b64(item, assoc)
            copy = self._copy_of(item)
            if copy is None:
                break
            item = copy
        return encoded

    def _copy_of(self, item: ID) -> ID | None:
        """The character restored in place of deleted `item` (README "Comments"): Yjs'
        UndoManager inserts a copy of each deleted item T just before it, T's first character
        its right origin. Of the runs (an item, later split) whose right origin is on T and
        that cover `item`, one whose end, T's first character and `item` are at one offset
        (only deleted text between: nothing typed in between since); the latest T first."""
        if self._runs_by_origin is None:
            self._runs_by_origin = _restore_runs(self._parents.scan)
        here = self._offset(_b64(item, 0))
        if here is None:
            return None
        runs = self._runs_by_origin.get(item[0])
        if runs is None:
            return None
        # Sorted by T's clock: those at or below `item`, down to where no run can reach it.
        for k in range(bisect.bisect_right(runs.clocks, item[1]) - 1, -1, -1):
            t, client, r0, length = runs.runs[k]
            if item[1] - t >= runs.longest:
                break
            if item[1] - t >= length:
                continue
            if (
                self._offset(_b64((item[0], t), 0)) == here
                and self._offset(_b64((client, r0 + length - 1), -1)) == here
            ):
                return client, r0 + item[1] - t
        return None

    def after(self, encoded: str) -> int | None:
        """Where an `Anchor.after` is: a position on an item, or at the end of a type."""
        try:
            r = Reader(base64.b64decode(encoded, validate=True))
            kind = r.uint()
            if kind == 0:
                return self._offset(encoded)
            if kind == 1:  # a root type by name: only the body of one Y.Text is a leaf
                name = r.string()
                leaf = self._runs[0] if self._flat and name == self._field else None
            elif kind == 2:
                leaf = None if self._flat else self._owner.get((r.uint(), r.uint()))
            else:
                return None
            assoc = r.signed()
            r.expect_end()
        except ValueError:  # not base64, or not a relative position (ProtocolError)
            return None
        if leaf is None:
            return None
        return leaf.end if assoc >= 0 else leaf.start

    def _deleted(self, encoded: str) -> bool:
        try:
            item = _item_of(base64.b64decode(encoded, validate=True))
        except ValueError:
            return False
        return self._parents.deleted(item)

    def _offset(self, encoded: str) -> int | None:
        try:
            raw = base64.b64decode(encoded, validate=True)
            item = _item_of(raw)
            first = self._parents.first_clock(item)
            if first is None:
                return None
            with self._doc.transaction() as txn:
                index = StickyIndex.decode(raw).get_index(txn)
                before = StickyIndex.decode(_position((item[0], first), 0)).get_index(txn)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:
            # Not decodable, or its type is gone (pycrdt panics derive from BaseException).
            return None
        leaf = self._leaf_of(item)
        if leaf is None:
            return None
        # pycrdt counts the text left of the item holding the position in UTF-8 bytes (its
        # documents' offset kind) but the distance into that item in UTF-16 units (Yjs clocks).
        # `before` is the former alone: the same count at the item's first clock.
        return leaf.start + _code_points(leaf.text, before, index - before)

    def _leaf_of(self, item: ID) -> Leaf | None:
        if self._flat:  # the body is one Y.Text: every item of it is in the only leaf
            return self._runs[0] if self._parents.known(item) else None
        parent = self._parents.parent(item)
        return None if parent is None else self._owner.get(parent)

    def _leaf_ids(self, scratch: Doc[Any]) -> dict[ID, Leaf]:
        """Each leaf's own item id. One transaction puts a character at the start of every leaf
        of the scratch copy: the k-th (clock k of the copy's own client) has that leaf's
        Y.XmlText as its parent, or an item of it as its right origin."""

        def mark(txn: YTransaction) -> None:
            for leaf in self._runs:
                leaf.node.insert(txn, 0, "x")

        scan = scan_update(_captured(scratch, mark), STATE_LIMITS)
        out: dict[ID, Leaf] = {}
        for i, clock in enumerate(scan.start):
            owner = self._owner_of(scan, i)
            if (
                scan.client[i] == scratch.client_id
                and clock < len(self._runs)
                and owner is not None
            ):
                out[owner] = self._runs[clock]
        return out

    def _owner_of(self, scan: UpdateScan, i: int) -> ID | None:
        kind, ref = scan.ref_kind[i], (scan.ref_client[i], scan.ref_clock[i])
        if kind == REF_PARENT:
            return ref
        if kind == REF_ORIGIN:
            return self._parents.parent(ref)
        return None


def resolve_all(state: bytes, field: str, anchors: list[Anchor]) -> list[Resolved]:
    """Where each anchor is in the text of `state` (for a worker thread: see Resolver)."""
    if not anchors:
        return []
    resolver = Resolver(state, field)
    return [resolver.resolve(anchor) for anchor in anchors]


def with_quote(
    state: bytes, field: str, start: str, end: str, after: str = ""
) -> tuple[Anchor, Resolved]:
    """A client's anchor (Yjs relative positions) with the quote of the text it covers in
    `state`, and where it is; AnchorError when it resolves to no text of it, or its `after`
    (optional) not to where it ends."""
    resolver = Resolver(state, field)
    where = resolver.resolve(Anchor(start=start, end=end, after=after))
    if where.detached or where.start is None or where.end is None:
        raise AnchorError("anchor does not resolve to text of this letter")
    # On the range's last character (its `end`), `after` resolves to the same offset, but would
    # not move past text retyped there: it must name the character after the range.
    own = _item_or_none(end)  # an item: `where` resolved
    if after and (
        (own is not None and _item_or_none(after) == own) or resolver.after(after) != where.end
    ):
        raise AnchorError("anchor's after is not at the first character after its range")
    text = quote(resolver.text, where.start, where.end)
    return Anchor(start=start, end=end, after=after, quote=text), where


def version(doc: Doc[Any]) -> bytes:
    """What tells one content of a document from another, cheaply (its items are not encoded):
    a digest of its state vector and its delete set, which a deletion changes alone."""
    vector = doc.get_state()
    return hashlib.blake2b(vector + doc.get_update(vector), digest_size=16).digest()


def _code_points(text: str, utf8: int, utf16: int) -> int:
    """How many code points of `text` its first `utf8` bytes and then `utf16` UTF-16 units
    span (a unit count ending inside a character stops before it)."""
    head = utf8 if text.isascii() else len(text.encode()[:utf8].decode(errors="ignore"))
    rest = text[head : head + utf16].encode("utf-16-le")[: 2 * utf16]
    return head + len(rest.decode("utf-16-le", errors="ignore"))


def _item_or_none(encoded: str) -> ID | None:
    """The item a position is on; None for another kind (the end of a type) or none at all."""
    try:
        return _item_of(base64.b64decode(encoded, validate=True))
    except ValueError:
        return None


def _item_of(raw: bytes) -> ID:
    r = Reader(raw)
    if r.uint() != 0:
        raise ValueError("only item-relative positions are supported")
    return r.uint(), r.uint()


class _ParentMap:
    """Which shared type each item belongs to, from a scan of the full document state."""

    def __init__(self, scan: UpdateScan) -> None:
        self._scan = scan
        self._by_client: dict[int, list[tuple[int, int]]] = {}  # client -> [(start, struct)]
        for i, client in enumerate(scan.client):
            self._by_client.setdefault(client, []).append((scan.start[i], i))
        self._memo: dict[int, ID | None] = {}
        self._deletes: dict[int, list[tuple[int, int]]] = {}  # client -> sorted [(clock, end)]
        for client, clock, length in scan.deletes:
            self._deletes.setdefault(client, []).append((clock, clock + length))
        for ranges in self._deletes.values():
            ranges.sort()

    @property
    def scan(self) -> UpdateScan:
        return self._scan

    def deleted(self, item: ID) -> bool:
        """Whether the document's delete set holds `item`."""
        ranges = self._deletes.get(item[0], [])
        i = bisect.bisect_right(ranges, item[1], key=lambda r: r[0]) - 1
        return i >= 0 and item[1] < ranges[i][1]

    def _struct(self, item: ID) -> int | None:
        rows = self._by_client.get(item[0], [])
        lo, hi = 0, len(rows)
        while lo < hi:  # the last struct starting at or before the clock
            mid = (lo + hi) // 2
            if rows[mid][0] <= item[1]:
                lo = mid + 1
            else:
                hi = mid
        if lo == 0:
            return None
        i = rows[lo - 1][1]
        return i if item[1] < self._scan.start[i] + self._scan.length[i] else None

    def origin(self, item: ID) -> tuple[ID, bool] | None:
        """The item's right origin and True when it has both; its only origin (left or right:
        the scan does not tell) and False; None without one."""
        i = self._struct(item)
        if i is None:
            return None
        if i in self._scan.right:
            return self._scan.right[i], True
        if self._scan.ref_kind[i] == REF_ORIGIN:
            return (self._scan.ref_client[i], self._scan.ref_clock[i]), False
        return None

    def known(self, item: ID) -> bool:
        return self._struct(item) is not None

    def first_clock(self, item: ID) -> int | None:
        """The first clock of the struct holding `item`."""
        i = self._struct(item)
        return None if i is None else self._scan.start[i]

    def parent(self, item: ID) -> ID | None:
        """The id of the type item containing `item` (None: a root, or unknown)."""
        chain: list[int] = []
        i = self._struct(item)
        result: ID | None = None
        while i is not None and i not in self._memo:
            chain.append(i)
            kind = self._scan.ref_kind[i]
            ref = (self._scan.ref_client[i], self._scan.ref_clock[i])
            if kind == REF_PARENT:
                result, i = ref, None
            elif kind == REF_ORIGIN:
                left = self._struct(ref)
                i = self._struct(self._scan.right.get(i, (-1, -1))) if left is None else left
            else:
                i = None
        if i is not None:
            result = self._memo[i]
        for j in chain:
            self._memo[j] = result
        return result


def quote_matches(text: str, quote: str) -> bool:
    """Whether a restored range's text reads as the thread's quote (web: anchors.ts
    `quoteMatches`): it begins with the quote's first character, holds the quote's characters in
    order (text typed into the restored text since stays in it) and, when the quote is not cut
    at QUOTE_MAX, ends with its last one. An empty quote (an anchor being posted) matches."""
    if not quote:
        return True
    if not text or text[0] != quote[0] or (len(quote) < QUOTE_MAX and text[-1] != quote[-1]):
        return False
    rest = iter(text)
    return all(c in rest for c in quote)  # a subsequence: `in` consumes the iterator


@dataclass(frozen=True, slots=True)
class _Copied:
    """Resolver's restored leaves, each with its origins to check (see `Resolver._copied`);
    where each starts in their texts joined by line breaks; which unsure ones are copies."""

    leaves: list[tuple[Leaf, tuple[tuple[ID, ID], ...]]]
    starts: list[int]
    text: str
    sure: dict[int, bool]


@dataclass(frozen=True, slots=True)
class _OriginRuns:
    """Candidate copies on one client's items: (T's clock, client, first clock, length),
    sorted; their T clocks apart, for bisect; the longest run's length bounds the scan down."""

    runs: list[tuple[int, int, int, int]]
    clocks: list[int]
    longest: int


def _restore_runs(scan: UpdateScan) -> dict[int, _OriginRuns]:
    """Candidate restored copies by the client of their right origin: sorted (right origin's
    clock, client, first clock, length), an item's pieces (consecutive clocks, one right origin)
    joined. An item with one origin is read as a right one: _copy_of's offsets reject a left."""
    pieces: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
    for i, client in enumerate(scan.client):
        if scan.kind[i] in (GC, SKIP):
            continue
        right = scan.right.get(i)
        if right is None and scan.ref_kind[i] == REF_ORIGIN:
            right = scan.ref_client[i], scan.ref_clock[i]
        if right is not None:
            pieces.setdefault((*right, client), []).append((scan.start[i], scan.length[i]))
    out: dict[int, list[tuple[int, int, int, int]]] = {}
    for (origin, t, client), spans in pieces.items():
        spans.sort()
        runs = out.setdefault(origin, [])
        r0 = end = spans[0][0]
        for start, length in spans:
            if start != end:  # a gap: the run so far is one item
                runs.append((t, client, r0, end - r0))
                r0 = start
            end = start + length
        runs.append((t, client, r0, end - r0))
    result = {}
    for origin, runs in out.items():
        runs.sort()
        result[origin] = _OriginRuns(runs, [r[0] for r in runs], max(r[3] for r in runs))
    return result


def _load(state: bytes) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    doc.apply_update(state)
    return doc


def _captured(doc: Doc[Any], change: Callable[[YTransaction], None]) -> bytes:
    """The update of one transaction running `change`."""
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(event.update))
    try:
        with doc.transaction() as transaction:
            change(raw_transaction(transaction))
    finally:
        doc.unobserve(subscription)
    return updates[0]
