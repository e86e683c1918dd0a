"""Nested values: lib0 `Any` and JSON text, checked iteratively with a nesting-depth bound.

Yrs decodes both recursively: an `Any` array nested ~26,000 deep (53 KB) segfaults the whole
process in `apply_update`, and shallower ones crash later readers. So nesting is capped (64)
with an explicit stack here, before the bytes go anywhere.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .limits import ProtocolError
from .reader import Reader, uint_at

_ANY_ARRAY, _ANY_OBJECT = 117, 118
# Fixed-size Any payloads: undefined, null, true, false carry none; floats and bigint 4/8 bytes.
_FIXED_SIZE = {127: 0, 126: 0, 121: 0, 120: 0, 124: 4, 123: 8, 122: 8}


def skip_any(r: Reader, max_depth: int) -> None:
    """Validate one lib0 `Any` value and move past it (lib0 decoding.readAny, iteratively)."""
    pending = [1]  # items still to read at each open level
    in_object = [False]
    while pending:
        if pending[-1] == 0:
            pending.pop()
            in_object.pop()
            continue
        pending[-1] -= 1
        if in_object[-1]:
            r.string()  # the key
        tag = r.byte()
        size = _FIXED_SIZE.get(tag)
        if size is not None:
            r.raw(size)
        elif tag == 125:
            r.signed()
        elif tag == 119:
            r.string()
        elif tag == 116:
            r.skip_buf()
        elif tag == _ANY_ARRAY or tag == _ANY_OBJECT:
            if len(pending) > max_depth:
                raise ProtocolError("depth_exceeded", f"Any nested deeper than {max_depth}")
            is_object = tag == _ANY_OBJECT
            pending.append(r.count(2 if is_object else 1, r.end, "any_items"))
            in_object.append(is_object)
        else:
            raise ProtocolError("unknown_any_tag", str(tag))


def skip_any_at(data: bytes, pos: int, max_depth: int) -> int:
    """`skip_any` for the scanner's fast lane (gateway/wire/update.py): one pass, no calls for
    what editors put in a Y.Map (small numbers, short strings, flat objects). The position after
    the value at `pos`, or -1 for anything `skip_any` might refuse (the general way says why)."""
    end = len(data)
    stack: list[tuple[int, bool]] = []  # the enclosing levels' (items left, is an object)
    left, is_object = 1, False
    try:
        while True:
            if not left:
                if not stack:
                    return pos
                left, is_object = stack.pop()
                continue
            left -= 1
            if is_object:  # the key: a string
                pos = _skip_string(data, pos)
                if pos < 0:
                    return -1
            tag = data[pos]
            pos += 1
            size = _FIXED_SIZE.get(tag)
            if size is not None:
                pos += size
                if pos > end:
                    return -1
            elif tag == 119:
                pos = _skip_string(data, pos)
                if pos < 0:
                    return -1
            elif tag == 125:  # varInt: sign and 6 bits, then at most one more byte here
                if data[pos] & 0x80:
                    more = data[pos + 1]
                    if not 0 < more < 0x80:
                        return -1
                    pos += 1
                pos += 1
            elif tag == _ANY_ARRAY or tag == _ANY_OBJECT:
                n = data[pos]
                if n < 0x80:
                    pos += 1
                else:
                    n, pos = uint_at(data, pos)
                if n < 0 or (n << 1 if tag == _ANY_OBJECT else n) > end - pos:
                    return -1
                if len(stack) + 1 > max_depth:
                    return -1
                stack.append((left, is_object))
                left, is_object = n, tag == _ANY_OBJECT
            else:  # 116 (a buffer) and unknown tags
                return -1
    except IndexError:
        return -1


def _skip_string(data: bytes, pos: int) -> int:
    """Past a varString at `pos` if it is valid UTF-8 within the data, else -1."""
    n = data[pos]
    if n < 0x80:
        pos += 1
    else:
        n, pos = uint_at(data, pos)
        if n < 0:
            return -1
    raw = data[pos : pos + n]
    if len(raw) != n:
        return -1
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return -1
    return pos + n


def _reject_constant(name: str) -> None:
    # JSON.parse refuses NaN/Infinity; Python's json accepts them.
    raise ProtocolError("invalid_json", name)


def parse_json(text: str, max_depth: int) -> Any:
    """Parse JSON as JSON.parse would, refusing nesting deeper than `max_depth`."""
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        # CPython's decoder recursion is bounded by the interpreter's limit, not the C stack.
        raise ProtocolError("depth_exceeded", "JSON") from None
    except ValueError as exc:  # JSONDecodeError; ProtocolError from the hook passes through
        if isinstance(exc, ProtocolError):
            raise
        raise ProtocolError("invalid_json", str(exc)) from None
    check_json_value(value, max_depth)
    return value


def check_json_value(value: Any, max_depth: int) -> None:
    """Walk a parsed JSON value iteratively: depth bound, no lone surrogates from escapes, no
    numbers out of a double's range."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, float) and not math.isfinite(item):
            # 1e400 parses as Infinity (JSON.parse too), which json.dumps writes as "Infinity":
            # relayed, no peer could parse it. No JSON.stringify writes such a number.
            raise ProtocolError("invalid_json", "number out of range")
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                raise ProtocolError("depth_exceeded", f"JSON nested deeper than {max_depth}")
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_text(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def _check_text(text: str) -> None:
    # A "\ud800" escape yields a lone surrogate: not encodable as UTF-8, refused (Yrs would fail).
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ProtocolError("invalid_utf8", "lone surrogate in JSON string") from None
