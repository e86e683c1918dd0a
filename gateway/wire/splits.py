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
from typing import NamedTuple

from .update import GC, REF_ORIGIN, SKIP, UpdateScan


class ClientItems(NamedTuple):
    """Upper bounds on one client's items in Yrs (a tuple: built for every update checked)."""

    chain: int = 0  # clocks a struct continuing the client's last one would be squashed with
    longest: int = 0  # the longest item it may hold
    blocks: int = 0  # the blocks it may hold


ItemsOf = Callable[[int], ClientItems]
# ClientItems((a, b, c)) without the class's own __new__ (a Python function: 10 times a tuple's).
_new_items = tuple.__new__
Cut = tuple[int, int]  # client, clock: between clock - 1 and clock
Span = tuple[int, int, int]  # a client's first clock in the update, its struct indices i0, i1


def split_cost(
    scan: UpdateScan,
    known_clock: Callable[[int], int],
    items_of: ItemsOf,
) -> tuple[int, dict[int, ClientItems]]:
    """The update's split cost in clocks, and the bounds of the clients it changes, after it."""
    if len(scan.blocks) <= 1:  # what an editor sends: one client's structs, a deletion or two
        if not scan.blocks and len(scan.deletes) == 1:
            return _one_range(scan.deletes[0], known_clock, items_of)
        return _one_client(scan, known_clock, items_of)
    return _any_clients(scan, known_clock, items_of)


def _any_clients(
    scan: UpdateScan, known_clock: Callable[[int], int], items_of: ItemsOf
) -> tuple[int, dict[int, ClientItems]]:
    """`split_cost` the general way: every cut collected, then weighed."""
    after = {
        c: _grown(scan, i0, i1, known_clock(c), items_of(c)) for c, _f, _e, i0, i1 in scan.blocks
    }
    # Where each client's clocks end after the update, and the letter's own end for it.
    ends = {client: end for client, _first, end, _i0, _i1 in scan.blocks}
    spans = {client: (first, i0, i1) for client, first, _end, i0, i1 in scan.blocks}
    return _count(scan, _cuts(scan, known_clock), known_clock, items_of, after, ends, spans)


def _one_client(
    scan: UpdateScan, known_clock: Callable[[int], int], items_of: ItemsOf
) -> tuple[int, dict[int, ClientItems]]:
    """`split_cost` of an update with structs of one client at most, without the sets and dicts
    of the general way: the cuts that cost nothing at that client (its own last clock, its
    ends, the update's struct edges: most of an editor's) are dropped as they are found, and
    only the rest, if any, are counted the general way."""
    after: dict[int, ClientItems] = {}
    if scan.blocks:
        client, first, end, i0, i1 = scan.blocks[0]
        known = known_clock(client)
        reach = max(known, end)
    else:  # deletions only: of one client, mostly (a backspace), as if of its structs
        client, first, end, i0, i1 = scan.deletes[0][0] if scan.deletes else -1, 0, 0, 0, 0
        known = reach = known_clock(client) if scan.deletes else 0
    last = i1  # the structs whose cuts are to be found
    if i0 < i1:
        if _types_on(scan, client, known):  # its one cut is at `known`: free
            chain, longest, blocks = items_of(client)
            chain += end - first
            after[client] = _new_items(ClientItems, (chain, max(longest, chain), blocks + 1))
            last = i0
        else:
            after[client] = _grown(scan, i0, i1, known, items_of(client))
    deletes = scan.deletes
    if last == i0 < i1 and len(deletes) == 1 and deletes[0][0] == client:  # a map key set again
        _c, clock, length = deletes[0]
        # Its struct's edges are `known` and `end`: the cuts inside other items, before them.
        n = (0 < clock < known or known < clock < end) + (
            0 < clock + length < known or known < clock + length < end
        ) if length else 0  # fmt: skip
        if not n:
            return 0, after
        chain, longest, blocks = after[client]
        blocks += n
        after[client] = _new_items(ClientItems, (chain, longest, blocks))
        return n * min(reach, longest + blocks), after
    starts, lengths, kinds, ref_kinds = scan.start, scan.length, scan.kind, scan.ref_kind
    ref_clients, ref_clocks, right, right_only = (
        scan.ref_client, scan.ref_clock, scan.right, scan.right_only
    )  # fmt: skip
    found: list[Cut] = []
    for j in range(i0, last):
        if kinds[j] == GC or kinds[j] == SKIP or ref_kinds[j] != REF_ORIGIN:
            continue
        if starts[j] + lengths[j] <= known:
            continue  # the letter has it already: not integrated again
        if j in right_only:
            found.append((ref_clients[j], ref_clocks[j]))
            continue
        found.append((ref_clients[j], ref_clocks[j] + 1))
        if j in right:
            found.append(right[j])
    for c, clock, length in scan.deletes:
        if length:
            found.append((c, clock))
            found.append((c, clock + length))
    costly: set[Cut] = set()
    others = False  # costly cuts of other clients
    for c, x in found:
        if c != client:
            others = True
        elif (
            x <= 0
            or x == known
            or x >= reach
            or (x > known and x >= first and _at_edge(scan, i0, i1, x))
        ):
            continue
        costly.add((c, x))
    if not costly:
        return 0, after
    if not others:  # inside its own older items only (a map key's old value, a backspace)
        items = after.get(client) or items_of(client)
        n = len(costly)
        after[client] = items = _new_items(
            ClientItems, (items.chain, items.longest, items.blocks + n)
        )
        return n * min(reach, items.longest + items.blocks), after
    ends = {client: end} if scan.blocks else {}
    spans = {client: (first, i0, i1)} if scan.blocks else {}
    return _count(scan, costly, known_clock, items_of, after, ends, spans)


