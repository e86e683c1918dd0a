"""An update's delete set sorted against a letter: what is new, what it has deleted already, and
what names clocks neither it nor the update has; and the update rebuilt with the new part only.

Ranges the letter has deleted (`DocShape.has_deleted`) change nothing: every sync step 2
repeats the letter's whole delete set, and a record and the letter's size get only what is new
(the user's bytes budget too, for a connection's first step 2: gateway/live/writes.py
`charged`). Ranges past what the letter and the update have are what a Yjs client holds
pending (Y.encodeStateAsUpdate writes its pendingDs into every step 2 and every state a
backend posts): Yrs would hold them pending too, unweighed, and split the structs that bring
those clocks at each (docs/security.md, "Item splits"); stripped, they weigh nothing.
A v1 update is its structs, then its delete set: the structs' bytes are kept as they came.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Callable
from typing import NamedTuple

from pycrdt import write_var_uint

from .update import SKIP, UpdateScan

Delete = tuple[int, int, int]  # client, clock, length


class SortedDeletes(NamedTuple):
    kept: list[Delete]  # what the update deletes that the letter may not have deleted yet
    repeated: int  # ranges the letter has deleted already
    repeated_bytes: int  # what those ranges took in the update (clock and length varints)
    pending: int  # ranges (or their tails) of clocks neither the letter nor the update has
    first_pending: str | None  # the first of those, for a refusal's detail


# Past this many ranges (a step 2 repeating a long-edited letter's delete set), a client's deleted
# spans are searched here, not through `has_deleted` (three calls a range: 200,000 took 0.45 s).
_MANY = 4096
SpansOf = Callable[[int], "tuple[array[int], array[int]] | None"]


def sort_deletes(
    scan: UpdateScan,
    known_clock: Callable[[int], int],
    has_deleted: Callable[[int, int, int], bool],
    spans_of: SpansOf | None = None,
) -> SortedDeletes:
    """Zero-length ranges are dropped (they delete nothing); a range reaching past what the
    letter and the update have is cut there, its head kept (or repeated). With `spans_of`
    (DeletedClocks.spans_of), many ranges are looked up in the spans it gives."""
    if len(scan.deletes) == 1 and len(scan.blocks) <= 1:  # a backspace, a map key's value
        return _sort_one(scan, scan.deletes[0], known_clock, has_deleted)
    return _sort_many(scan, known_clock, has_deleted, spans_of)


def _sort_one(
    scan: UpdateScan,
    delete: Delete,
    known_clock: Callable[[int], int],
    has_deleted: Callable[[int, int, int], bool],
) -> SortedDeletes:
    """`sort_deletes` of one range, with structs of one client at most."""
    client, clock, length = delete
    if not length:
        return _sorted(([], 0, 0, 0, None))
    r = known_clock(client)
    if scan.blocks and scan.blocks[0][0] == client:
        r = max(r, _own_end(scan, scan.blocks[0]))
    pending, first = 0, None
    if clock + length > r:
        pending = 1
        first = f"client {client} deletes {max(clock, r)}, known {known_clock(client)}"
        if clock >= r:
            return _sorted(([], 0, 0, pending, first))
        length = r - clock
    if has_deleted(client, clock, length):
        return _sorted(([], 1, _varint_bytes(clock) + _varint_bytes(delete[2]), pending, first))
    return _sorted(([(client, clock, length)], 0, 0, pending, first))


def _sorted(fields: tuple[list[Delete], int, int, int, str | None]) -> SortedDeletes:
    # tuple.__new__: the NamedTuple's own __new__ is a Python function (10 times a tuple's).
    return tuple.__new__(SortedDeletes, fields)


def _sort_many(
    scan: UpdateScan,
    known_clock: Callable[[int], int],
    has_deleted: Callable[[int, int, int], bool],
    spans_of: SpansOf | None,
) -> SortedDeletes:
    # Per client, the clock the update's structs or the letter's reach: one client's at most
    # (an editor's) without a dict of them all.
    blocks = scan.blocks
    own = _own_ends(scan) if len(blocks) > 1 else {}
    one, one_end = (blocks[0][0], _own_end(scan, blocks[0])) if len(blocks) == 1 else (-1, 0)
    reach: dict[int, int] = {}
    kept: list[Delete] = []
    repeated = repeated_bytes = pending = 0
    first: str | None = None
    many = spans_of is not None and len(scan.deletes) > _MANY
    spans_client, spans = -1, None
    last, r = -1, 0  # the client of the range before, and its reach (a client's come together)
    for client, clock, length in scan.deletes:
        if not length:
            continue
        if client != last:
            last, got = client, reach.get(client)
            if got is None:
                got = reach[client] = max(
                    known_clock(client), one_end if client == one else own.get(client, 0)
                )
            r = got
        end, sent = clock + length, length
        if end > r:
            pending += 1
            if first is None:
                first = f"client {client} deletes {max(clock, r)}, known {known_clock(client)}"
            if clock >= r:
                continue
            length, end = r - clock, r
        if not many:
            seen = has_deleted(client, clock, length)
        else:
            if client != spans_client:
                spans_client, spans = client, spans_of(client)  # type: ignore[misc]
            if spans is None:
                seen = False
            else:
                i = bisect_right(spans[0], clock) - 1
                seen = i >= 0 and spans[1][i] >= end
        if seen:
            repeated += 1
            repeated_bytes += (  # _varint_bytes, inline: a step 2 repeats 200,000
                (1 if clock < 0x80 else (clock.bit_length() + 6) // 7)
                + (1 if sent < 0x80 else (sent.bit_length() + 6) // 7)
            )
        else:
            kept.append((client, clock, length))
    return _sorted((kept, repeated, repeated_bytes, pending, first))


def _varint_bytes(n: int) -> int:
    """The bytes lib0's varUint of `n` takes (as the update wrote it: overlong ones, which the
    reader refuses, never get here)."""
    return 1 if n < 0x80 else (n.bit_length() + 6) // 7


def _own_end(scan: UpdateScan, block: tuple[int, int, int, int, int]) -> int:
    """Where a block's structs end, but for the clocks a trailing Skip does not carry."""
    j, i0 = block[4] - 1, block[3]
    while j >= i0 and scan.kind[j] == SKIP:
        j -= 1
    return scan.start[j] + scan.length[j] if j >= i0 else 0


def _own_ends(scan: UpdateScan) -> dict[int, int]:
    return {block[0]: _own_end(scan, block) for block in scan.blocks}


def with_deletes(update: bytes, scan: UpdateScan, deletes: list[Delete]) -> bytes:
    """`update` (scanned as `scan`) with `deletes` as its delete set, grouped per client in the
    order they came (each client's ranges in their order: what pycrdt read, a subsequence)."""
    per_client: dict[int, list[Delete]] = {}
    for d in deletes:
        per_client.setdefault(d[0], []).append(d)
    out = bytearray(update[: scan.deletes_at])
    _put(out, len(per_client))
    for client, ranges in per_client.items():
        _put(out, client)
        _put(out, len(ranges))
        for _client, clock, length in ranges:
            _put(out, clock)
            _put(out, length)
    return bytes(out)


def _put(out: bytearray, n: int) -> None:
    out += write_var_uint(n)


__all__ = ["SortedDeletes", "sort_deletes", "with_deletes"]
