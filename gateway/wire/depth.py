"""Shared-type nesting depth of every struct in an update, resolved iteratively.

An item's parent is a root type (depth 1), a type item named by id, or copied from its origins.
Yjs (Item.getMissing) takes the left origin's parent and drops the item if either neighbour is
garbage-collected; Yrs (update.rs) takes the left's parent, or the right's when the left is
gone. To hold under both, an item with origins gets the DEEPEST container of its live origins.
Depths are container depths: the depth of the type an item lives in; a type item's own depth is
its container depth + 1. DEAD items (next to or inside collected structs) deepen nothing.

Resolved the same way, each struct's slot: what kind of parent it is a child of (attributes,
items with a map key, are children of no slot). y-tiptap throws on content it does not expect
there (`el.toArray is not a function` on a string under the letter's fragment), and the editor
runs that on every change: nobody could open the letter again. So content that does not fit its
slot is refused (`misplaced_content`); an item with origins fits the slot of each (Yjs takes the
left's parent, Yrs the right's when the left is collected).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from enum import Enum

from .limits import ProtocolError
from .update import (
    DELETED,
    GC,
    PARENT_SUB,
    REF_ORIGIN,
    REF_PARENT,
    REF_ROOT,
    SKIP,
    TYPE,
    TYPE_CONTENT,
    UpdateScan,
)

DEAD = 0
UNKNOWN = -3  # a struct whose references could not be resolved (trusted data only)
_PENDING, _IN_PROGRESS = -2, -1

# Slots: children of anything y-tiptap does not read (other roots, maps, attributes: FREE), of
# the letter's root (its doc field), of a Y.XmlElement, of a Y.XmlText.
FREE, ROOT, ELEMENT, XML_TEXT = 0, 1, 2, 3
_STRING, _EMBED, _FORMAT, _DELETED = 4, 5, 6, 1
_ELEMENT_TYPE, _TEXT_TYPE = TYPE_CONTENT + 3, TYPE_CONTENT + 6
# A TipTap letter's root, a Y.XmlFragment, holds elements only: ProseMirror's doc is `block+`,
# and y-tiptap cannot render a Y.XmlText there (it throws, shows an empty letter, and the next
# keystroke rewrites the letter without what it could not read).
XML_FAMILY = 1 << _ELEMENT_TYPE
TEXT_FAMILY = 1 << _STRING | 1 << _EMBED | 1 << _FORMAT  # a letter whose body is one Y.Text
# What content (code & 31, a bit each) each slot takes. y-prosemirror puts elements and texts
# under an element, text and formats (marks) in a text: an embed there is a text node it cannot
# make, and it deletes the whole Y.XmlText. Deleted content fits anywhere.
_FITS = (-1, XML_FAMILY | TEXT_FAMILY | 1 << _DELETED, XML_FAMILY | 1 << _TEXT_TYPE | 1 << _DELETED,
         1 << _STRING | 1 << _FORMAT | 1 << _DELETED)  # fmt: skip

# (client, clock) -> (container depth, struct kind, slot, slot of a type's children), or None.
Known = tuple[int, int, int, int]
KnownAt = Callable[[int, int], "Known | None"]


def children_slot(content: int) -> int:
    """The slot of the children (no map key) of a type item with this content code."""
    return ELEMENT if content == _ELEMENT_TYPE else XML_TEXT if content == _TEXT_TYPE else FREE


class Missing(Enum):
    """What a reference to an item neither known nor in the update means."""

    REFUSE = "refuse"  # checking against a DocShape: pycrdt would hold it pending; refuse
    BASE = "base"  # no DocShape: assume the shallowest parent, check depth within the update
    UNKNOWN = "unknown"  # trusted data: record the item as of unknown depth


# Read once: an Enum member's lookup on its class costs a keystroke's check 0.2 us each time.
_TRUSTED = Missing.UNKNOWN


def resolve(
    scan: UpdateScan, known_at: KnownAt | None, missing: Missing, doc_field: str | None = None
) -> tuple[list[int], list[int]]:
    """Return the container depth and the slot of every struct in `scan` (linear; no
    recursion), refusing content that does not fit its slot (unless `missing` is UNKNOWN)."""
    if known_at is not None and len(scan.start) == 1 and scan.ref_kind[0] == REF_ORIGIN:
        one = _resolve_one(scan, known_at, missing)
        if one is not None:
            return one
    return _resolve_all(scan, known_at, missing, doc_field)


def _resolve_all(
    scan: UpdateScan, known_at: KnownAt | None, missing: Missing, doc_field: str | None
) -> tuple[list[int], list[int]]:
    codes = [_PENDING] * len(scan.start)
    slots = [FREE] * len(codes)
    block_of: dict[int, tuple[int, int]] = {}  # client -> its struct indices (by _targets)
    check = missing is not _TRUSTED
    for i in range(len(codes)):
        if codes[i] != _PENDING:
            continue
        stack = [i]
        while stack:
            j = stack[-1]
            kind = scan.kind[j]
            if kind == GC or kind == SKIP:
                codes[j] = DEAD if kind == GC else UNKNOWN
            elif scan.ref_kind[j] == REF_ROOT:
                codes[j] = 1
                if doc_field is not None and scan.content[j] < PARENT_SUB:
                    if scan.roots[j] == doc_field:
                        slots[j] = _fit(ROOT, scan, j, check)
            else:
                targets = _targets(scan, j, known_at, block_of, codes, slots)
                if isinstance(targets, int):  # an unresolved struct of this update, first
                    if codes[targets] == _IN_PROGRESS:
                        raise ProtocolError("reference_cycle", f"struct {targets}")
                    codes[j] = _IN_PROGRESS
                    stack.append(targets)
                    continue
                codes[j] = _derive(targets, scan.ref_kind[j], missing, scan, j)
                if codes[j] != DEAD:
                    slots[j] = _slot(targets, scan, j, check)
            stack.pop()
    return codes, slots


def _resolve_one(
    scan: UpdateScan, known_at: KnownAt, missing: Missing
) -> tuple[list[int], list[int]] | None:
    """`resolve` for one item whose origins the letter knows (what an editor sends), without
    the general way's stack and lists; None when an origin is not known: the general way then
    looks in the update and says what is missing (tests/preparse/test_scan_one.py)."""
    left = known_at(scan.ref_client[0], scan.ref_clock[0])
    if left is None:
        return None
    right = scan.right.get(0)
    targets: list[Known | None] = [left]
    if right is not None:
        hit = known_at(*right)
        if hit is None:
            return None
        targets.append(hit)
    code = _derive(targets, REF_ORIGIN, missing, scan, 0)
    return [code], [FREE if code == DEAD else _slot(targets, scan, 0, missing is not _TRUSTED)]


def _slot(targets: list[Known | None], scan: UpdateScan, j: int, check: bool) -> int:
    content = scan.content[j]
    if scan.ref_kind[j] == REF_PARENT:  # a type (_derive checked), or missing (no DocShape)
        parent = targets[0]
        if parent is None or content >= PARENT_SUB:
            return FREE
        return _fit(parent[3], scan, j, check)
    slot = -1
    for t in targets:  # the origins: the left's slot is recorded, content must fit each
        if t is not None and t[1] != GC:
            fit = _fit(t[2], scan, j, check)
            slot = fit if slot < 0 else slot
    return FREE if slot < 0 else slot


def _fit(slot: int, scan: UpdateScan, j: int, check: bool) -> int:
    if check and not _FITS[slot] >> (scan.content[j] & 31) & 1:
        what = f"struct {j}: content {scan.content[j] & 31} under slot {slot}"
        raise ProtocolError("misplaced_content", what, struct=(scan.client[j], scan.start[j]))
    return slot


def _targets(
    scan: UpdateScan,
    j: int,
    known_at: KnownAt | None,
    block_of: dict[int, tuple[int, int]],
    codes: list[int],
    slots: list[int],
) -> list[Known | None] | int:
    """What `known_at` tells of each struct `j` refers to (None: missing), or a pending
    struct index."""
    right = scan.right.get(j)
    refs = ((scan.ref_client[j], scan.ref_clock[j]),) if right is None else (
        (scan.ref_client[j], scan.ref_clock[j]), right)  # fmt: skip
    found: list[Known | None] = []
    for client, clock in refs:
        hit = None if known_at is None else known_at(client, clock)
        if hit is None:
            if not block_of:  # built when first needed: most refer to what the letter has
                block_of.update((b[0], (b[3], b[4])) for b in scan.blocks)
            t = _find(scan, block_of.get(client), clock)
            if t is not None and scan.kind[t] != SKIP:
                if codes[t] < 0 and codes[t] != UNKNOWN:
                    return t
                hit = (codes[t], scan.kind[t], slots[t], children_slot(scan.content[t] & 31))
        found.append(hit)
    return found


def _derive(
    targets: list[Known | None], ref_kind: int, missing: Missing, scan: UpdateScan, j: int
) -> int:
    incomplete = False
    for t in targets:
        if t is None or t[0] == UNKNOWN:
            incomplete = True
            break
    if incomplete:
        if missing is Missing.REFUSE:
            ref, struct = (scan.ref_client[j], scan.ref_clock[j]), (scan.client[j], scan.start[j])
            raise ProtocolError("missing_dependency", f"struct {j} refers to {ref}", struct=struct)
        if missing is Missing.UNKNOWN:
            return UNKNOWN
        # The shallowest assumption; of no slot.
        targets = [(1, TYPE, FREE, FREE) if t is None else t for t in targets]
    if ref_kind == REF_PARENT:
        depth, kind, _slot, _children = targets[0]  # type: ignore[misc]
        if kind == TYPE:
            return DEAD if depth == DEAD else depth + 1
        if kind == DELETED or kind == GC:  # a deleted or collected parent: the item is dropped
            return DEAD
        if missing is Missing.UNKNOWN:  # trusted data is recorded, never refused
            return UNKNOWN
        raise ProtocolError("invalid_parent", f"struct {j}: the parent is not a shared type")
    deepest: int | None = None  # of the live ones (an UNKNOWN one without a DocShape too)
    for t in targets:
        if t is not None and t[1] != GC and t[0] != DEAD and (deepest is None or t[0] > deepest):
            deepest = t[0]
    return DEAD if deepest is None else deepest


def _find(scan: UpdateScan, span: tuple[int, int] | None, clock: int) -> int | None:
    if span is None:
        return None
    i0, i1 = span
    j = bisect_right(scan.start, clock, i0, i1) - 1
    if j < i0 or clock >= scan.start[j] + scan.length[j]:
        return None
    return j


def max_type_depth(scan: UpdateScan, codes: list[int]) -> int:
    """The deepest type item created by the update (0: none, or only of unknown depth)."""
    deepest = 0
    kinds = scan.kind
    for j, code in enumerate(codes):
        if kinds[j] == TYPE and code > 0 and code + 1 > deepest:
            deepest = code + 1
    return deepest
