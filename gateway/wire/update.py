"""Scanning a Yjs v1 update (yjs src/utils/encoding.js readClientsStructRefs + readDeleteSet).

Records, per struct, only what the type-depth check needs (client, clock range, kind and the one
reference that decides its parent), in flat lists: this runs on every keystroke.
"""

from __future__ import annotations

from .limits import Limits, ProtocolError
from .reader import Reader, uint_at
from .values import parse_json, skip_any, skip_any_at

# Struct kinds: an item with content, a shared type, an item with Deleted content, GC, Skip.
ITEM, TYPE, DELETED, GC, SKIP = 0, 1, 2, 3, 4
# How an item names its parent: a root type by key, a type item by id, or via its origin(s).
REF_ROOT, REF_PARENT, REF_ORIGIN, REF_NONE = 0, 1, 2, 3
# YArray, YMap, YText, YXmlElement, YXmlFragment, YXmlText. Not YXmlHook (5): Yjs writes a hook
# name that Yrs does not read, so the two would decode the rest of the update differently.
_SUPPORTED_TYPE_REFS = (0, 1, 2, 3, 4, 6)
_XML_ELEMENT = 3
# `UpdateScan.content`: an item's content ref (yjs Content*.getRef: 1 Deleted, 4 String, 5 Embed,
# 6 Format, 8 Any...), a type's `TYPE_CONTENT + type ref` instead of 7, plus `PARENT_SUB` when
# the item names its parent and a map key (an attribute, not a child). Small ints: no allocation.
TYPE_CONTENT, PARENT_SUB = 11, 32


class UpdateScan:
    """The structs and delete set of one update, as parallel lists."""

    __slots__ = ("blocks", "client", "content", "deletes", "deletes_at", "empty", "kind",
                 "length", "ref_client", "ref_clock", "ref_kind", "right", "right_only", "roots",
                 "start")  # fmt: skip

    def __init__(self) -> None:
        self.blocks: list[tuple[int, int, int, int, int]] = []  # client, first, end, i0, i1
        self.deletes: list[tuple[int, int, int]] = []
        self.deletes_at = 0  # where the delete set starts in the update's bytes
        # Zero-length structs and struct-less client sections: Yrs drops the former while
        # decoding, and a client section left empty panics Yrs 0.28 (update.rs:85, `exclude`)
        # when the document already knows that client. Only our own stored state may have them.
        self.empty = 0
        self.client: list[int] = []
        self.start: list[int] = []
        self.length: list[int] = []
        self.kind: list[int] = []
        self.content: list[int] = []  # see TYPE_CONTENT; 0 for GC and Skip
        self.ref_kind: list[int] = []
        self.ref_client: list[int] = []
        self.ref_clock: list[int] = []
        # Right origins of items that also have a left one, by struct index: Yrs takes the
        # parent from the right when the left is garbage-collected.
        self.right: dict[int, tuple[int, int]] = {}
        # Items whose one origin reference (ref_*) is a right origin: the cut is before it.
        self.right_only: set[int] = set()
        # Root type names of the items that name one (by struct index): few, only items without
        # origins (the first insert into an empty root, a map key's first value).
        self.roots: dict[int, str] = {}


def scan_update(update: bytes, limits: Limits) -> UpdateScan:
    if len(update) > limits.max_message_bytes:
        raise ProtocolError("message_too_large", f"{len(update)} bytes", 4413)
    head = update[:2]
    if head == b"\x01\x01":  # one client's one struct: what an editor sends
        scan = _scan_one(update, limits)
        if scan is not None:
            return scan
    elif head == b"\x00\x01":  # no structs, deletions of one client: a backspace
        scan = _scan_deletion(update, limits)
        if scan is not None:
            return scan
    return _scan_all(update, limits)


def _scan_all(update: bytes, limits: Limits) -> UpdateScan:
    r = Reader(update)
    scan = UpdateScan()
    _read_structs(r, limits, scan)
    scan.deletes_at = pos = r.pos
    if pos + 1 == len(update) and not update[pos]:  # no deletions: most updates
        return scan
    _read_delete_set(r, limits, scan)
    r.expect_end()
    return scan


