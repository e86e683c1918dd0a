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

from collections.abc import Callable
from dataclasses import dataclass

from pycrdt import write_var_uint

from .update import SKIP, UpdateScan

Delete = tuple[int, int, int]  # client, clock, length


@dataclass(frozen=True, slots=True)
class SortedDeletes:
    kept: list[Delete]  # what the update deletes that the letter may not have deleted yet
    repeated: int  # ranges the letter has deleted already
    repeated_bytes: int  # what those ranges took in the update (clock and length varints)
    pending: int  # ranges (or their tails) of clocks neither the letter nor the update has
    first_pending: str | None  # the first of those, for a refusal's detail


def sort_deletes(
    scan: UpdateScan,
    known_clock: Callable[[int], int],
    has_deleted: Callable[[int, int, int], bool],
) -> SortedDeletes:
    """Zero-length ranges are dropped (they delete nothing); a range reaching past what the
    letter and the update have is cut there, its head kept (or repeated)."""
    reach = _reach(scan, known_clock)
    kept: list[Delete] = []
    repeated = repeated_bytes = pending = 0
    first: str | None = None
    for client, clock, length in scan.deletes:
        if not length:
            continue
        r = reach.get(client)
        if r is None:
            r = reach[client] = known_clock(client)
        end, sent = clock + length, length
        if end > r:
            pending += 1
            if first is None:
                first = f"client {client} deletes {max(clock, r)}, known {known_clock(client)}"
            if clock >= r:
                continue
            length = r - clock
        if has_deleted(client, clock, length):
            repeated += 1
            repeated_bytes += _varint_bytes(clock) + _varint_bytes(sent)
        else:
            kept.append((client, clock, length))
    return SortedDeletes(kept, repeated, repeated_bytes, pending, first)


def _varint_bytes(n: int) -> int:
    """The bytes lib0's varUint of `n` takes (as the update wrote it: overlong ones, which the
    reader refuses, never get here)."""
    return 1 if n < 0x80 else (n.bit_length() + 6) // 7


def _reach(scan: UpdateScan, known_clock: Callable[[int], int]) -> dict[int, int]:
    """Per client the update has structs of: the clock its structs or the letter's reach."""
    reach: dict[int, int] = {}
    for client, _first, _end, i0, i1 in scan.blocks:
        j = i1 - 1
        while j >= i0 and scan.kind[j] == SKIP:  # clocks it does not carry
            j -= 1
        own = scan.start[j] + scan.length[j] if j >= i0 else 0
        reach[client] = max(known_clock(client), own)
    return reach


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
