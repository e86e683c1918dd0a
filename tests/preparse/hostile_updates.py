"""Hostile Yjs updates the pre-parser must refuse, built byte by byte (lib0.py): deep nesting
and chains of types."""

from __future__ import annotations

from . import lib0

CLIENT = 1234


def nested_any(depth: int, tag: int) -> bytes:
    """An update whose one Map entry holds an Any array (117) or object (118) `depth` deep."""
    level = bytes([tag]) + lib0.uint(1) + (lib0.string("k") if tag == 118 else b"")
    value = level * depth + b"\x7f"  # ... then undefined
    struct = bytes([0x28]) + lib0.uint(1) + lib0.string("m") + lib0.string("k") + b"\x01" + value
    return lib0.update((CLIENT, 0, [struct]))


def map_chain_update(level: int) -> bytes:
    """Level 0: a Y.Map under root "m"; level n: a Y.Map inside the one of level n - 1."""
    if level == 0:
        struct = lib0.map_in_root("m", "k")
    else:
        struct = lib0.map_in_parent(CLIENT, level - 1, "k")
    return lib0.update((CLIENT, level, [struct]))
