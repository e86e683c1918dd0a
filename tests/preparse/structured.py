"""Well-formed updates with arbitrary references, built on the seeds' states (Hypothesis
strategies): byte mutation rarely yields one that points somewhere odd."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from pycrdt import Doc

from . import lib0
from .seeds import SEEDS

BASES = sorted({base for base, _update in SEEDS if base}, key=len)[:12]
NEW_CLIENT = 424242

_CONTENT = st.sampled_from(
    [
        b"\x04" + lib0.string("xy"),  # String
        b"\x08\x01\x7d\x05",  # Any: 5
        b"\x07\x01",  # Type: Map
        b"\x07\x02",  # Type: Text
        b"\x07\x03" + lib0.string("paragraph"),  # XmlElement
        b"\x07\x06",  # XmlText
        b"\x01\x02",  # Deleted, 2
        b"\x06" + lib0.string("bold") + lib0.string("true"),  # Format
        b"\x05" + lib0.string('{"image": 1}'),  # Embed
        b"\x03" + lib0.buf(b"\x01"),  # Binary
    ]
)


@st.composite
def structs(draw: st.DrawFn, ids: list[tuple[int, int]], client: int, first: int) -> list[bytes]:
    """1-4 structs for `client` from clock `first`, referring to `ids` or to each other."""
    out, clock = [], first
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.integers(0, 9)) == 0:
            out.append(draw(st.sampled_from([b"\x00\x01", b"\x0a\x01"])))  # GC, Skip
            clock += 1
            continue
        pool = ids + [(client, c) for c in range(first, clock)]
        content = draw(_CONTENT)
        length = 2 if content[0] in (1, 4) else 1
        left = draw(st.none() | st.sampled_from(pool)) if pool else None
        right = draw(st.none() | st.sampled_from(pool)) if pool else None
        info = content[0] | (0x80 if left else 0) | (0x40 if right else 0)
        body = b""
        for ref in (left, right):
            if ref:
                body += lib0.uint(ref[0]) + lib0.uint(ref[1])
        if not left and not right:
            parent = draw(st.none() | st.sampled_from(pool)) if pool else None
            body += (
                lib0.uint(0) + lib0.uint(parent[0]) + lib0.uint(parent[1])
                if parent
                else (lib0.uint(1) + lib0.string(draw(st.sampled_from(["default", "meta", "t"]))))
            )
            if draw(st.booleans()):
                info |= 0x20
                body += lib0.string("k")
        out.append(bytes([info]) + body + content[1:])
        clock += length
    return out


def state_vector(base: bytes) -> bytes:
    doc: Doc[Any] = Doc()
    doc.apply_update(base)
    return doc.get_state()
