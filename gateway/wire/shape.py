"""Checking updates, alone or against a letter's `DocShape` (known clocks and type depths).

A Y.Map chain built one level per small, individually valid update crashes pycrdt's `str()`
after ~16,000 levels, so depth must be tracked across updates. `DocShape` keeps, per client,
run-length encoded clock ranges -> container depth: memory grows with the number of runs (one
per change of parent depth or slot in a client's history), never with the text typed.

Each run also keeps its items' slot and, for a type, its children's (gateway/wire/depth.py):
content that does not fit its parent is refused, and the letter's root takes one family of
content, set by the first live item it gets (`family`).
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from dataclasses import dataclass, field

from .deleted import DeletedClocks
from .depth import (
    ROOT,
    TEXT_FAMILY,
    UNKNOWN,
    XML_FAMILY,
    Known,
    Missing,
    children_slot,
    max_type_depth,
    resolve,
)
from .limits import CLOSE_TOO_LARGE, STATE_LIMITS, Limits, ProtocolError
from .splits import ClientItems, split_cost
from .strip import sort_deletes, with_deletes
from .update import DELETED, SKIP, TYPE, UpdateScan, scan_update

Run = tuple[int, int, int, int]  # client, first clock, end clock (exclusive), packed code

# A run's code packs (container depth << 3 | struct kind) << 4 | slot << 2 | children's slot.
_UNKNOWN_DEPTH = 0x1FFF
# Clocks not received: a hole an old log or a loaded state's pending parts hold. A checked update
# never makes one (`clock_gap`): pycrdt 0.14 integrates what follows a hole, Yjs holds it pending.
_GAP = 0xFFFFFFFF
# The letter's root's content family (`DocShape.family`): none yet, XML elements, Y.Text's.
NO_FAMILY, XML, TEXT = 0, 1, 2
DEFAULT_DOC_FIELD = "default"  # schemas/settings.py `doc_field`


_NO_ITEMS = ClientItems()
# Read once: an Enum member's lookup on its class costs 0.2 us each time.
_BASE, _REFUSE, _TRUSTED = Missing.BASE, Missing.REFUSE, Missing.UNKNOWN


def _pack(depth: int, kind: int, slot: int, children: int) -> int:
    d = _UNKNOWN_DEPTH if depth == UNKNOWN else min(depth, _UNKNOWN_DEPTH - 1)
    return (d << 3 | kind) << 4 | slot << 2 | children


@dataclass
class UpdateInfo:
    """What a Yjs v1 update contains, as far as the gateway needs to know. Not to be changed:
    not frozen only because a frozen dataclass's 14 fields cost a keystroke's check 2-3 us."""

    blocks: tuple[tuple[int, int, int], ...]  # (client, first clock, end clock exclusive)
    deletes: tuple[tuple[int, int, int], ...]  # (client, clock, length)
    is_empty: bool  # no structs and no deletes (e.g. b"\x00\x00"): drop, never log
    new_type_depth: int  # deepest shared type the update creates (0: none)
    split_cost: int = 0  # what its item splits cost pycrdt, in clocks (gateway/wire/splits.py)
    family: int = NO_FAMILY  # of the live items it puts in the letter's root (NO_FAMILY: none)
    # For DocShape.commit only; empty unless checked against a DocShape.
    runs: tuple[Run, ...] = field(default=(), repr=False, compare=False)
    items: tuple[tuple[int, ClientItems], ...] = field(default=(), repr=False, compare=False)
    shape_checked: bool = field(default=False, repr=False, compare=False)
    # Checked against a DocShape, delete ranges it has deleted already (`repeated`) are not in
    # `deletes`, nor, when asked to strip them, ranges of clocks neither it nor the update has
    # (`pending`): `update` is then the update without them, to apply, log and relay instead of
    # the bytes received (gateway/wire/strip.py). None: nothing was left out.
    update: bytes | None = field(default=None, repr=False, compare=False)
    repeated: int = 0
    repeated_bytes: int = 0  # what the `repeated` ranges took in the update
    pending: int = 0


class _Runs:
    """One client's clock ranges: starts[i] .. starts[i+1] have depth code codes[i]."""

    __slots__ = ("codes", "end", "has_gap", "starts")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.codes = array("I")
        self.end = 0
        self.has_gap = False

    def code_at(self, clock: int) -> int:
        if clock >= self.end:
            return _GAP
        i = bisect_right(self.starts, clock) - 1
        return _GAP if i < 0 else self.codes[i]

    def write(self, start: int, end: int, code: int) -> None:
        if start > self.end:  # a hole (trusted input only): it stays unknown
            self._append(self.end, start, _GAP)
        if start >= self.end:
            self._append(start, end, code)
        elif not self.has_gap:  # a duplicate: only what lies past the end is new
            if end > self.end:
                self._append(self.end, end, code)
        else:
            self._fill(start, end, code)

    def _append(self, start: int, end: int, code: int) -> None:
        self.has_gap = self.has_gap or code == _GAP
        if not self.codes or self.codes[-1] != code:
            self.starts.append(start)
            self.codes.append(code)
        self.end = end

    def _fill(self, start: int, end: int, code: int) -> None:
        # Rare (a gap being filled, or a duplicate): rebuild, writing only over the gaps.
        bounds = [*self.starts, self.end]
        old = [(bounds[i], bounds[i + 1], c) for i, c in enumerate(self.codes)]
        self.starts, self.codes, self.end, self.has_gap = [], array("I"), 0, False
        for s, e, c in old:
            if c != _GAP or e <= start or s >= end:
                self._append(s, e, c)
                continue
            for piece in ((s, max(s, start), c), (max(s, start), min(e, end), code),
                          (min(e, end), e, c)):  # fmt: skip
                if piece[0] < piece[1]:
                    self._append(*piece)
        if end > self.end:
            self._append(self.end, end, code)