def _one_range(
    delete: tuple[int, int, int], known_clock: Callable[[int], int], items_of: ItemsOf
) -> tuple[int, dict[int, ClientItems]]:
    """`split_cost` of an update deleting one range and nothing else (a backspace): its two
    ends cut the client's items unless at its first or last clock."""
    client, clock, length = delete
    known = known_clock(client)
    n = (0 < clock < known) + (0 < clock + length < known) if length else 0
    if not n:
        return 0, {}
    chain, longest, blocks = items_of(client)
    blocks += n
    return n * min(known, longest + blocks), {
        client: _new_items(ClientItems, (chain, longest, blocks))
    }


def _types_on(scan: UpdateScan, client: int, known: int) -> bool:
    """Whether the update is one struct of `client` continuing its last clock, `known`, with
    that clock as its left origin and no right one: a keystroke, a Y.Map value set again."""
    _client, first, end, i0, i1 = scan.blocks[0]
    return (
        i1 - i0 == 1
        and first == known < end
        and scan.ref_kind[i0] == REF_ORIGIN
        and scan.ref_clock[i0] == first - 1
        and scan.ref_client[i0] == client  # (an origin: neither GC nor Skip)
        and not scan.right
        and not scan.right_only
    )


def _count(
    scan: UpdateScan,
    cuts: set[Cut],
    known_clock: Callable[[int], int],
    items_of: ItemsOf,
    after: dict[int, ClientItems],
    ends: dict[int, int],
    spans: dict[int, Span],
) -> tuple[int, dict[int, ClientItems]]:
    """The cost of `cuts`; `after` gains the blocks they add."""
    known: dict[int, int] = {}
    counts: dict[int, int] = {}
    for client, x in cuts:
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
        items = after[client] = _new_items(ClientItems, (items[0], items[1], items[2] + n))
        end = max(known[client], ends.get(client, 0))
        cost += n * min(end, items.longest + items.blocks)
    return cost, after


def _grown(scan: UpdateScan, i0: int, i1: int, known: int, items: ClientItems) -> ClientItems:
    """`items` after the structs scan[i0:i1] of its client (new clocks only)."""
    chain, longest, blocks = items
    starts, lengths, kinds = scan.start, scan.length, scan.kind
    for j in range(i0, i1):
        start, length, kind = starts[j], lengths[j], kinds[j]
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
    return _new_items(ClientItems, (chain, longest, blocks))


def _cuts(scan: UpdateScan, known_clock: Callable[[int], int]) -> set[Cut]:
    """(client, clock) positions the update cuts at: between clock - 1 and clock."""
    cuts: set[Cut] = set()
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


def _edge(scan: UpdateScan, span: Span | None, x: int) -> bool:
    """Whether `x` is the start or the end of one of the update's own structs of that client."""
    if span is None or x < span[0]:
        return False
    return _at_edge(scan, span[1], span[2], x)


def _at_edge(scan: UpdateScan, i0: int, i1: int, x: int) -> bool:
    j = bisect_right(scan.start, x, i0, i1) - 1
    return x == scan.start[j] or x == scan.start[j] + scan.length[j]
