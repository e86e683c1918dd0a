"""A minimal lib0 encoder for crafting hostile y-protocol bytes in tests."""

from __future__ import annotations


def uint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out)


def buf(data: bytes) -> bytes:
    return uint(len(data)) + data


def string(text: str) -> bytes:
    return buf(text.encode())


def sync(sub: int, payload: bytes) -> bytes:
    """A y-protocol sync frame: 0 step1, 1 step2, 2 update."""
    return uint(0) + uint(sub) + buf(payload)


def awareness_frame(payload: bytes) -> bytes:
    return uint(1) + buf(payload)


def awareness(*entries: tuple[int, int, str]) -> bytes:
    out = uint(len(entries))
    for client, clock, state in entries:
        out += uint(client) + uint(clock) + string(state)
    return out


def update(*blocks: tuple[int, int, list[bytes]], deletes: bytes = b"\x00") -> bytes:
    """A v1 update from (client, first clock, [struct bytes]) blocks; empty delete set."""
    out = uint(len(blocks))
    for client, clock, structs in blocks:
        out += uint(len(structs)) + uint(client) + uint(clock) + b"".join(structs)
    return out + deletes


def map_in_root(root: str, key: str) -> bytes:
    """A Y.Map item (content 7, typeRef 1) under root type `root`, at map key `key`."""
    return bytes([0x27]) + uint(1) + string(root) + string(key) + uint(1)


def map_in_parent(client: int, clock: int, key: str) -> bytes:
    """A Y.Map item whose parent is the type item (client, clock)."""
    return bytes([0x27]) + uint(0) + uint(client) + uint(clock) + string(key) + uint(1)


def string_item(client: int, origin_clock: int, text: str) -> bytes:
    """A String item (content 4) after (client, origin_clock)."""
    return bytes([0x84]) + uint(client) + uint(origin_clock) + string(text)
