"""The pre-parser's shortcuts for what editors send give what the general ways give: an update of
one client's structs weighed without the sets of every cut (gateway/wire/splits.py), a deleted
range recorded after the client's last in O(1) (gateway/wire/deleted.py), a client id's varint
looked up instead of decoded (gateway/wire/reader.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.preparse import DocShape, Limits, ProtocolError, check_state_vector
from gateway.wire import splits, strip
from gateway.wire.deleted import DeletedClocks
from gateway.wire.reader import MAX_SAFE_INTEGER, Reader
from gateway.wire.update import scan_update

from . import lib0
from .structured import BASES, NEW_CLIENT, state_vector, structs

LIMITS = Limits()


@st.composite
def one_client_updates(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A letter, and an update of at most one client's structs with a few delete ranges: of
    the letter's clients, of the update's own clocks, past either, empty."""
    base = draw(st.sampled_from(BASES))
    sv = check_state_vector(state_vector(base), LIMITS)
    known = [(client, clock) for client, end in sv.items() for clock in range(end)]
    ids = draw(st.lists(st.sampled_from(known), min_size=1, max_size=8, unique=True))
    client = draw(st.sampled_from([NEW_CLIENT, *sv]))
    first = max(0, sv.get(client, 0) + draw(st.sampled_from([0, 0, -1, -3, -9, 1])))
    blocks = (
        [] if draw(st.integers(0, 4)) == 0 else [(client, first, draw(structs(ids, client, first)))]
    )
    ranges: dict[int, list[tuple[int, int]]] = {}
    for _ in range(draw(st.integers(0, 4))):
        target = draw(st.sampled_from([client, *sv]))
        end = max(sv.get(target, 0), first + 6 if target == client else 0)
        clock = draw(st.integers(0, end + 1))
        ranges.setdefault(target, []).append((clock, draw(st.integers(0, 3))))
    deletes = lib0.uint(len(ranges))
    for target, spans in ranges.items():
        deletes += lib0.uint(target) + lib0.uint(len(spans))
        deletes += b"".join(lib0.uint(clock) + lib0.uint(length) for clock, length in spans)
    return base, lib0.update(*blocks, deletes=deletes)


@settings(max_examples=400, deadline=None)
@given(one_client_updates())
def test_one_client_s_split_cost_is_the_general_way_s(case: tuple[bytes, bytes]) -> None:
    base, update = case
    shape = DocShape.from_update(base)
    scan = scan_update(update, LIMITS)
    assert len(scan.blocks) <= 1
    fast = splits.split_cost(scan, shape.known_clock, shape.items_of)
    assert fast == splits._any_clients(scan, shape.known_clock, shape.items_of)