class DocShape:
    """Per-letter tracker of each client's known clock and the depth of everything it wrote."""

    def __init__(self, doc_field: str = DEFAULT_DOC_FIELD) -> None:
        self.doc_field = doc_field  # the letter's root
        self.family = NO_FAMILY  # what the root holds; set by its first live item
        self._clients: dict[int, _Runs] = {}
        self._items: dict[int, ClientItems] = {}  # bounds on each client's items in Yrs
        # The clocks the letter has deleted: a delete set repeating them (every sync step 2
        # carries the letter's) cuts nothing.
        self._deleted = DeletedClocks()

    @classmethod
    def from_update(
        cls, state: bytes, limits: Limits = STATE_LIMITS, doc_field: str = DEFAULT_DOC_FIELD
    ) -> DocShape:
        """Seed from a letter's full stored state (trusted: nothing in it is refused for depth)."""
        shape = cls(doc_field)
        shape.absorb(state, limits)
        return shape

    def known_clock(self, client: int) -> int:
        runs = self._clients.get(client)
        return 0 if runs is None else runs.end

    def state_vector(self) -> dict[int, int]:
        return {client: runs.end for client, runs in self._clients.items()}

    def run_count(self) -> int:
        """Memory use in runs (each a few bytes)."""
        return sum(len(runs.codes) for runs in self._clients.values())

    def check(self, update: bytes, limits: Limits) -> UpdateInfo:
        return check_update(update, limits, self)

    def commit(self, info: UpdateInfo) -> None:
        """Record an update checked against this shape and applied to the document."""
        if not info.shape_checked:
            raise ValueError("commit() needs an UpdateInfo from check_update(..., doc=shape)")
        for client, start, end, code in info.runs:
            runs = self._clients.get(client)
            if runs is None:
                runs = self._clients[client] = _Runs()
            runs.write(start, end, code)
        self._items.update(info.items)
        if not self.family:
            self.family = info.family
        if info.deletes:  # after the runs: the update's own structs are known clocks now
            self._deleted.record(info.deletes, self.known_clock)

    @property
    def deleted_spans(self) -> int:
        """How many ranges of deleted clocks the letter has recorded (all clients): the most a
        genuine delete set repeats (Yjs and Yrs merge adjacent ranges)."""
        return self._deleted.spans

    def has_deleted(self, client: int, clock: int, length: int) -> bool:
        """Whether the letter has deleted all of `client`'s clocks [clock, clock + length)."""
        return self._deleted.covers(client, clock, length)

    def accept(self, update: bytes, limits: Limits) -> UpdateInfo:
        """check() then commit(): for a caller that applies every update it accepts."""
        info = check_update(update, limits, self)
        self.commit(info)
        return info

    def absorb(self, update: bytes, limits: Limits = STATE_LIMITS) -> UpdateInfo:
        """Record a trusted update (our stored state, the log): malformed bytes still raise."""
        info = _check(update, scan_update(update, limits), limits, self, Missing.UNKNOWN)
        self.commit(info)
        return info

    def absorb_whole(self, update: bytes, limits: Limits = STATE_LIMITS) -> tuple[UpdateInfo, bool]:
        """`absorb`, and whether the update surely integrates whole into a document that holds
        what this shape holds and nothing pending: not if a struct follows a hole in its
        client's clocks (before its block, or a Skip of a merged update) or refers to what
        neither has (of unknown depth), or a deletion reaches past them. Cheap (what the check
        found): no look at the document."""
        scan = scan_update(update, limits)
        gap = _past_hole(scan, self) is not None  # a Skip inside a block too (re-read RR2)
        info = _check(update, scan, limits, self, Missing.UNKNOWN)
        self.commit(info)
        return info, not (
            gap
            or any(code >> 7 == _UNKNOWN_DEPTH for *_, code in info.runs)
            or any(at + n > self.known_clock(client) for client, at, n in info.deletes)
        )

    def items_of(self, client: int) -> ClientItems:
        return self._items.get(client, _NO_ITEMS)

    def _known_at(self, client: int, clock: int) -> Known | None:
        runs = self._clients.get(client)
        if runs is None:
            return None
        code = runs.code_at(clock)
        if code == _GAP:
            return None
        depth = code >> 7
        depth = UNKNOWN if depth == _UNKNOWN_DEPTH else depth
        return depth, code >> 4 & 7, code >> 2 & 3, code & 3


