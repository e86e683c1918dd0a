"""The Yjs part of the fold: merge a batch of updates into a letter's state, and note who edited
which paragraph. Pure.

The state is always the result of ONE apply of the merged batch: the gateway relays an update
only after its append succeeded, but a client that syncs while an append is in flight gets the
room's whole document, so an answer to an update can still reach the log before it (rarely), and
applying such updates one by one can drop the early one. Attribution (`touched`) is per update,
in log order, so it does not depend on where batch boundaries fall either (a backfill's large
batches attribute as live folds of one update do): the updates of a batch are applied one by
one on a scratch doc while a deep observer notes the top-level paragraph each change falls in,
and the last update to touch a paragraph names its editor. Decoding the state a second time for
that scratch doubled a live fold of a long letter, so the scratch is kept (`_Kept`, bounded) for
the letter's next fold when it ended as the document saved, and a long batch's head is applied
at once when its tail changes every paragraph the head did (`_attribute_tail`). Results never
depend on either (tests/projector/test_attribution_exact.py checks them against the older code).

The state saved carries the updates still pending on a missing dependency (`schemas.ystate`),
so the document does not depend on where batch boundaries fall. Whether it carries any is
returned too (`DocResult.clean`): the next fold of a clean state need not re-encode it to know.
"""

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc, Subscription, Text, XmlFragment, merge_updates

from schemas.quarantine import PASSTHROUGH
from schemas.ystate import (
    REFUSED,
    decode_vector,
    newlines,
    parts_to_keep,
    pending_parts,
    split_pending,
    with_pending,
)

log = logging.getLogger(__name__)
MERGE_CHUNK = 100
TAIL = 8  # updates of a long batch attributed one by one (`_attribute_tail`)
HEAD_BYTES = 128  # ...the rest at once if the state is under this many bytes per update of it
KEPT_BYTES = 4 << 20  # state bytes of the docs kept between folds (a doc takes 16-22x that:
# 65-95 MB of memory in all, measured)


@dataclass(frozen=True, slots=True)
class DocUpdate:
    offset: int
    user: str
    ts: int
    data: bytes


@dataclass
class DocResult:
    state: bytes
    refused: list[tuple[int, str]] = field(default_factory=list)  # (offset, why): poison
    touched: dict[int, tuple[str, int]] = field(default_factory=dict)  # paragraph -> (user, ts)
    clean: bool = False  # `state` carries nothing pending


def fold_document(
    state: bytes,
    updates: Sequence[DocUpdate],
    doc_field: str,
    clean: bool = False,
    *,
    attribute: bool = True,
) -> DocResult:
    """The new state bytes of `state` with `updates` applied. `clean`: `state` is known to carry
    nothing pending (the `DocResult.clean` of the fold that saved it). `attribute`: note who
    last touched each paragraph (`touched`, a scratch pass of the updates one by one); the tools
    that only want the state (replay, diff, verify) skip it.

    An update yrs decodes but cannot integrate (its RuntimeError: a bad record past the
    gateway) is refused as one it cannot decode is, and a pending part of `state` (or an update
    of the batch still pending) that makes a later update fail is dropped (refused), not that
    update: kept, it failed every later fold of the letter (`_apart`). A
    pyo3 panic is raised (the projector's quarantine isolates the record)."""
    try:
        return _fold(state, updates, doc_field, clean, attribute)
    except REFUSED as exc:  # decoded, but integrating it failed: find what
        return _apart(state, updates, doc_field, attribute, exc)


def _fold(
    state: bytes, updates: Sequence[DocUpdate], doc_field: str, clean: bool, attribute: bool
) -> DocResult:
    good, merged, refused = _merged(updates)
    result = DocResult(state, refused, clean=clean)
    if merged is None:
        return result
    doc: Doc[Any] = Doc()
    doc.apply_update(state)  # our own bytes: failing here is a bug, and it crashes the fold
    # A state that re-encodes to the same bytes has nothing pending (a clean one does): the
    # common case, cheaper than decoding it again to look for pending parts. Known clean, it is
    # not even re-encoded (about a tenth of a live fold of a long letter).
    applied = [merged] if clean or doc.get_update() == state else [state, merged]
    scratch = None
    if attribute:
        result.touched, scratch = _touched(doc, state, good, merged, doc_field)
    else:
        doc.apply_update(merged)
    parts = pending_parts(doc, applied)
    result.state, result.clean = with_pending(doc.get_update(), parts), not parts
    # One update applied to a kept scratch gives what it gives the doc (they held the same).
    if scratch is not None and result.clean and (len(good) == 1 or _same(scratch, doc)):
        _KEPT.keep(result.state, scratch)
    return result


