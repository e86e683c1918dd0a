"""Shared-type nesting depth of every struct in an update, resolved iteratively.

An item's parent is a root type (depth 1), a type item named by id, or copied from its origins.
Yjs (Item.getMissing) takes the left origin's parent and drops the item if either neighbour is
garbage-collected; Yrs (update.rs) takes the left's parent, or the right's when the left is
gone. To hold under both, an item with origins gets the DEEPEST container of its live origins.
Depths are container depths: the depth of the type an item lives in; a type item's own depth is
its container depth + 1. DEAD items (next to or inside collected structs) deepen nothing.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from enum import Enum

from .limits import ProtocolError
from .update import DELETED, GC, REF_PARENT, REF_ROOT, SKIP, TYPE, UpdateScan

DEAD = 0
UNKNOWN = -3  # a struct whose references could not be resolved (trusted data only)
_PENDING, _IN_PROGRESS = -2, -1

# (client, clock) -> (container depth, struct kind), or None when not known.
KnownAt = Callable[[int, int], "tuple[int, int] | None"]


class Missing(Enum):
    """What a reference to an item neither known nor in the update means."""

    REFUSE = "refuse"  # checking against a DocShape: pycrdt would hold it pending; refuse
    BASE = "base"  # no DocShape: assume the shallowest parent, check depth within the update
    UNKNOWN = "unknown"  # trusted data: record the item as of unknown depth


def resolve(scan: UpdateScan, known_at: KnownAt | None, missing: Missing) -> list[int]:
    """Return the container depth of every struct in `scan` (linear; no recursion)."""
    codes = [_PENDING] * len(scan.start)
    block_of = {b[0]: (b[3], b[4]) for b in scan.blocks}
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
            else:
                targets = _targets(scan, j, known_at, block_of, codes)
                if isinstance(targets, int):  # an unresolved struct of this update, first
                    if codes[targets] == _IN_PROGRESS:
                        raise ProtocolError("reference_cycle", f"struct {targets}")
                    codes[j] = _IN_PROGRESS
                    stack.append(targets)
                    continue
                codes[j] = _derive(targets, scan.ref_kind[j], missing, scan, j)
            stack.pop()
    return codes


def _targets(
    scan: UpdateScan,
    j: int,
    known_at: KnownAt | None,
    block_of: dict[int, tuple[int, int]],
    codes: list[int],
) -> list[tuple[int, int] | None] | int:
    """(depth, kind) of each struct `j` refers to (None: missing), or a pending struct index."""
    refs = [(scan.ref_client[j], scan.ref_clock[j])]
    if j in scan.right:
        refs.append(scan.right[j])
    found: list[tuple[int, int] | None] = []
    for client, clock in refs:
        hit = None if known_at is None else known_at(client, clock)
        if hit is None:
            t = _find(scan, block_of.get(client), clock)
            if t is not None and scan.kind[t] != SKIP:
                if codes[t] < 0 and codes[t] != UNKNOWN:
                    return t
                hit = (codes[t], scan.kind[t])
        found.append(hit)
    return found


def _derive(
    targets: list[tuple[int, int] | None], ref_kind: int, missing: Missing, scan: UpdateScan, j: int
) -> int:
    if None in targets or any(t[0] == UNKNOWN for t in targets if t is not None):
        if missing is Missing.REFUSE:
            ref, struct = (scan.ref_client[j], scan.ref_clock[j]), (scan.client[j], scan.start[j])
            raise ProtocolError("missing_dependency", f"struct {j} refers to {ref}", struct=struct)
        if missing is Missing.UNKNOWN:
            return UNKNOWN
        targets = [(1, TYPE) if t is None else t for t in targets]  # shallowest assumption
    if ref_kind == REF_PARENT:
        depth, kind = targets[0]  # type: ignore[misc]
        if kind == TYPE:
            return DEAD if depth == DEAD else depth + 1
        if kind == DELETED or kind == GC:  # a deleted or collected parent: the item is dropped
            return DEAD
        if missing is Missing.UNKNOWN:  # trusted data is recorded, never refused
            return UNKNOWN
        raise ProtocolError("invalid_parent", f"struct {j}: the parent is not a shared type")
    live = [t[0] for t in targets if t is not None and t[1] != GC and t[0] != DEAD]
    return max(live) if live else DEAD


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