def _scan_one(u: bytes, limits: Limits) -> UpdateScan | None:
    """The scan of an update of one client's one item with origins and String or Any content
    (a keystroke, a paste, a Y.Map set), read in one function; None for anything else or any
    doubt (what the general way would refuse, or record as empty): it then reads the update.
    tests/preparse/test_scan_one.py holds the two to the same scans and refusals."""
    try:
        client, pos = _uint(u, 2)
        mine = u[2:pos]  # the client's varint: its origins and deletions are mostly its own
        clock, pos = _uint(u, pos)
        info = u[pos]
        content = info & 0x1F
        if (content != 4 and content != 8) or not info & 0xC0:
            return None
        # The one origin reference (the left, else the right), then the right of both.
        pos += 1
        if u.startswith(mine, pos):
            ref_client, pos = client, pos + len(mine)
        else:
            ref_client, pos = _uint(u, pos)
        ref_clock, pos = _uint(u, pos)
        right: tuple[int, int] | None = None
        if info & 0xC0 == 0xC0:
            right_client, pos = _uint(u, pos)
            right_clock, pos = _uint(u, pos)
            right = right_client, right_clock
            if right_client < 0 or not 0 <= right_clock < limits.max_clock:
                return None
        n, pos = _uint(u, pos)  # the string's bytes, or the count of Any values
        if n < 0 or clock < 0 or ref_client < 0 or not 0 <= ref_clock < limits.max_clock:
            return None
        if content == 4:
            raw = u[pos : pos + n]
            if len(raw) != n:
                return None
            pos += n
            if not raw.isascii():  # clock length in UTF-16 code units, as JS counts
                try:
                    n = len(raw.decode("utf-8").encode("utf-16-le")) // 2
                except UnicodeDecodeError:
                    return None
        else:
            if n > limits.max_structs or n > len(u) - pos:
                return None
            for _ in range(n):
                pos = skip_any_at(u, pos, limits.max_any_depth)
                if pos < 0:
                    return None
        if not 0 < n <= limits.max_clock - clock or not 0 <= client <= limits.max_client_id:
            return None  # empty, too far, or a refused varint
        if limits.max_clients_per_update < 1 or limits.max_structs < 1:
            return None
        scan = UpdateScan()
        if u[pos] == 1 and u[pos + 1 : pos + 1 + len(mine)] == mine:  # one deletion of its own
            end = pos + 1 + len(mine)
            if u[end] == 1 and limits.max_delete_ranges >= 1:
                at, end = _uint(u, end + 1)
                length, end = _uint(u, end)
                if end == len(u) and at >= 0 and 0 <= length <= limits.max_clock - at:
                    scan.deletes.append((client, at, length))
        if not scan.deletes and (u[pos] or pos + 1 != len(u)):  # the general way, from here
            r = Reader(u, pos)
            _read_delete_set(r, limits, scan)
            r.expect_end()
    except IndexError:  # truncated
        return None
    except ProtocolError:  # in the delete set: said again by the general way
        return None
    scan.deletes_at = pos
    scan.blocks.append((client, clock, clock + n, 0, 1))
    scan.client.append(client)
    scan.start.append(clock)
    scan.length.append(n)
    scan.kind.append(ITEM)
    scan.content.append(content)
    scan.ref_kind.append(REF_ORIGIN)
    scan.ref_client.append(ref_client)
    scan.ref_clock.append(ref_clock)
    if right is not None:
        scan.right[0] = right
    elif not info & 0x80:
        scan.right_only.add(0)
    return scan


def _scan_deletion(u: bytes, limits: Limits) -> UpdateScan | None:
    """The scan of an update deleting one range of one client's clocks, and nothing else; None
    for anything else or any doubt, as `_scan_one`."""
    try:
        client, pos = _uint(u, 2)
        if u[pos] != 1:
            return None
        at, pos = _uint(u, pos + 1)
        length, pos = _uint(u, pos)
    except IndexError:
        return None
    if pos != len(u) or not 0 <= client <= limits.max_client_id or at < 0 or length < 0:
        return None
    if length > limits.max_clock - at or limits.max_delete_ranges < 1:
        return None
    if limits.max_clients_per_update < 1:
        return None
    scan = UpdateScan()
    scan.deletes_at = 1
    scan.deletes.append((client, at, length))
    return scan


def _uint(u: bytes, pos: int) -> tuple[int, int]:
    """A varUint at `pos` and the position after it; a negative value for one refused."""
    b = u[pos]
    return (b, pos + 1) if b < 0x80 else uint_at(u, pos)


def _read_structs(r: Reader, limits: Limits, scan: UpdateScan) -> None:
    # Each client section holds at least 3 bytes: struct count, client id, first clock.
    n_clients = r.count(3, limits.max_clients_per_update, "clients")
    budget = limits.max_structs
    seen: set[int] = set()
    for _ in range(n_clients):
        n_structs = r.count(1, budget, "structs")
        budget -= n_structs
        client = _client_id(r, limits)
        if n_clients > 1:  # one client's section: nothing to repeat
            if client in seen:
                raise ProtocolError("duplicate_client", str(client))
            seen.add(client)
        first = clock = r.uint()
        i0 = len(scan.start)
        for _ in range(n_structs):
            clock += _read_struct(r, limits, scan, client, clock)
        if clock > limits.max_clock:
            raise ProtocolError("clock_too_large", f"client {client} reaches {clock}")
        if clock == first:
            scan.empty += 1
        if n_structs:
            scan.blocks.append((client, first, clock, i0, len(scan.start)))


def _client_id(r: Reader, limits: Limits) -> int:
    client = r.uint()
    if client > limits.max_client_id:
        raise ProtocolError("client_id_too_large", str(client))
    return client


