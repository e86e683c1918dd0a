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
# Random bytes are read from the OS 4 KiB at a time: one getrandom per id cost ~4 % of the
# gateway's CPU under load (syscalls are dear in a VM). A forked child must not reuse the
# parent's pool, or both would hand out the same random bits.
_POOL_BYTES = 4096
_pool = b""
_at = 0


def _reset_pool() -> None:
    global _pool, _at
    _pool, _at = b"", 0


os.register_at_fork(after_in_child=_reset_pool)


def uuid7() -> str:
    """A UUIDv7 string; ids made in one process are strictly increasing."""
    global _last_ms, _seq, _pool, _at
    with _lock:
        # 10 random bytes per id: 2 seed a new millisecond's counter, 8 go to rand_b.
        if _at + 10 > len(_pool):
            _pool, _at = os.urandom(_POOL_BYTES), 0
        rand = int.from_bytes(_pool[_at : _at + 10], "big")
        _at += 10
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