def check_update(
    update: bytes, limits: Limits, doc: DocShape | None = None, *, strip_pending: bool = False
) -> UpdateInfo:
    """Validate a Yjs v1 update; with `doc`, also against that letter's known clocks and depths.

    With `doc`, references to items neither in `doc` nor in the update are refused
    ("missing_dependency"): pycrdt would keep such items pending, and their depth could not be
    checked when they integrate later. So are structs that would follow a hole in their client's
    clocks ("clock_gap", with the struct): pycrdt 0.14 integrates them where Yjs holds them
    pending, and a saved state then reloads as less than the document had (docs/contracts.md);
    and so are deletions of clocks neither has ("clock_gap"): Yrs keeps them pending, unweighed;
    unless `strip_pending` (a sync step 2, a REST write: docs/security.md "Pending deletions"):
    then they are left out of the update (`UpdateInfo.update`), as ranges `doc` has deleted
    already always are.
    """
    scan = scan_update(update, limits)
    return _check(update, scan, limits, doc, _BASE if doc is None else _REFUSE, strip_pending)


def _check(
    update: bytes,
    scan: UpdateScan,
    limits: Limits,
    doc: DocShape | None,
    missing: Missing,
    strip_pending: bool = False,
) -> UpdateInfo:
    trusted = missing is _TRUSTED
    if scan.empty and not trusted:
        raise ProtocolError("empty_struct", f"{scan.empty} empty structs or client sections")
    # Deletions of clocks neither the letter nor the update has weigh nothing in the split cost
    # (past a client's end), and Yrs keeps them pending, splitting the paste that brings those
    # clocks at each (after 200,000, a 1,000,000-character paste held the loop 6.8 s). Found
    # first: stripped (`strip_pending`), else such an update is not weighed, and is refused as
    # a hole after what closes the connection. Ranges the letter has deleted are left out.
    pending: str | None = None
    stripped: bytes | None = None
    repeated = repeated_bytes = n_pending = 0
    if doc is not None and not trusted and scan.deletes:
        deletes = sort_deletes(scan, doc.known_clock, doc.has_deleted, doc._deleted.spans_of)
        if deletes.pending and not strip_pending:
            pending = deletes.first_pending
        else:
            if deletes.pending or deletes.repeated:  # else only zero-length ranges may go
                repeated, n_pending = deletes.repeated, deletes.pending
                repeated_bytes = deletes.repeated_bytes
                stripped = with_deletes(update, scan, deletes.kept)
            scan.deletes = deletes.kept
    if pending is None:
        cost, items = _split_cost(scan, limits, doc, trusted)
    else:
        cost, items = 0, {}
    if not scan.blocks:  # nothing to resolve: the hot path for pure deletions and empties
        if pending is not None:
            raise ProtocolError("clock_gap", pending)
        return _info(scan, [], 0, doc, cost, items, (stripped, repeated, repeated_bytes, n_pending))
    if doc is None:
        codes, slots = resolve(scan, None, missing)
    else:
        codes, slots = resolve(scan, doc._known_at, missing, doc.doc_field)
    deepest = max_type_depth(scan, codes)
    if deepest > limits.max_type_depth and not trusted:
        raise ProtocolError("depth_exceeded", f"shared type nested {deepest} deep")
    family = NO_FAMILY
    if doc is not None and ROOT in slots:  # C-level: typing inside a paragraph has none
        family = _root_family(scan, slots, doc.family, trusted)
    if doc is not None and not trusted:
        # After resolve: an update that builds on what the hole holds stays `missing_dependency`
        # (dropped only before the client's step 2: gateway/live/connection.py).
        hole = _past_hole(scan, doc)
        if hole is not None:
            client, clock = hole
            known = doc.known_clock(client)
            raise ProtocolError(
                "clock_gap", f"client {client} at {clock}, known {known}", struct=hole
            )
        if pending is not None:
            raise ProtocolError("clock_gap", pending)
    placed = (slots, family)
    return _info(
        scan,
        codes,
        deepest,
        doc,
        cost,
        items,
        (stripped, repeated, repeated_bytes, n_pending),
        placed,
    )


