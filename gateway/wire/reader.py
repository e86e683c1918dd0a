"""lib0 primitive decoding with hard bounds: varints of at most 10 bytes, lengths within the data.

pycrdt's own varint reader is quadratic (200 KB of 0xff stalls the loop for seconds); this one
touches each byte once and stops after 10 bytes.
"""

from __future__ import annotations

import re

from .limits import ProtocolError

MAX_VARINT_BYTES = 10
MAX_SAFE_INTEGER = 2**53 - 1
# A whole varint (continuation bytes, then a last one): found in C, its value then looked up.
# Client ids are random 53-bit numbers (8-byte varints, three in a Y.Map set) and the same few
# recur in every update of a letter: a byte-by-byte loop over them was the scan's top cost.
_VARINT = re.compile(rb"[\x80-\xff]{1,9}[\x00-\x7f]").match
_LONG_VALUES: dict[bytes, int] = {}
_MAX_LONG_VALUES = 4096  # then forgotten all at once: many distinct ids cost what no cache does


def uint_at(data: bytes, pos: int) -> tuple[int, int]:
    """A varUint of two bytes or more at `pos` (the caller reads one-byte ones itself) and the
    position after it, for the scanner's fast lane (gateway/wire/update.py); (-1, pos) for any
    that `Reader.uint` would refuse or that runs past the end: the general way then says why."""
    c = data[pos + 1] if pos + 1 < len(data) else 0
    if 0 < c < 0x80:
        return (data[pos] & 0x7F) | c << 7, pos + 2
    found = _VARINT(data, pos)
    if found is None:
        return -1, pos
    end = found.end()
    key = data[pos:end]
    value = _LONG_VALUES.get(key)
    if value is not None:
        return value, end
    if not key[-1]:  # overlong
        return -1, pos
    value = shift = 0
    for b in key:
        value |= (b & 0x7F) << shift
        shift += 7
    if value > MAX_SAFE_INTEGER:
        return -1, pos
    if value >> 28:  # as `Reader.uint` keeps them
        if len(_LONG_VALUES) >= _MAX_LONG_VALUES:
            _LONG_VALUES.clear()
        _LONG_VALUES[key] = value
    return value, end


