"""Test oracle: projector/document.py as it was at 031ded0 (before PF2 made its attribution
cheaper). `fold_document` here must give results identical to the shipped one."""

from collections.abc import Sequence
from typing import Any

from pycrdt import Doc, Subscription, Text, XmlFragment, merge_updates

from projector.document import DocResult, DocUpdate
from schemas.quarantine import PASSTHROUGH
from schemas.ystate import newlines, pending_parts, with_pending

MERGE_CHUNK = 100


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
    that only want the state (replay, diff, verify) skip it."""
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
    if attribute:
        result.touched = _touched(doc, state, good, merged, doc_field)
    else:
        doc.apply_update(merged)
    parts = pending_parts(doc, applied)
    result.state, result.clean = with_pending(doc.get_update(), parts), not parts
    return result


def _touched(
    doc: Doc[Any], state: bytes, good: Sequence[DocUpdate], merged: bytes, doc_field: str
) -> dict[int, tuple[str, int]]:
    """Apply `merged` to `doc` (at `state`), noting who last touched each paragraph."""
    # Per update: a scratch pass of them one by one; a single one is noted as it is applied.
    touched = _attribute(state, good, doc_field) if len(good) > 1 else {}
    found: list[int] = []
    root = doc.get(doc_field, type=XmlFragment)
    sub = _watch(doc, root, found, doc.get(doc_field, type=Text))
    try:
        doc.apply_update(merged)
    finally:
        sub.drop()
    if len(good) == 1:
        touched = {p: (good[0].user, good[0].ts) for p in found}
    return touched


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
    except ValueError:
        pass
    good, refused = [], []
    for u in updates:  # find the culprits only when the batch as a whole is refused
        try:
            merge_updates(u.data)
            good.append(u)
        except ValueError as exc:
            refused.append((u.offset, f"pycrdt refused the update: {exc}"))
    merged = _merge([u.data for u in good]) if good else None
    return good, merged, refused


def _attribute(
    state: bytes, updates: Sequence[DocUpdate], doc_field: str
) -> dict[int, tuple[str, int]]:
    """Paragraph -> (user, ts) of the last update (in log order) that changed it, as folding
    the updates one at a time would note them."""
    scratch: Doc[Any] = Doc()
    scratch.apply_update(state)
    root = scratch.get(doc_field, type=XmlFragment)
    touched: dict[int, tuple[str, int]] = {}
    found: list[int] = []
    sub = _watch(scratch, root, found, scratch.get(doc_field, type=Text))
    try:
        for u in updates:
            found.clear()
            try:
                scratch.apply_update(u.data)
            except ValueError:
                continue  # no attribution for it; the state comes from the merged batch
            except PASSTHROUGH:
                raise
            except BaseException:  # pyo3's PanicException: the scratch doc is not to be trusted
                break  # after it, so the rest goes unattributed (the merged batch decides)
            touched.update({p: (u.user, u.ts) for p in found})
    finally:
        sub.drop()
    return touched


def _watch(doc: Doc[Any], root: XmlFragment, into: list[int], body: Text) -> Subscription:
    """Note the paragraphs each transaction changes into `into`. Subscribed on the native type:
    pycrdt's wrapper converts every attribute of every event (most of a backfill's fold time);
    we read only `path` and `delta`. `body`: the root read as a Y.Text (got before, as an
    observer cannot), which keeps the astral characters a fragment's reading loses."""

    xml = [False]  # once it has an XML child, a root is never a Y.Text body: no more looking

    def on_events(events: list[Any]) -> None:
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