def _root_family(scan: UpdateScan, slots: list[int], family: int, trusted: bool) -> int:
    """The family of the update's live items in the letter's root: the letter's if set, else
    the first's. Content of the other family is refused. y-tiptap reads the root as a
    Y.XmlFragment, and throws on a string there; a letter whose body is one Y.Text is read as
    one (gateway/content.py), where an element is no text. An empty root takes either: its
    letter has no content yet, and either client may be the first to write."""
    first = family
    for j, slot in enumerate(slots):
        if slot != ROOT or scan.kind[j] == DELETED:
            continue
        bit = 1 << (scan.content[j] & 31)
        mine = XML if bit & XML_FAMILY else TEXT if bit & TEXT_FAMILY else NO_FAMILY
        if not first:
            first = mine
        elif mine != first and not trusted:
            at = (scan.client[j], scan.start[j])
            raise ProtocolError("misplaced_content", f"struct {j}: not of the root's family",
                                struct=at)  # fmt: skip
    return first


def _split_cost(
    scan: UpdateScan, limits: Limits, doc: DocShape | None, trusted: bool
) -> tuple[int, dict[int, ClientItems]]:
    # Before pycrdt splits a 1,000,000-character item at every place the update names
    # (docs/security.md "Item splits"). Without a shape, only the update's own items count.
    # Against a shape, the ranges the letter has deleted are gone from `scan.deletes` already
    # (sort_deletes); a trusted update's cost is not asked (only its items).
    if doc is None:
        cost, items = split_cost(scan, lambda _client: 0, lambda _client: _NO_ITEMS)
    else:
        cost, items = split_cost(scan, doc.known_clock, doc.items_of)
    if cost > limits.max_split_cost and not trusted:
        detail = f"splits cost {cost} clocks, at most {limits.max_split_cost}"
        raise ProtocolError("split_cost_exceeded", detail, CLOSE_TOO_LARGE)
    return cost, items


