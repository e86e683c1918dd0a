"""The pre-parser's fast lanes for one client's one item (what an editor sends: a keystroke,
a paste, a Y.Map set) and for one deleted range (a backspace) give what the general ways give:
the same UpdateScan, field by field, or the same refusal (gateway/wire/update.py `_scan_one`,
`_scan_deletion`); the same depths, slots and refusals (depth.py `_resolve_one`) and runs
(shape.py `_runs`). For well-formed updates, for garbled ones, and under tight limits."""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Map, Text

from gateway.preparse import DocShape, Limits, ProtocolError, check_state_vector
from gateway.wire import depth, shape, update
from gateway.wire.depth import Missing
from gateway.wire.update import UpdateScan, scan_update

from . import lib0
from .mutations import MUTATION, mutate
from .structured import BASES, NEW_CLIENT, state_vector, structs

LIMITS = Limits()
TIGHT = Limits(max_clock=300, max_client_id=2**32, max_any_depth=2, max_structs=3,
               max_delete_ranges=1, max_clients_per_update=1)  # fmt: skip
CLIENTS = [0, 5, 127, 128, 300, NEW_CLIENT, 2**32, 2**52 + 12345, 2**53 - 1, 2**53, 2**60]
CLOCKS = [0, 1, 127, 128, 299, 300, 2**32 - 2**20 - 1, 2**32 - 2**20, 2**53]
A_CLOCK = st.integers(0, 400) | st.sampled_from(CLOCKS)  # mostly within every bound


def _signed(n: int) -> bytes:
    """lib0 varInt: continuation, sign, 6 bits; then 7 bits a byte."""
    magnitude = abs(n)
    out = bytearray([(0x40 if n < 0 else 0) | (magnitude & 0x3F)])
    magnitude >>= 6
    while magnitude:
        out[-1] |= 0x80
        out.append(magnitude & 0x7F)
        magnitude >>= 7
    return bytes(out)


_SCALARS = st.one_of(
    st.sampled_from([b"\x7f", b"\x7e", b"\x79", b"\x78"]),  # undefined, null, false, true
    st.integers(-(2**53), 2**53).map(lambda n: b"\x7d" + _signed(n)),
    st.floats(width=32).map(lambda f: b"\x7c" + struct.pack(">f", f)),
    st.floats().map(lambda f: b"\x7b" + struct.pack(">d", f)),
    st.integers(-(2**63), 2**63 - 1).map(lambda n: b"\x7a" + struct.pack(">q", n)),
    st.text(max_size=6).map(lambda s: b"\x77" + lib0.string(s)),
    st.binary(max_size=4).map(lambda b: b"\x74" + lib0.buf(b)),
)
ANY = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: b"\x75" + lib0.uint(len(xs)) + b"".join(xs)),
        st.dictionaries(st.text(max_size=3), inner, max_size=3).map(
            lambda d: (
                b"\x76" + lib0.uint(len(d)) + b"".join(lib0.string(k) + v for k, v in d.items())
            )
        ),
    ),
    max_leaves=8,
)


@st.composite
def editor_updates(draw: st.DrawFn) -> bytes:
    """One client's one item, mostly with origins and String or Any content, and a few delete
    ranges (mostly none or one of its own): the fast lane's input, at and past every bound."""
    client = draw(st.sampled_from([*CLIENTS, 2**52 + 12345, 2**52 + 12345]))
    flags = draw(st.sampled_from([0x80, 0x40, 0xC0, 0x80, 0xC0, 0x00])) | draw(
        st.sampled_from([0, 0x20])
    )
    content = draw(st.sampled_from([4, 8, 4, 8, 1, 6, 7]))
    body = b""
    for _ in range(bin(flags & 0xC0).count("1")):
        body += lib0.uint(draw(st.sampled_from([client, *CLIENTS])))
        body += lib0.uint(draw(A_CLOCK))
    if not flags & 0xC0:
        body += b"\x01" + lib0.string("m") if draw(st.booleans()) else b"\x00\x05\x01"
        body += lib0.string("k") if flags & 0x20 else b""
    if content == 4:
        body += lib0.string(draw(st.text(max_size=5)))
    elif content == 8:
        values = draw(st.lists(ANY, max_size=3))
        body += lib0.uint(len(values)) + b"".join(values)
    else:
        body += draw(st.sampled_from([b"\x02", b"\x01", b"\x00"]))
    item = bytes([flags | content]) + body
    ranges = draw(
        st.sampled_from([[], [], [client], [client], [client, client], [NEW_CLIENT], [2**53]])
    )
    deletes = lib0.uint(len(ranges))
    for target in ranges:
        deletes += lib0.uint(target) + b"\x01"
        deletes += lib0.uint(draw(A_CLOCK)) + lib0.uint(draw(st.integers(0, 3)))
    return lib0.update((client, draw(A_CLOCK), [item]), deletes=deletes)


def _outcome(scan_of: Any, data: bytes, limits: Limits) -> Any:
    try:
        scan: UpdateScan = scan_of(data, limits)
    except ProtocolError as exc:
        return "refused", exc.reason, str(exc), exc.close_code
    return {name: getattr(scan, name) for name in UpdateScan.__slots__}


def _assert_same_scan(data: bytes) -> None:
    for limits in (LIMITS, TIGHT):
        assert _outcome(scan_update, data, limits) == _outcome(update._scan_all, data, limits)


@settings(max_examples=1500, deadline=None)
@given(editor_updates())
def test_the_fast_lane_scans_as_the_general_way(data: bytes) -> None:
    _assert_same_scan(data)


