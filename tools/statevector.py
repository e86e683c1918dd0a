"""Yjs state vectors compared as maps: their encoded order of clients is not canonical."""


def decode_state_vector(data: bytes) -> dict[int, int]:
    """client id -> clock of a Yjs v1 encoded state vector (varuint count, then pairs)."""
    values, number, shift = [], 0, 0
    for byte in data:
        number |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            values.append(number)
            number, shift = 0, 0
    pairs = values[1:]
    return dict(zip(pairs[::2], pairs[1::2], strict=True))