class Reader:
    """A cursor over bytes; every read either succeeds within bounds or raises ProtocolError."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def remaining(self) -> int:
        return self.end - self.pos

    def byte(self) -> int:
        pos = self.pos
        if pos >= self.end:
            raise ProtocolError("truncated", "expected a byte")
        self.pos = pos + 1
        return self.data[pos]

    def uint(self) -> int:
        """lib0 varUint: a JS number, so at most 53 bits."""
        data, pos, end = self.data, self.pos, self.end
        if pos < end:
            b = data[pos]
            if b < 0x80:  # the common one-byte case, kept free of calls
                self.pos = pos + 1
                return b
            c = data[pos + 1] if pos + 1 < end else 0
            if 0 < c < 0x80:  # two bytes (a zero there is overlong: the careful way)
                self.pos = pos + 2
                return (b & 0x7F) | c << 7
            found = _VARINT(data, pos, end)
            if found is not None:
                value = _LONG_VALUES.get(data[pos : found.end()])
                if value is not None:  # only valid ones are kept
                    self.pos = found.end()
                    return value
        value = self._varint_tail(0, 1, 0)
        if value > MAX_SAFE_INTEGER:
            raise ProtocolError("integer_too_large", str(value))
        if value >> 28:  # five bytes or more: a client id, not a clock that changes each time
            if len(_LONG_VALUES) >= _MAX_LONG_VALUES:
                _LONG_VALUES.clear()
            _LONG_VALUES[data[pos : self.pos]] = value
        return value

    def uint_wide(self) -> int:
        """A varUint of up to 10 bytes (70 bits), for a caller that applies its own bound."""
        return self._varint_tail(0, 1, 0)

    def _varint_tail(self, value: int, shift_mult: int, count: int) -> int:
        data, pos, end = self.data, self.pos, self.end
        while count < MAX_VARINT_BYTES:
            if pos >= end:
                raise ProtocolError("truncated", "varint runs past the end")
            b = data[pos]
            pos += 1
            count += 1
            value += (b & 0x7F) * shift_mult
            if b < 0x80:
                if b == 0 and count > 1:  # overlong: no encoder writes it; Yrs may refuse it
                    raise ProtocolError("varint_overlong")
                self.pos = pos
                return value
            shift_mult <<= 7
        raise ProtocolError("varint_too_long")

    def deletes(self, client: int, n: int, max_clock: int, out: list[tuple[int, int, int]]) -> None:
        """`n` ranges of `client`'s deleted clocks (varUint clock, varUint length) onto `out`
        as (client, clock, length), refused as `uint` refuses them; past `max_clock`:
        `clock_too_large`. A delete set's bulk (250,000 ranges a message): one loop, varints of
        up to 3 bytes read inline, where two calls a range cost as much as all the rest."""
        data, end = self.data, self.end
        append = out.append
        for _ in range(n):
            pos = self.pos
            if pos + 6 > end:  # near the end: the careful way
                clock, length = self.uint(), self.uint()
            else:
                b, c, d = data[pos], data[pos + 1], data[pos + 2]
                if b < 0x80:
                    clock, pos = b, pos + 1
                elif 0 < c < 0x80:
                    clock, pos = (b & 0x7F) | c << 7, pos + 2
                elif c and 0 < d < 0x80:
                    clock, pos = (b & 0x7F) | (c & 0x7F) << 7 | d << 14, pos + 3
                else:
                    clock, pos = self.uint(), self.pos
                b, c, d = (
                    (data[pos], data[pos + 1], data[pos + 2]) if pos + 3 <= end else (0x80, 0, 0)
                )
                if b < 0x80:
                    length, self.pos = b, pos + 1
                elif 0 < c < 0x80:
                    length, self.pos = (b & 0x7F) | c << 7, pos + 2
                elif c and 0 < d < 0x80:
                    length, self.pos = (b & 0x7F) | (c & 0x7F) << 7 | d << 14, pos + 3
                else:  # longer, overlong, or past a long clock near the end
                    self.pos = pos
                    length = self.uint()
            if clock + length > max_clock:
                raise ProtocolError("clock_too_large", f"delete of client {client} at {clock}")
            append((client, clock, length))

    def signed(self) -> int:
        """lib0 varInt: bit 8 continues, bit 7 is the sign, 6 value bits, then 7 per byte."""
        first = self.byte()
        magnitude = first & 0x3F
        if first & 0x80:
            magnitude = self._varint_tail(magnitude, 64, 1)
            if magnitude > MAX_SAFE_INTEGER:
                raise ProtocolError("integer_too_large", str(magnitude))
        return -magnitude if first & 0x40 else magnitude

    def count(self, min_bytes_each: int, maximum: int, what: str) -> int:
        """A varUint item count, bounded by `maximum` and by the bytes left to hold the items."""
        n = self.uint()
        if n > maximum:
            raise ProtocolError(f"too_many_{what}", f"{n} > {maximum}", 4413)
        if n * min_bytes_each > self.end - self.pos:
            raise ProtocolError("count_exceeds_data", f"{n} {what}")
        return n

    def raw(self, n: int) -> bytes:
        pos = self.pos
        if n > self.end - pos:
            raise ProtocolError("truncated", f"{n} bytes announced, {self.end - pos} left")
        self.pos = pos + n
        return self.data[pos : pos + n]

    def buf(self) -> bytes:
        """lib0 varUint8Array: varUint length, then that many bytes."""
        return self.raw(self.uint())

    def skip_buf(self) -> None:
        n = self.uint()
        if n > self.end - self.pos:
            raise ProtocolError("truncated", f"{n} bytes announced, {self.end - self.pos} left")
        self.pos += n

    def string(self) -> str:
        """lib0 varString: UTF-8, strictly valid (no encoded surrogates; see docs/security.md)."""
        raw = self.buf()
        if raw.isascii():
            return raw.decode("ascii")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("invalid_utf8", str(exc)) from None

    def expect_end(self) -> None:
        if self.pos != self.end:
            raise ProtocolError("trailing_bytes", f"{self.end - self.pos} bytes after the message")
