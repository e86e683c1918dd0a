"""A bound on what an update costs pycrdt in item splits, computed before it is applied.

Yrs keeps consecutive inserts of one client as ONE item (typing a paragraph, a paste), and
every insert or deletion boundary inside an existing item splits it: the split walks the
item's string to the UTF-16 offset, and inserts the new block into its client's block list (a
Vec: every later block of that client moves). Measured: one update inserting a character at
20,000 places of a 1,000,000-character paragraph held the event loop 24 s (docs/security.md,
"Item splits").

So each distinct cut of an update weighs a bound on the cut item's length plus its client's
block count, and the sum is bounded (`Limits.max_split_cost`). Per client (`ClientItems`): the
longest run of structs that Yrs could have squashed into one item (each continuing the last,
its left origin the clock before it), and the blocks it may hold (every struct and every cut
counted, as if nothing were squashed; exact again when a letter reloads from its stored state);
never more than its clock count (blocks partition a client's clocks). Cuts that cannot split
anything weigh nothing: at a client's first or last clock, where the letter's clocks end
(typing after one's own last character), and at the edges of the update's own structs.
Structs the letter already has in whole are skipped: Yrs does not integrate them again; delete
ranges it has deleted already, which every sync step 2 repeats, are left out before (strip.py).
Deletions of clocks neither the letter nor the update has are left out or refused before this
weighs them (gateway/wire/strip.py, `clock_gap`): past a client's end they would weigh nothing,
and Yrs keeps them pending and splits the structs that bring those clocks at each.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, replace

from .update import GC, REF_ORIGIN, SKIP, UpdateScan


@dataclass(frozen=True, slots=True)
class ClientItems:
    """Upper bounds on one client's items in Yrs."""

    chain: int = 0  # clocks a struct continuing the client's last one would be squashed with
    longest: int = 0  # the longest item it may hold
    blocks: int = 0  # the blocks it may hold


ItemsOf = Callable[[int], ClientItems]


def split_cost(
    scan: UpdateScan,
    known_clock: Callable[[int], int],
    items_of: ItemsOf,
) -> tuple[int, dict[int, ClientItems]]:
    """The update's split cost in clocks, and the bounds of the clients it changes, after it."""
    after = {
        c: _grown(scan, i0, i1, known_clock(c), items_of(c)) for c, _f, _e, i0, i1 in scan.blocks
    }
    # Where each client's clocks end after the update, and the letter's own end for it.
    ends = {client: end for client, _first, end, _i0, _i1 in scan.blocks}
    spans = {client: (first, i0, i1) for client, first, _end, i0, i1 in scan.blocks}
    known: dict[int, int] = {}
    counts: dict[int, int] = {}
    for client, x in _cuts(scan, known_clock):
        k = known.get(client)
        if k is None:
            k = known[client] = known_clock(client)
        if x <= 0 or x == k or x >= max(k, ends.get(client, 0)):
            continue
        # Free at an edge of the update's own NEW structs only: Skips or repeats over clocks the
        # letter has would put edges at every cut.
        if x > k and _edge(scan, spans.get(client), x):
            continue
        counts[client] = counts.get(client, 0) + 1
    cost = 0
    for client, n in counts.items():
        items = after.get(client) or items_of(client)
        items = after[client] = replace(items, blocks=items.blocks + n)
        end = max(known[client], ends.get(client, 0))
        cost += n * min(end, items.longest + items.blocks)
    return cost, after


def _grown(scan: UpdateScan, i0: int, i1: int, known: int, items: ClientItems) -> ClientItems:
    """`items` after the structs scan[i0:i1] of its client (new clocks only)."""
    chain, longest, blocks = items.chain, items.longest, items.blocks
    for j in range(i0, i1):
        start, length, kind = scan.start[j], scan.length[j], scan.kind[j]
        if start + length <= known:
            continue  # the letter has it already
        if kind == SKIP:
            chain = 0  # clocks not carried: nothing squashes across them
            continue
        blocks += 1
        continues = start < known or (  # only its tail is new: it continues the known
            kind != GC
            and scan.ref_kind[j] == REF_ORIGIN
            and j not in scan.right_only
            and scan.ref_client[j] == scan.client[j]
            and scan.ref_clock[j] == start - 1
        )
        chain = chain + length if continues else length
        longest = max(longest, chain)
        known = start + length
    return ClientItems(chain, longest, blocks)


def _cuts(scan: UpdateScan, known_clock: Callable[[int], int]) -> set[tuple[int, int]]:
    """(client, clock) positions the update cuts at: between clock - 1 and clock."""
    cuts: set[tuple[int, int]] = set()
    kinds, right, right_only = scan.kind, scan.right, scan.right_only
    starts, lengths, ref_kinds = scan.start, scan.length, scan.ref_kind
    ref_clients, ref_clocks = scan.ref_client, scan.ref_clock
    for client, _first, _end, i0, i1 in scan.blocks:
        known = known_clock(client)
        for j in range(i0, i1):
            if kinds[j] == GC or kinds[j] == SKIP or ref_kinds[j] != REF_ORIGIN:
                continue
            if starts[j] + lengths[j] <= known:
                continue  # the letter has it already: not integrated again
            if j in right_only:  # the one reference is a right origin: cut before it
                cuts.add((ref_clients[j], ref_clocks[j]))
                continue
            cuts.add((ref_clients[j], ref_clocks[j] + 1))  # left origin: cut after it
            if j in right:
                cuts.add(right[j])
    for client, clock, length in scan.deletes:
        # Checked against a letter, none the letter has deleted already are left (strip.py: Yrs
        # skips them, 0.01 s for a delete set applied again against 0.35 s the first time).
        if length:
            cuts.add((client, clock))
            cuts.add((client, clock + length))
    return cuts


def _edge(scan: UpdateScan, span: tuple[int, int, int] | None, x: int) -> bool:
    """Whether `x` is the start or the end of one of the update's own structs of that client."""
    if span is None or x < span[0]:
        return False
    _first, i0, i1 = span
    j = bisect_right(scan.start, x, i0, i1) - 1
    return x == scan.start[j] or x == scan.start[j] + scan.length[j]