def _touched(
    doc: Doc[Any], state: bytes, good: Sequence[DocUpdate], merged: bytes, doc_field: str
) -> tuple[dict[int, tuple[str, int]], Doc[Any] | None]:
    """Apply `merged` to `doc` (at `state`), noting who last touched each paragraph. Also the
    scratch doc of the pass one by one, if it applied every update (worth keeping)."""
    scratch = _KEPT.take(state)
    if len(good) > 1:  # per update: a scratch pass of them one by one
        if scratch is None:
            scratch = _decoded(state)
        attributed = _attribute_tail(scratch, good, doc_field, len(state))
        if attributed is None:  # the tail did not decide: one by one from the start
            scratch = _decoded(state)
            attributed = _attribute(scratch, good, doc_field)
        doc.apply_update(merged)
        touched, whole = attributed
        return touched, scratch if whole else None
    found: list[int] = []  # a single update is noted as it is applied
    root = doc.get(doc_field, type=XmlFragment)
    sub = _watch(doc, root, found, doc.get(doc_field, type=Text))
    try:
        doc.apply_update(merged)
    finally:
        sub.drop()
    if scratch is not None:  # kept from the last fold: bring it along for the next
        try:
            scratch.apply_update(merged)
        except PASSTHROUGH:
            raise
        except BaseException:  # (a pyo3 panic too): only a scratch, dropped
            scratch = None
    return {p: (good[0].user, good[0].ts) for p in found}, scratch


def _same(scratch: Doc[Any], doc: Doc[Any]) -> bool:
    """Whether the pass one by one gave the document the merged batch did: the same structs
    (state vector) and deletions. It may not (the module docstring: an update before the one it
    depends on), and then the scratch is not kept."""
    vector = doc.get_state()  # (encoded in hash order: compared decoded)
    if decode_vector(scratch.get_state()) != decode_vector(vector):
        return False
    return scratch.get_update(vector) == doc.get_update(vector)  # no structs: the deletions