@st.composite
def backspaces(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A letter, and an update deleting one range of one of its clients (or past its end)."""
    base = draw(st.sampled_from(BASES))
    sv = check_state_vector(state_vector(base), LIMITS)
    client = draw(st.sampled_from([NEW_CLIENT, *sv]))
    end = sv.get(client, 0)
    clock, length = draw(st.integers(0, end + 1)), draw(st.integers(0, 3))
    return base, b"\x00\x01" + lib0.uint(client) + b"\x01" + lib0.uint(clock) + lib0.uint(length)


@settings(max_examples=200, deadline=None)
@given(backspaces())
def test_one_range_s_split_cost_is_the_general_way_s(case: tuple[bytes, bytes]) -> None:
    base, update = case
    shape = DocShape.from_update(base)
    scan = scan_update(update, LIMITS)
    fast = splits.split_cost(scan, shape.known_clock, shape.items_of)
    assert fast == splits._any_clients(scan, shape.known_clock, shape.items_of)


@st.composite
def map_sets(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A letter, and an update of one struct continuing one of its clients (a keystroke, a
    Y.Map value set again) that deletes a range of that client's, or of another's."""
    base = draw(st.sampled_from(BASES))
    sv = check_state_vector(state_vector(base), LIMITS)
    client = draw(st.sampled_from(sorted(sv)))
    first = sv[client]
    target = client if draw(st.integers(0, 3)) else draw(st.sampled_from(sorted(sv)))
    clock, length = draw(st.integers(0, first + 3)), draw(st.integers(0, 3))
    deletes = b"\x01" + lib0.uint(target) + b"\x01" + lib0.uint(clock) + lib0.uint(length)
    text = draw(st.sampled_from(["x", "xyz"]))
    struct = lib0.string_item(client, first - 1, text)
    return base, lib0.update((client, first, [struct]), deletes=deletes)


@settings(max_examples=300, deadline=None)
@given(map_sets())
def test_a_map_set_s_split_cost_is_the_general_way_s(case: tuple[bytes, bytes]) -> None:
    base, update = case
    shape = DocShape.from_update(base)
    scan = scan_update(update, LIMITS)
    fast = splits.split_cost(scan, shape.known_clock, shape.items_of)
    assert fast == splits._any_clients(scan, shape.known_clock, shape.items_of)


_RANGES = st.lists(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 60), st.integers(0, 6)), max_size=40),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(_RANGES)
def test_deleted_clocks_are_what_was_recorded(batches: list[list[tuple[int, int, int]]]) -> None:
    # Batches of one (the O(1) way at the end), a few (inserted) and many (merged), in any order.
    recorded, model = DeletedClocks(), {0: set[int](), 1: set[int]()}
    for batch in batches:
        recorded.record(batch, lambda _client: 50)  # past 50: pending, not recorded
        for client, clock, length in batch:
            model[client].update(range(clock, min(clock + length, 50)))
    for client, clocks in model.items():
        spans = recorded._clients.get(client)
        starts, ends = (list(spans.starts), list(spans.ends)) if spans else ([], [])
        assert {c for s, e in zip(starts, ends, strict=True) for c in range(s, e)} == clocks
        assert all(s < e for s, e in zip(starts, ends, strict=True))
        assert all(e < s for e, s in zip(ends, starts[1:], strict=False))  # apart, not touching
        for clock in range(52):
            assert recorded.covers(client, clock, 1) == (clock in clocks)
    assert recorded.spans == sum(len(s.starts) for s in recorded._clients.values())


@given(st.lists(st.integers(0, MAX_SAFE_INTEGER), min_size=1, max_size=20))
def test_varints_read_again_read_the_same(values: list[int]) -> None:
    data = b"".join(lib0.uint(v) for v in values * 2)  # the second time, looked up
    r = Reader(data)
    assert [r.uint() for _ in range(len(values) * 2)] == values * 2
    r.expect_end()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (lib0.uint(MAX_SAFE_INTEGER + 1), "integer_too_large"),
        (b"\xff" * 7 + b"\x00", "varint_overlong"),
        (b"\xff" * 7, "truncated"),
        (b"\xff" * 11, "varint_too_long"),
    ],
)
def test_a_refused_varint_is_refused_again(data: bytes, reason: str) -> None:
    for _ in range(2):
        with pytest.raises(ProtocolError) as refused:
            Reader(data).uint()
        assert refused.value.reason == reason


def test_a_client_id_s_varint_cut_short_is_not_taken_for_the_whole() -> None:
    whole = lib0.uint(2**52 + 12345)
    assert Reader(whole).uint() == 2**52 + 12345  # now looked up
    with pytest.raises(ProtocolError):
        Reader(whole[:-1]).uint()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(1, 4)), max_size=30),
    st.lists(
        st.tuples(st.sampled_from([7, 8]), st.integers(0, 50), st.integers(0, 5)), max_size=30
    ),
)
def test_many_ranges_sort_as_few_do(
    letter: list[tuple[int, int]], update: list[tuple[int, int, int]]
) -> None:
    # A step 2 of a long-edited letter's 200,000 ranges looks them up in the spans directly.
    shape = DocShape()
    shape._deleted.record([(7, clock, length) for clock, length in letter], lambda _c: 45)
    scan = scan_update(b"\x00\x00", LIMITS)
    scan.deletes = update
    few = strip.sort_deletes(scan, lambda _c: 45, shape.has_deleted)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(strip, "_MANY", 0)
        many = strip.sort_deletes(scan, lambda _c: 45, shape.has_deleted, shape._deleted.spans_of)
    assert many == few


@settings(max_examples=300, deadline=None)
@given(st.one_of(one_client_updates(), backspaces()))
def test_one_range_sorts_as_many_do(case: tuple[bytes, bytes]) -> None:
    base, update = case
    shape = DocShape.from_update(base)
    scan = scan_update(update, LIMITS)
    general = strip._sort_many(scan, shape.known_clock, shape.has_deleted, None)
    assert strip.sort_deletes(scan, shape.known_clock, shape.has_deleted) == general