@settings(max_examples=1500, deadline=None)
@given(editor_updates(), st.lists(MUTATION, min_size=1, max_size=3))
def test_the_fast_lane_refuses_garbled_bytes_as_the_general_way(
    data: bytes, mutations: list[tuple[str, int, Any]]
) -> None:
    _assert_same_scan(mutate(data, mutations))


@st.composite
def deletions(draw: st.DrawFn) -> bytes:
    """No structs, one client's delete ranges (mostly one: a backspace), at and past bounds."""
    ranges = draw(st.sampled_from([1, 1, 1, 0, 2]))
    out = b"\x00\x01" + lib0.uint(draw(st.sampled_from(CLIENTS))) + lib0.uint(ranges)
    for _ in range(ranges):
        out += lib0.uint(draw(A_CLOCK)) + lib0.uint(draw(st.integers(0, 3) | A_CLOCK))
    return out


@settings(max_examples=800, deadline=None)
@given(deletions(), st.lists(MUTATION, max_size=2))
def test_the_deletion_fast_lane_scans_as_the_general_way(
    data: bytes, mutations: list[tuple[str, int, Any]]
) -> None:
    _assert_same_scan(mutate(data, mutations))


@settings(max_examples=500, deadline=None)
@given(st.sampled_from([b"\x01\x01", b"\x00\x01"]), st.binary(max_size=40))
def test_the_fast_lanes_refuse_random_bytes_as_the_general_way(head: bytes, tail: bytes) -> None:
    _assert_same_scan(head + tail)


def _edits() -> list[bytes]:
    doc: Doc[Any] = Doc(client_id=2**52 + 99)
    sent: list[bytes] = []
    doc.observe(lambda event: sent.append(event.update))
    text = doc.get("t", type=Text)
    values = doc.get("m", type=Map)
    for n in range(3):
        text.insert(len(text), "x")  # a keystroke
        text.insert(0, "é😀")  # before everything: a right origin only
        text.insert(1, "lorem ipsum " * 20)  # a paste between two
        values["k"] = {"n": n, "t": 1.5, "s": "é", "l": [None, True, -70000]}  # and a deletion
        del text[len(text) - 1]  # a backspace
    return sent


def test_what_editors_send_takes_the_fast_lane() -> None:
    # The first of each kind names its parent: the general way's; the rest are fast.
    edits = _edits()[5:]
    assert edits
    for data in edits:
        lane = update._scan_one if data[0] else update._scan_deletion
        assert lane(data, LIMITS) is not None, data.hex()
        _assert_same_scan(data)


@st.composite
def one_item_cases(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A letter, and an update of one item referring to what it has, or not."""
    base = draw(st.sampled_from(BASES))
    sv = check_state_vector(state_vector(base), LIMITS)
    ids = [(client, clock) for client, end in sv.items() for clock in range(end)]
    ids = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=4, unique=True))
    ids.append((NEW_CLIENT + 1, 0))  # a clock nobody has
    client = draw(st.sampled_from([NEW_CLIENT, *sv]))
    first = sv.get(client, 0)
    one = draw(structs(ids, client, first))[:1]
    return base, lib0.update((client, first, one))


@settings(max_examples=800, deadline=None)
@given(one_item_cases(), st.sampled_from(list(Missing)))
def test_one_item_resolves_and_runs_as_the_general_way(
    case: tuple[bytes, bytes], missing: Missing
) -> None:
    base, data = case
    letter = DocShape.from_update(base)
    scan = scan_update(data, LIMITS)
    outcomes: list[Any] = []
    for resolve in (depth.resolve, depth._resolve_all):
        try:
            outcomes.append(resolve(scan, letter._known_at, missing, letter.doc_field))
        except ProtocolError as exc:
            outcomes.append((exc.reason, str(exc), exc.struct))
    assert outcomes[0] == outcomes[1]
    if isinstance(outcomes[0][0], list):
        codes, slots = outcomes[0]
        assert shape._runs(scan, codes, slots) == shape._runs_all(scan, codes, slots)


_ODD_ANY = [
    b"\x7d\x80\x00",  # an overlong varInt
    b"\x7d\x80\x01",  # the smallest two-byte one
    b"\x7d\xc0\x7f",  # negative, two bytes
    b"\x7d\x80\x80\x01",  # three bytes
    b"\x7d\xff\xff\xff\xff\xff\xff\xff\xff\x7f",  # past 2**53
    b"\x7d\x80",  # truncated
    b"\x77\x80\x00",  # an overlong string length
    b"\x77\x02\xc3\x28",  # invalid UTF-8
    b"\x77\x03\xed\xa0\x80",  # an encoded surrogate
    b"\x76\x01\x01\xff\x7e",  # a key of invalid UTF-8
    b"\x76\x01\x01",  # an object past the end
    b"\x76\x02\x01k\x7e",  # an object's count past its bytes
    b"\x75\x80\x00",  # an overlong count
    b"\x75\x01\x75\x01\x75\x01\x7e",  # three deep: past TIGHT's depth
    b"\x75\x01\x75\x00",  # two deep, the inner one empty
    b"\x75\x00",
    b"\x73",  # an unknown tag
    b"\x7c\x00\x00\x00",  # a float past the end
    b"\x74\x02\x00",  # a buffer past the end
]


def test_odd_any_values_are_read_as_the_general_way_reads_them() -> None:
    for value in _ODD_ANY:
        item = b"\x88" + lib0.uint(2**52 + 1) + b"\x05\x01" + value
        _assert_same_scan(lib0.update((2**52 + 1, 6, [item])))
        _assert_same_scan(lib0.update((2**52 + 1, 6, [item + value])))