class _Kept:
    """The docs of the last clean states folded, by those state bytes, least recent dropped
    first past `limit` bytes of state. A letter's next fold starts from its state, so it takes
    the doc instead of decoding the bytes again (a live fold of a long letter is mostly that
    decode). Only scratch docs are kept, and only when they hold what the saved state holds
    (`_same`; their blocks may be split otherwise, which only the encoding would show): the
    observer sees the same changes in them, and the state saved never comes from them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._docs: OrderedDict[bytes, Doc[Any]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()  # the tools fold in threads

    def take(self, state: bytes) -> Doc[Any] | None:
        with self._lock:
            doc = self._docs.pop(state, None)
            if doc is not None:
                self._size -= len(state)
            return doc

    def keep(self, state: bytes, doc: Doc[Any]) -> None:
        if len(state) > self.limit:
            return
        with self._lock:
            if self._docs.pop(state, None) is None:
                self._size += len(state)
            self._docs[state] = doc
            while self._size > self.limit:
                old, _ = self._docs.popitem(last=False)
                self._size -= len(old)

    def clear(self) -> None:
        with self._lock:
            self._docs.clear()
            self._size = 0


_KEPT = _Kept(KEPT_BYTES)


def _merge(updates: list[bytes]) -> bytes:
    """One update holding them all. Merged in a tree of chunks: pycrdt's merge of n updates
    at once costs O(n^2) (5,000 keystrokes: 113 ms flat, 5 ms in chunks of 100)."""
    while len(updates) > MERGE_CHUNK:
        updates = [
            merge_updates(*updates[i : i + MERGE_CHUNK])
            for i in range(0, len(updates), MERGE_CHUNK)
        ]
    return merge_updates(*updates)


def _merged(
    updates: Sequence[DocUpdate],
) -> tuple[list[DocUpdate], bytes | None, list[tuple[int, str]]]:
    """The valid updates, their merge (None: none valid) and the refused ones."""
    try:
        return list(updates), _merge([u.data for u in updates]), []
    except REFUSED:  # find the culprits
        pass
    good, refused = [], []
    for u in updates:
        try:
            merge_updates(u.data)
            good.append(u)
        except REFUSED as exc:
            refused.append((u.offset, f"pycrdt refused the update: {exc}"))
    merged = _merge([u.data for u in good]) if good else None
    return good, merged, refused


def _apart(
    state: bytes, updates: Sequence[DocUpdate], doc_field: str, attribute: bool, exc: BaseException
) -> DocResult:
    """The fold of a batch whose merged apply failed: `state`'s pending parts, then each update
    applied after the ones before it. One that fails is tried on what is integrated alone (with
    the updates before it that are): failing there too, it is refused; else what failed is
    something pending before it, and of that only what cannot apply with it is left out
    (`parts_to_keep`: a pending update refused, a part of `state` dropped and logged). So a bad
    record that waits never costs a good one, wherever batches end. Then the fold of what is
    left (what fails still raises: the projector's quarantine isolates it)."""
    integrated, parts = split_pending(state)
    good, _, refused = _merged(updates)
    entries: list[DocUpdate | bytes] = [*parts]  # what is applied so far: parts, then updates
    doc = _decoded(with_pending(integrated, parts))
    for u in good:
        try:
            doc.apply_update(u.data)
            entries.append(u)
            continue
        except REFUSED as failed:  # it may have changed `doc` (a panic: raised)
            why = failed
        doc = _decoded(_merge([integrated, *map(_data, entries)]))  # as before it
        waiting = {i for i, e in enumerate(entries) if pending_parts(doc, [_data(e)])}
        settled = [_data(e) for i, e in enumerate(entries) if i not in waiting]
        kept = _keep(integrated, settled, [entries[i] for i in sorted(waiting)], u.data)
        if kept is None:
            refused.append((u.offset, f"pycrdt refused the update: {why}"))
            continue
        dropped = {i for i in waiting if all(k is not entries[i] for k in kept)}
        refused += [
            (e.offset, f"it cannot apply with a later update: {why}")
            for e in (entries[i] for i in dropped)
            if isinstance(e, DocUpdate)
        ]
        entries = [e for i, e in enumerate(entries) if i not in dropped] + [u]
        doc = _decoded(_merge([integrated, *map(_data, entries)]))
    left = [e for e in entries if isinstance(e, bytes)]
    if len(left) < len(parts):
        log.warning("dropped %d of %d pending parts: %r", len(parts) - len(left), len(parts), exc)
    accepted = [e for e in entries if isinstance(e, DocUpdate)]
    result = _fold(with_pending(integrated, left), accepted, doc_field, False, attribute)
    result.refused = sorted(refused + result.refused)
    return result


def _data(entry: DocUpdate | bytes) -> bytes:
    return entry if isinstance(entry, bytes) else entry.data


def _keep(
    integrated: bytes, settled: list[bytes], waiting: list[DocUpdate | bytes], update: bytes
) -> list[DocUpdate | bytes] | None:
    """Of `waiting` (applied, still pending), those that apply with `update` after `settled`;
    None if `update` fails without any of them (its own fault)."""
    base = _merge([integrated, *settled])
    if _applied(base, [], update) is None:
        return None
    kept = parts_to_keep([_data(e) for e in waiting], lambda some: _applied(base, some, update))
    return [e for e in waiting if any(_data(e) is k for k in kept)]


def _applied(state: bytes, parts: list[bytes], update: bytes) -> Doc[Any] | None:
    """The document of `state`, `parts` and then `update`, None if that fails."""
    doc: Doc[Any] = Doc()
    try:
        doc.apply_update(with_pending(state, parts))
        doc.apply_update(update)
    except PASSTHROUGH:
        raise
    except BaseException:  # its ValueError, RuntimeError or a pyo3 panic
        return None
    return doc


def _decoded(state: bytes) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    doc.apply_update(state)
    return doc


def _attribute_tail(
    scratch: Doc[Any], updates: Sequence[DocUpdate], doc_field: str, size: int
) -> tuple[dict[int, tuple[str, int]], bool] | None:
    """`_attribute`, the head of a long batch applied in one transaction and only its last
    `TAIL` updates one by one (a transaction and an observer call per update are most of a
    catch-up's fold). Exact when every paragraph the head changed, all inside paragraphs, is
    changed again by the tail: what the head's updates noted one by one would be overwritten.
    None when that is not so (`scratch` is then spent, and the state of `size` bytes is decoded
    again: tried only where that costs less than the head would save, at about even odds)."""
    if len(updates) <= TAIL + 1 or size > HEAD_BYTES * (len(updates) - TAIL):
        return _attribute(scratch, updates, doc_field)
    root = scratch.get(doc_field, type=XmlFragment)  # (a Y.Text body changes the root: None)
    head, tail = updates[:-TAIL], updates[-TAIL:]
    found: list[int] = []
    inside = [True]  # no change to the root itself (paragraphs added, removed: indices move)

    def on_events(events: list[Any]) -> None:
        for event in events:
            path = event.path
            if path and type(path[0]) is int:
                found.append(path[0])
            else:
                inside[0] = False

    sub: Subscription = root.integrated.observe_deep(on_events)
    try:
        with scratch.transaction():
            for u in head:
                scratch.apply_update(u.data)
    except PASSTHROUGH:
        raise
    except BaseException:  # refused (or a pyo3 panic): the pass one by one sorts it out
        return None
    finally:
        sub.drop()
    if not inside[0]:
        return None
    touched, whole = _attribute(scratch, tail, doc_field)
    return (touched, whole) if touched.keys() >= set(found) else None


def _attribute(
    scratch: Doc[Any], updates: Sequence[DocUpdate], doc_field: str
) -> tuple[dict[int, tuple[str, int]], bool]:
    """Paragraph -> (user, ts) of the last update (in log order) that changed it, as folding
    the updates one at a time would note them, applying them to `scratch` (at the fold's state).
    Also whether every update applied."""
    root = scratch.get(doc_field, type=XmlFragment)
    touched: dict[int, tuple[str, int]] = {}
    found: list[int] = []
    whole = True
    sub = _watch(scratch, root, found, scratch.get(doc_field, type=Text))
    try:
        for u in updates:
            found.clear()
            try:
                scratch.apply_update(u.data)
            except ValueError:
                whole = False
                continue  # no attribution for it; the state comes from the merged batch
            except PASSTHROUGH:
                raise
            except BaseException:  # pyo3's PanicException: the scratch doc is not to be trusted
                return touched, False  # after it, so the rest goes unattributed
            for p in found:
                touched[p] = (u.user, u.ts)
    finally:
        sub.drop()
    return touched, whole


def _watch(doc: Doc[Any], root: XmlFragment, into: list[int], body: Text) -> Subscription:
    """Note the paragraphs each transaction changes into `into`. Subscribed on the native type:
    pycrdt's wrapper converts every attribute of every event (most of a backfill's fold time);
    we read only `path` and `delta`. `body`: the root read as a Y.Text (got before, as an
    observer cannot), which keeps the astral characters a fragment's reading loses."""

    xml = [False]  # once it has an XML child, a root is never a Y.Text body: no more looking

    def on_events(events: list[Any]) -> None:
        # The common case, changes inside paragraphs, needs only the paths: no wrapper for the
        # transaction, which reading the root (its own changes) needs.
        paths = [event.path for event in events]
        if all(path and type(path[0]) is int for path in paths):
            into.extend(path[0] for path in paths)
            return
        with doc._read_transaction(events[0].transaction):
            into.extend(_paragraphs(events, root, body, xml))

    subscription: Subscription = root.integrated.observe_deep(on_events)
    return subscription


def _paragraphs(events: Sequence[Any], root: XmlFragment, body: Text, xml: list[bool]) -> list[int]:
    """Top-level paragraph indices a batch of deep events changed. `xml[0]`: the root is known
    to be an XML fragment (set here once seen)."""
    found: list[int] = []
    for event in events:
        path = event.path
        if path and isinstance(path[0], int):
            found.append(path[0])  # a change inside paragraph path[0]
            continue
        delta = event.delta
        spans = _delta_spans(delta)
        if _is_text(event, delta, root, body, xml):  # a Y.Text body: lines
            # Its delta counts UTF-16 units (Yjs' clocks): an astral character is two.
            units = str(body).encode("utf-16-le", "surrogatepass")
            line = _lines(units, [at for span in spans for at in span])
            spans = [(line[a], line[b] + 1) for a, b in spans]
        for start, end in spans:
            found += range(start, end)
    return found


def _delta_spans(delta: Sequence[dict[str, Any]]) -> list[tuple[int, int]]:
    """[start, end) of the children (or characters) a delta inserts, or where it deletes."""
    position, spans = 0, []
    for op in delta:
        if "retain" in op:
            position += int(op["retain"])
        elif "insert" in op:
            size = len(op["insert"])
            spans.append((position, position + max(size, 1)))
            position += size
        else:
            spans.append((position, position + 1))
    return spans


def _lines(units: bytes, offsets: list[int]) -> dict[int, int]:
    """The line of each UTF-16 unit offset in `units` (a text encoded UTF-16), in one pass: an
    update may change the body at thousands of places, and counting from its start for each
    was quadratic (10,000 changes in a 400 KB body: 4.4 s)."""
    lines: dict[int, int] = {}
    at = line = 0
    for offset in sorted(set(offsets)):
        line += newlines(units, at, offset)
        lines[offset] = line
        at = offset
    return lines


def _is_text(
    event: object, delta: Sequence[dict[str, Any]], root: XmlFragment, body: Text, xml: list[bool]
) -> bool:
    """A Y.Text body (read through an XmlFragment, its inserts are strings, not nodes, or
    nothing at all when they hold an astral character; it has characters but no children).
    Sets `xml[0]` when the root shows an XML child: looking walks every paragraph (a wrapper
    each), which once per top-level event made a batch of Enters quadratic."""
    if type(event).__name__ == "TextEvent":
        return True
    for op in delta:
        x = op.get("insert")
        if isinstance(x, str) or (isinstance(x, list) and x and isinstance(x[0], str)):
            return True
        if isinstance(x, list) and x:  # nodes: an XML letter
            xml[0] = True
            return False
    if xml[0]:
        return False
    if any(True for _ in root.children):
        xml[0] = True
        return False
    return bool(str(body))