def _past_hole(scan: UpdateScan, doc: DocShape) -> tuple[int, int] | None:
    """The first struct (client, clock) of `scan` past clocks neither `doc` nor `scan` has.

    A block starting past the letter's clock for its client; or, rarely, a struct after a Skip
    (a merge of updates with a hole between them) that the letter does not cover.
    """
    skips = SKIP in scan.kind  # a C-level scan; per block, one comparison otherwise
    for client, first, _end, i0, i1 in scan.blocks:
        reach = doc.known_clock(client)
        if first > reach:
            return client, first
        if not skips:
            continue
        for j in range(i0, i1):
            if scan.kind[j] == SKIP:
                continue
            if scan.start[j] > reach:
                return client, scan.start[j]
            reach = max(reach, scan.start[j] + scan.length[j])
    return None


def _info(
    scan: UpdateScan,
    codes: list[int],
    deepest: int,
    doc: DocShape | None,
    cost: int,
    items: dict[int, ClientItems],
    stripped: tuple[bytes | None, int, int, int] = (None, 0, 0, 0),
    placed: tuple[list[int], int] = ([], NO_FAMILY),
) -> UpdateInfo:
    blocks = tuple([(client, first, end) for client, first, end, _i0, _i1 in scan.blocks])
    update, repeated, repeated_bytes, pending = stripped
    return UpdateInfo(
        blocks=blocks,
        deletes=tuple(scan.deletes),
        # An update of deletions the letter has made only is not empty: a repeat (room.py).
        is_empty=not blocks and not scan.deletes and not repeated,
        new_type_depth=deepest,
        split_cost=cost,
        family=placed[1],
        runs=() if doc is None else _runs(scan, codes, placed[0]),
        items=() if doc is None else tuple(items.items()),
        shape_checked=doc is not None,
        update=update,
        repeated=repeated,
        repeated_bytes=repeated_bytes,
        pending=pending,
    )


def _runs(scan: UpdateScan, codes: list[int], slots: list[int]) -> tuple[Run, ...]:
    kinds, starts, lengths, contents = scan.kind, scan.start, scan.length, scan.content
    if len(kinds) == 1:  # one struct (what an editor sends): one run at most
        kind, length = kinds[0], lengths[0]
        if kind == SKIP or not length:
            return ()
        children = children_slot(contents[0] & 31) if kind == TYPE else 0
        start = starts[0]
        return ((scan.client[0], start, start + length, _pack(codes[0], kind, slots[0], children)),)
    return _runs_all(scan, codes, slots)


def _runs_all(scan: UpdateScan, codes: list[int], slots: list[int]) -> tuple[Run, ...]:
    kinds, starts, lengths, contents = scan.kind, scan.start, scan.length, scan.content
    runs: list[Run] = []
    for client, _first, _end, i0, i1 in scan.blocks:
        for j in range(i0, i1):
            if kinds[j] == SKIP or not lengths[j]:  # Skip: clocks this update does not carry
                continue
            kind = kinds[j]
            children = children_slot(contents[j] & 31) if kind == TYPE else 0
            start, end = starts[j], starts[j] + lengths[j]
            code = _pack(codes[j], kind, slots[j], children)
            if runs and runs[-1][0] == client and runs[-1][2] == start and runs[-1][3] == code:
                runs[-1] = (client, runs[-1][1], end, code)
            else:
                runs.append((client, start, end, code))
    return tuple(runs)


__all__ = ["DocShape", "UpdateInfo", "check_update"]
