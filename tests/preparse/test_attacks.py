"""Every measured attack from issue 9 is refused with ProtocolError, its reason, and fast.

None of these bytes is ever given to pycrdt: the nested-Any update segfaults it.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import Doc, Map

from gateway.preparse import (
    DocShape,
    Limits,
    ProtocolError,
    check_awareness,
    check_state_vector,
    check_update,
    parse_frame,
)
from tests.preparse.hostile_updates import CLIENT, map_chain_update, nested_any

from . import lib0

LIMITS = Limits()


def refused(call: Callable[[], object], reason: str, max_calls: int = 2_000) -> ProtocolError:
    """Assert `call` raises ProtocolError(reason) after at most `max_calls` function calls.

    Calls (Python and C, counted with sys.setprofile) measure the work done, as a clock on a
    shared CI machine cannot: a refusal that read as far as a claimed count or length would
    make thousands or millions of them. Timings are in docs/security.md."""
    calls = 0

    def count(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        calls += event in ("call", "c_call")

    # Garbage of earlier tests is collected first: a collection during the call would run
    # their finalizers inside it (352 calls in one CI run, and a 100 ms stall before that).
    gc.collect()
    gc.disable()
    sys.setprofile(count)
    try:
        with pytest.raises(ProtocolError) as caught:
            call()
    finally:
        sys.setprofile(None)
        gc.enable()
    assert caught.value.reason == reason, caught.value
    assert calls <= max_calls, f"{calls} calls before the refusal"
    return caught.value


@pytest.mark.parametrize("tag", [117, 118])
@pytest.mark.parametrize("depth", [65, 13_000, 30_000])
def test_nested_any_is_refused(depth: int, tag: int) -> None:
    frame = parse_frame(lib0.sync(2, nested_any(depth, tag)), LIMITS)
    error = refused(lambda: check_update(frame.body, LIMITS), "depth_exceeded")
    assert error.close_code == 4400


def test_nested_any_at_the_limit_is_accepted() -> None:
    assert check_update(nested_any(64, 117), LIMITS).blocks == ((CLIENT, 0, 1),)


@pytest.mark.parametrize("content", [5, 6])  # Embed, Format: JSON text parsed by Yrs
def test_deep_json_content_is_refused(content: int) -> None:
    deep = "[" * 5000 + "]" * 5000
    payload = (lib0.string("bold") if content == 6 else b"") + lib0.string(deep)
    struct = bytes([content]) + lib0.uint(1) + lib0.string("t") + payload
    refused(lambda: check_update(lib0.update((CLIENT, 0, [struct])), LIMITS), "depth_exceeded")


def test_map_chain_over_small_updates_is_refused_at_depth_65() -> None:
    shape = DocShape()
    # Root "m" is depth 1: levels 0..62 are types of depth 2..64.
    for level in range(63):
        info = shape.accept(map_chain_update(level), LIMITS)
        assert info.new_type_depth == level + 2
    refused(lambda: shape.check(map_chain_update(63), LIMITS), "depth_exceeded")
    assert shape.known_clock(CLIENT) == 63  # the refused update was not recorded


def test_map_chain_survives_reload_from_full_state() -> None:
    structs = [lib0.map_in_root("m", "k")]
    structs += [lib0.map_in_parent(CLIENT, level - 1, "k") for level in range(1, 63)]
    shape = DocShape.from_update(lib0.update((CLIENT, 0, structs)))
    refused(lambda: shape.check(map_chain_update(63), LIMITS), "depth_exceeded")


def test_map_chain_inside_one_update_is_refused_without_shape() -> None:
    structs = [lib0.map_in_root("m", "k")]
    structs += [lib0.map_in_parent(CLIENT, level - 1, "k") for level in range(1, 20_000)]
    update = lib0.update((CLIENT, 0, structs))
    # Read whole before the depth is known: linear, ~34 calls per struct (quadratic: 10^8).
    refused(lambda: check_update(update, LIMITS), "depth_exceeded", max_calls=50 * len(structs))


def origin_chain_update(level: int) -> bytes:
    """Level l >= 1: an Any entry inside map l-1 (parent by id), then map l placed after that
    entry (origin): its parent is copied from the origin, so it nests one level deeper."""
    entry = bytes([0x28]) + b"\x00" + lib0.uint(CLIENT) + lib0.uint(2 * level - 2)
    entry += lib0.string("k") + b"\x01\x7e"  # one Any: null
    nested = bytes([0x87]) + lib0.uint(CLIENT) + lib0.uint(2 * level - 1) + b"\x01"
    return lib0.update((CLIENT, 2 * level - 1, [entry, nested]))


def test_map_chain_via_origins_is_refused() -> None:
    shape = DocShape()
    shape.accept(map_chain_update(0), LIMITS)
    for level in range(1, 63):
        assert shape.accept(origin_chain_update(level), LIMITS).new_type_depth == level + 2
    refused(lambda: shape.check(origin_chain_update(63), LIMITS), "depth_exceeded")


def test_crafted_chains_really_nest_in_pycrdt() -> None:
    # Shallow versions only: the point is that the bytes mean what the tests above assume.
    by_parent: Doc[Any] = Doc()
    by_origin: Doc[Any] = Doc()
    by_origin.apply_update(map_chain_update(0))
    for level in range(5):
        by_parent.apply_update(map_chain_update(level))
        if level:
            by_origin.apply_update(origin_chain_update(level))
    nested: dict[str, Any] = {"k": {"k": {"k": {"k": {"k": {}}}}}}
    assert by_parent.get("m", type=Map).to_py() == nested
    assert by_origin.get("m", type=Map).to_py() == nested


def test_huge_state_vector_count_is_refused_instantly() -> None:
    frame = b"\x00\x00\x05" + lib0.uint(2**29)
    assert len(frame) == 8
    body = parse_frame(frame, LIMITS).body
    error = refused(lambda: check_state_vector(body, LIMITS), "too_many_sv_entries", max_calls=100)
    assert error.close_code == 4413
    plausible = lib0.uint(50_000) + b"\x01\x01"
    refused(lambda: check_state_vector(plausible, LIMITS), "count_exceeds_data", max_calls=100)


def test_huge_clients_count_is_refused_instantly() -> None:
    header = lib0.uint(2**27) + b"\x00"
    assert len(header) == 5
    refused(lambda: check_update(header, LIMITS), "too_many_clients", max_calls=100)
    refused(lambda: check_update(lib0.uint(5000) + b"\x00" * 10, LIMITS), "count_exceeds_data")


@pytest.mark.parametrize(
    "frame",
    [
        b"\xff" * 200_000,
        b"\x01" + b"\xff" * 200_000,
        b"\x00\x02" + b"\xff" * 200_000,
    ],
    ids=["message_type", "awareness_length", "sync_length"],
)
def test_200kb_of_0xff_as_a_frame_is_refused_in_microseconds(frame: bytes) -> None:
    refused(lambda: parse_frame(frame, LIMITS), "varint_too_long", max_calls=100)


def test_200kb_of_0xff_as_a_body_is_refused_in_microseconds() -> None:
    junk = b"\xff" * 200_000
    awareness = parse_frame(lib0.awareness_frame(junk), LIMITS).body
    refused(lambda: check_awareness(awareness, LIMITS), "varint_too_long", max_calls=100)
    update = parse_frame(lib0.sync(2, junk), LIMITS).body
    refused(lambda: check_update(update, LIMITS), "varint_too_long", max_calls=100)
    refused(lambda: check_state_vector(junk, LIMITS), "varint_too_long", max_calls=100)


def test_ten_megabyte_frame_is_refused_as_too_large() -> None:
    error = refused(lambda: parse_frame(b"\x00\x02" + b"\x00" * 10_000_000, LIMITS),
                    "message_too_large")  # fmt: skip
    assert error.close_code == 4413


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"", "truncated"),
        (b"\x00", "truncated"),
        (b"\x00\x02\x80", "truncated"),
        (b"\x00\x02\x64\x00\x00", "truncated"),  # 100 bytes announced, 2 present
        (b"\x01\xff\xff\x03abc", "truncated"),
        (b"\x05", "unknown_message_type"),
        (b"\x00\x03\x00", "unknown_sync_type"),
        (b"\x00\x02\x02\x00\x00\x00", "trailing_bytes"),
        (b"\x03\x00", "trailing_bytes"),
        (b"\x02\x01\x00", "unknown_auth_type"),
        (b"\x64\x03{]}", "invalid_json"),
        (b"\x64\x02\xc3\x28", "invalid_utf8"),
    ],
)
def test_malformed_frames(frame: bytes, reason: str) -> None:
    assert refused(lambda: parse_frame(frame, LIMITS), reason).close_code in (4400, 4413)


ROOT_TEXT = bytes([0x04]) + lib0.uint(1) + lib0.string("t")


@pytest.mark.parametrize(
    ("update", "reason"),
    [
        (b"", "truncated"),
        (b"\x00", "truncated"),
        (b"\x00\x00\x00", "trailing_bytes"),
        (lib0.update((CLIENT, 0, [ROOT_TEXT + lib0.string("ab")])) + b"\x00", "trailing_bytes"),
        (lib0.update((CLIENT, 0, [ROOT_TEXT + b"\x05ab"])), "truncated"),
        (lib0.update((CLIENT, 0, [ROOT_TEXT + b"\x02\xed\xa0"])), "invalid_utf8"),  # surrogate
        (lib0.update((CLIENT, 0, [ROOT_TEXT + b"\x02\xc3\x28"])), "invalid_utf8"),
        (lib0.update((CLIENT, 0, [b"\x0b"])), "unknown_struct"),
        (lib0.update((CLIENT, 0, [b"\x04\x02"])), "bad_parent_info"),
        (lib0.update((CLIENT, 0, [b"\x07\x01\x01t\x07"])), "unknown_type_ref"),
        (lib0.update((CLIENT, 0, [b"\x08\x01\x01t\x01\x73"])), "unknown_any_tag"),
        (lib0.update((CLIENT, 0, [b"\x02\x01\x01t\x01\x011"])), "unsupported_content"),
        (lib0.update((CLIENT, 0, [b"\x06\x01\x01t\x01b\x03NaN"])), "invalid_json"),
        (lib0.update((CLIENT, 0, [b"\x05\x01\x01t\x03{]}"])), "invalid_json"),
        (lib0.update((CLIENT, 0, [b"\x07\x01\x01t\x05\x01h"])), "unknown_type_ref"),  # hook
        (lib0.update((CLIENT, 0, [b"\x80\x01"])), "bad_struct_info"),
        (lib0.update((CLIENT, 0, [b"\x4a\x01"])), "bad_struct_info"),
        (lib0.update((CLIENT, 0, [b"\x00\x81\x00"])), "varint_overlong"),
        (
            lib0.update((CLIENT, 0, [ROOT_TEXT + b"\x01a", lib0.map_in_parent(CLIENT, 0, "k")])),
            "invalid_parent",
        ),
        (lib0.update((CLIENT, 0, [b"\x00\x01"]), (CLIENT, 1, [b"\x00\x01"])), "duplicate_client"),
        (lib0.update((CLIENT, 2**32 - 2**20, [b"\x00\x01"])), "clock_too_large"),
        (lib0.update((2**53, 0, [b"\x00\x01"])), "integer_too_large"),
        (b"\x00\x01" + lib0.uint(CLIENT) + b"\x01" + lib0.uint(2**32) + b"\x01", "clock_too_large"),
        (b"\x01\x00\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", "varint_too_long"),
    ],
)
def test_malformed_updates(update: bytes, reason: str) -> None:
    refused(lambda: check_update(update, LIMITS), reason)


def test_cyclic_references_are_refused() -> None:
    # An item whose origin is itself: Yjs would wait on it forever.
    update = lib0.update((CLIENT, 0, [lib0.string_item(CLIENT, 0, "x")]))
    refused(lambda: check_update(update, LIMITS), "reference_cycle")


def test_clock_gap_and_missing_dependency_need_a_shape() -> None:
    far = lib0.update((CLIENT, 2_000_000, [ROOT_TEXT + lib0.string("a")]))
    assert check_update(far, LIMITS).blocks == ((CLIENT, 2_000_000, 2_000_001),)
    refused(lambda: DocShape().check(far, LIMITS), "clock_gap")
    # A hole of one clock is one too: pycrdt would integrate what follows it, Yjs hold it back.
    shape = DocShape.from_update(lib0.update((CLIENT, 0, [ROOT_TEXT + lib0.string("ab")])))
    next_one = lib0.update((CLIENT, 3, [ROOT_TEXT + lib0.string("c")]))
    assert refused(lambda: shape.check(next_one, LIMITS), "clock_gap").struct == (CLIENT, 3)
    assert shape.check(lib0.update((CLIENT, 2, [ROOT_TEXT + lib0.string("c")])), LIMITS).blocks
    # So is a hole inside a block: a Skip (a merge of updates with a gap) the letter lacks.
    skip = b"\x0a" + lib0.uint(2)
    skipped = lib0.update((CLIENT, 1, [ROOT_TEXT + lib0.string("b"), skip, ROOT_TEXT + b"\x01d"]))
    assert refused(lambda: shape.check(skipped, LIMITS), "clock_gap").struct == (CLIENT, 4)
    covered = lib0.update((CLIENT, 0, [skip, ROOT_TEXT + lib0.string("c")]))
    assert shape.check(covered, LIMITS).blocks == ((CLIENT, 0, 3),)
    dangling = lib0.update((CLIENT, 0, [lib0.string_item(777, 5, "x")]))
    assert check_update(dangling, LIMITS).blocks == ((CLIENT, 0, 1),)
    refused(lambda: DocShape().check(dangling, LIMITS), "missing_dependency")


def test_awareness_clock_of_2_to_the_64_is_refused() -> None:
    update = lib0.uint(1) + lib0.uint(CLIENT) + lib0.uint(2**64) + lib0.string("{}")
    refused(lambda: check_awareness(update, LIMITS), "awareness_clock_too_large")
    near = lib0.awareness((CLIENT, 2**53 + 1, "{}"))
    refused(lambda: check_awareness(near, LIMITS), "awareness_clock_too_large")
    assert check_awareness(lib0.awareness((CLIENT, 2**53 - 1, "{}")), LIMITS)[0].clock


def test_awareness_state_over_4_kib_is_refused() -> None:
    state = '{"name": "' + "x" * 4100 + '"}'
    error = refused(
        lambda: check_awareness(lib0.awareness((CLIENT, 1, state)), LIMITS),
        "awareness_state_too_large",
    )
    assert error.close_code == 4413


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ("{not json", "invalid_json"),
        ('{"a": NaN}', "invalid_json"),
        ("[1, 2]", "awareness_state_not_object"),
        ('{"a": ' + "[" * 100 + "]" * 100 + "}", "depth_exceeded"),
        ('{"a": ' + "[" * 2000 + "]" * 2000 + "}", "depth_exceeded"),
        ('{"a": "\\ud800"}', "invalid_utf8"),
    ],
)
def test_garbage_awareness_json_is_refused(state: str, reason: str) -> None:
    refused(lambda: check_awareness(lib0.awareness((CLIENT, 1, state)), LIMITS), reason)


def test_twenty_thousand_awareness_ids_are_refused() -> None:
    entries = [(client, 1, "null") for client in range(20_000)]
    update = lib0.awareness(*entries)
    refused(lambda: check_awareness(update, LIMITS), "too_many_awareness_entries")


def test_awareness_removal_and_trailing_bytes() -> None:
    [entry] = check_awareness(lib0.awareness((CLIENT, 3, "null")), LIMITS)
    assert entry.state is None
    update = lib0.awareness((CLIENT, 3, "null")) + b"\x00"
    refused(lambda: check_awareness(update, LIMITS), "trailing_bytes")