def _read_struct(r: Reader, limits: Limits, scan: UpdateScan, client: int, clock: int) -> int:
    """Read one struct starting at `clock`; record it; return its length."""
    info = r.byte()
    content = info & 0x1F
    ref_kind, ref_client, ref_clock = REF_NONE, 0, 0
    code = 0
    if content == 0 or content == 10:  # GC or Skip: just a length
        if info != content:  # Yjs masks the flag bits off here, Yrs does not
            raise ProtocolError("bad_struct_info", hex(info))
        kind = GC if content == 0 else SKIP
        length = r.uint()
    elif content < 10:
        if info & 0x80:  # origin (left)
            ref_kind, ref_client, ref_clock = REF_ORIGIN, r.uint(), r.uint()
        if info & 0x40:  # right origin
            right = r.uint(), r.uint()
            if ref_kind == REF_NONE:
                ref_kind, ref_client, ref_clock = REF_ORIGIN, *right
                scan.right_only.add(len(scan.start))
            elif right[1] < limits.max_clock:
                scan.right[len(scan.start)] = right
            else:
                raise ProtocolError("clock_too_large", f"reference to clock {right[1]}")
        code = content
        if ref_kind == REF_NONE:
            ref_kind, ref_client, ref_clock = _read_parent(r, info, scan)
            if info & 0x20:
                code |= PARENT_SUB
        if ref_clock >= limits.max_clock:
            raise ProtocolError("clock_too_large", f"reference to clock {ref_clock}")
        kind = TYPE if content == 7 else DELETED if content == 1 else ITEM
        if kind == TYPE:
            length, code = 1, code - 7 + TYPE_CONTENT + _read_type(r)
        else:
            length = _read_content(r, limits, content)
    else:
        raise ProtocolError("unknown_struct", str(content))
    if not length:  # Yrs itself writes empty String structs after some splits (see `empty`)
        scan.empty += 1
    scan.client.append(client)
    scan.start.append(clock)
    scan.length.append(length)
    scan.kind.append(kind)
    scan.content.append(code)
    scan.ref_kind.append(ref_kind)
    scan.ref_client.append(ref_client)
    scan.ref_clock.append(ref_clock)
    return length


def _read_parent(r: Reader, info: int, scan: UpdateScan) -> tuple[int, int, int]:
    parent_info = r.uint()
    if parent_info == 1:
        scan.roots[len(scan.start)] = r.string()  # root type name
        ref = (REF_ROOT, 0, 0)
    elif parent_info == 0:
        ref = (REF_PARENT, r.uint(), r.uint())
    else:
        raise ProtocolError("bad_parent_info", str(parent_info))
    if info & 0x20:
        r.string()  # parentSub: the map key
    return ref


def _read_content(r: Reader, limits: Limits, content: int) -> int:
    """Validate item content (yjs src/structs/Content*.js); return its clock length."""
    if content == 4:  # String: clock length counts UTF-16 code units, as JS does
        raw = r.buf()
        if raw.isascii():
            return len(raw)
        try:
            return len(raw.decode("utf-8").encode("utf-16-le")) // 2
        except UnicodeDecodeError as exc:
            raise ProtocolError("invalid_utf8", str(exc)) from None
    if content == 1:  # Deleted
        return r.uint()
    if content == 8:  # Any
        n = r.count(1, limits.max_structs, "any_items")
        for _ in range(n):
            skip_any(r, limits.max_any_depth)
        return n
    return _read_other_content(r, limits, content)


def _read_type(r: Reader) -> int:
    """Validate a Type content (its clock length is 1); return its type ref."""
    type_ref = r.byte()  # Yrs reads one byte where Yjs reads a varUint: same below 128
    if type_ref not in _SUPPORTED_TYPE_REFS:
        raise ProtocolError("unknown_type_ref", str(type_ref))
    if type_ref == _XML_ELEMENT:
        r.string()  # node name
    return type_ref


def _read_other_content(r: Reader, limits: Limits, content: int) -> int:
    if content == 2:
        # Legacy JSON content (Yjs < 13 only): Yrs 0.27 reads one string more than Yjs writes.
        raise ProtocolError("unsupported_content", "JSON")
    if content == 3:  # Binary
        r.skip_buf()
    elif content == 5:  # Embed
        parse_json(r.string(), limits.max_any_depth)
    elif content == 6:  # Format: key, JSON value
        r.string()
        parse_json(r.string(), limits.max_any_depth)
    else:  # 9, Doc: guid, then options as Any
        r.string()
        skip_any(r, limits.max_any_depth)
    return 1


def _read_delete_set(r: Reader, limits: Limits, scan: UpdateScan) -> None:
    # Each client entry holds at least 2 bytes (client, range count), each range 2 (clock, len).
    n_clients = r.count(2, limits.max_clients_per_update, "delete_clients")
    budget = limits.max_delete_ranges
    for _ in range(n_clients):
        client = _client_id(r, limits)
        n_ranges = r.count(2, budget, "delete_ranges")
        budget -= n_ranges
        r.deletes(client, n_ranges, limits.max_clock, scan.deletes)
