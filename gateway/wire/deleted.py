"""The clock ranges a letter has deleted, per client (`DocShape.has_deleted`).

Every sync step 2 carries its sender's whole delete set, so each reconnect repeats the letter's:
ranges the letter has deleted already split nothing (their items were split when deleted, and
Yrs skips deleted items), and are left out of the update (gateway/wire/strip.py): not weighed,
logged or charged again, and a step 2 that brings only them is a repeat (gateway/live/room.py).

Only deletions of clocks the letter has are recorded: Yrs keeps others pending and applies them,
splitting, when their structs come (a checked update never names such clocks: they are left
out, or refused as `clock_gap`).
Spans are kept merged and sorted in two arrays per client (16 bytes a span). A few ranges are
inserted one by one (a bisect and a memmove each: a backspace in a client of 100,000 spans is no
pass over them all); a larger batch is merged in one pass over the spans it reaches (a list
insert per range made 250,000 descending ranges take 3.9 s). At most `MAX_SPANS` per letter:
ranges past it are not recorded, and weigh as new (conservative).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence

MAX_SPANS = 200_000  # per letter: 3.2 MB of arrays
_FEW = 32  # ranges of one client inserted one by one; past it, merged in one pass


class _Spans:
    """One client's deleted clocks: [starts[i], ends[i]), disjoint, sorted, not touching."""

    __slots__ = ("ends", "starts")

    def __init__(self) -> None:
        self.starts = array("q")
        self.ends = array("q")

    def covers(self, start: int, end: int) -> bool:
        i = bisect_right(self.starts, start) - 1
        return i >= 0 and self.ends[i] >= end

    def add(self, ranges: list[tuple[int, int]]) -> int:
        """Record `ranges` (non-empty); the change in the number of spans."""
        if len(ranges) <= _FEW:
            return sum([self.insert(start, end) for start, end in ranges])
        before = len(self.starts)
        self._merge(ranges)
        return len(self.starts) - before

    def insert(self, start: int, end: int) -> int:
        """Record [start, end); the change in the number of spans."""
        starts, ends = self.starts, self.ends
        if not ends or start > ends[-1]:  # past the last span: a backspace, a map key's value
            starts.append(start)
            ends.append(end)
            return 1
        if start >= starts[-1]:  # in or touching the last span only
            if end > ends[-1]:
                ends[-1] = end
            return 0
        i = bisect_left(ends, start)  # the first span ending at or after it: touches or follows
        j = bisect_right(starts, end, i)  # past the last span starting at or before its end
        if i < j:
            start, end = min(start, starts[i]), max(end, ends[j - 1])
        starts[i:j] = array("q", (start,))
        ends[i:j] = array("q", (end,))
        return 1 - (j - i)

    def _merge(self, ranges: list[tuple[int, int]]) -> None:
        ranges.sort()
        lo = bisect_left(self.ends, ranges[0][0])
        hi = bisect_right(self.starts, max(end for _start, end in ranges), lo)
        # The spans in reach, and the ranges: two sorted runs (timsort merges them in one pass).
        together = list(zip(self.starts[lo:hi], self.ends[lo:hi], strict=True))
        together.extend(ranges)
        together.sort()
        starts, ends = array("q"), array("q")
        for start, end in together:
            if ends and start <= ends[-1]:
                if end > ends[-1]:
                    ends[-1] = end
            else:
                starts.append(start)
                ends.append(end)
        self.starts[lo:hi] = starts
        self.ends[lo:hi] = ends


class DeletedClocks:
    """Per client, the clock ranges a letter has deleted."""

    __slots__ = ("_clients", "spans")

    def __init__(self) -> None:
        self._clients: dict[int, _Spans] = {}
        self.spans = 0  # recorded, all clients together

    def covers(self, client: int, clock: int, length: int) -> bool:
        """Whether every clock of `client` in [clock, clock + length) is recorded as deleted."""
        spans = self._clients.get(client)
        return spans is not None and spans.covers(clock, clock + length)

    def spans_of(self, client: int) -> tuple[array[int], array[int]] | None:
        """`client`'s deleted spans: starts and ends, for a caller looking up many ranges
        (gateway/wire/strip.py) without a call a range."""
        spans = self._clients.get(client)
        return None if spans is None else (spans.starts, spans.ends)

    def record(
        self, deletes: Sequence[tuple[int, int, int]], known_clock: Callable[[int], int]
    ) -> None:
        """Record applied (client, clock, length) deletions, up to each client's known clock
        (what lies past it Yrs keeps pending: only a trusted state has any)."""
        if len(deletes) == 1:  # a backspace, a map key's value replaced: no batches
            client, clock, length = deletes[0]
            end = min(clock + length, known_clock(client))
            if clock < end and self.spans < MAX_SPANS:
                spans = self._clients.get(client)
                if spans is None:
                    spans = self._clients[client] = _Spans()
                self.spans += spans.insert(clock, end)
            return
        batches: dict[int, list[tuple[int, int]]] = {}
        known: dict[int, int] = {}
        for client, clock, length in deletes:
            k = known.get(client)
            if k is None:
                k = known[client] = known_clock(client)
            end = min(clock + length, k)
            if clock < end:
                batches.setdefault(client, []).append((clock, end))
        for client, ranges in batches.items():
            if self.spans + len(ranges) > MAX_SPANS:
                continue  # not recorded: weighed as new if repeated
            spans = self._clients.get(client)
            if spans is None:
                spans = self._clients[client] = _Spans()
            self.spans += spans.add(ranges)


__all__ = ["MAX_SPANS", "DeletedClocks"]
