"""Bounded, deterministic mutation fuzz: only ProtocolError escapes, and what is accepted is safe.

Seeds are real messages (pycrdt edits wrapped in y-protocol frames, plus hand-made content kinds
pycrdt never writes); hypothesis mutates them. An update the pre-parser accepts must then apply to
a fresh pycrdt Doc without raising anything (PanicException derives from BaseException).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pycrdt import Awareness, Doc, create_awareness_message, create_sync_message

from gateway.preparse import (
    DocShape,
    Limits,
    ProtocolError,
    check_awareness,
    check_state_vector,
    check_update,
    parse_frame,
)

from . import lib0
from .mutations import MUTATION, mutate
from .seeds import EDITS, FUZZ, SEEDS, assert_applies, record

LIMITS = Limits()


def _seed_awareness() -> list[bytes]:
    doc: Doc[Any] = Doc()
    awareness = Awareness(doc)
    awareness.set_local_state({"user": {"name": "Ann"}, "cursor": {"anchor": [1, 2]}})
    return [
        awareness.encode_awareness_update([doc.client_id]),
        lib0.awareness((5, 7, "null"), (6, 1, '{"a": [true, null, 1.5]}')),
    ]


UPDATES = [update for _base, update in SEEDS]
AWARENESS = _seed_awareness()
FRAMES = (
    [lib0.sync(2, update) for update in UPDATES]
    + [lib0.sync(1, update) for update in UPDATES[:5]]
    + [create_sync_message(record(EDITS["text"])[0])]
    + [create_awareness_message(payload) for payload in AWARENESS]
    + [b"\x03", b"\x64" + lib0.string('{"type": "x"}')]
)


@FUZZ
@given(st.sampled_from(SEEDS), st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_updates(seed: tuple[bytes, bytes], mutations: list[tuple[str, int, Any]]) -> None:
    """Checked as the gateway does, against the letter's shape; then applied on that state."""
    base, original = seed
    update = mutate(original, mutations)
    shape = DocShape.from_update(base) if base else DocShape()
    try:
        shape.check(update, LIMITS)
    except ProtocolError:
        return
    assert_applies(update, base)


@FUZZ
@given(st.sampled_from(UPDATES), st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_updates_without_shape(seed: bytes, mutations: list[tuple[str, int, Any]]) -> None:
    update = mutate(seed, mutations)
    try:
        check_update(update, LIMITS)
        DocShape.from_update(update)
    except ProtocolError:
        return
    assert_applies(update)


@FUZZ
@given(st.sampled_from(FRAMES), st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_frames(seed: bytes, mutations: list[tuple[str, int, Any]]) -> None:
    try:
        frame = parse_frame(mutate(seed, mutations), LIMITS)
        if frame.kind == "sync_step1":
            check_state_vector(frame.body, LIMITS)
        elif frame.kind == "awareness":
            check_awareness(frame.body, LIMITS)
        elif frame.kind in ("sync_step2", "sync_update"):
            check_update(frame.body, LIMITS)
            assert_applies(frame.body)
    except ProtocolError:
        pass


@FUZZ
@given(st.sampled_from(AWARENESS), st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_awareness(seed: bytes, mutations: list[tuple[str, int, Any]]) -> None:
    try:
        entries = check_awareness(mutate(seed, mutations), LIMITS)
    except ProtocolError:
        return
    for entry in entries:
        assert entry.clock <= LIMITS.max_awareness_clock
        assert entry.state is None or isinstance(entry.state, dict)
