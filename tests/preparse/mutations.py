"""Byte mutations of y-protocol messages for the fuzz tests: a Hypothesis strategy of edits and
what applies them."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

MUTATION = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.binary(min_size=1, max_size=12)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 12)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("varint"), st.integers(0, 10_000), st.sampled_from([0x7F, 0xFF, 0x80])),
)


def mutate(data: bytes, mutations: list[tuple[str, int, Any]]) -> bytes:
    out = bytearray(data)
    for op, where, arg in mutations:
        at = where % (len(out) + 1)
        if op == "set" and out:
            out[at % len(out)] = arg
        elif op == "insert":
            out[at:at] = arg
        elif op == "delete":
            del out[at : at + arg]
        elif op == "truncate":
            del out[at:]
        elif op == "varint":  # a run of continuation bytes: stresses every length field
            out[at:at] = bytes([arg]) * 11
    return bytes(out)
