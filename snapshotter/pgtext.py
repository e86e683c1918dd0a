"""What PostgreSQL's text and jsonb cannot hold: U+0000, and lone surrogates (not Unicode).

Any client can put a U+0000 in a letter (a Yjs update), a title or a comment, and the log takes
it as sent; a lone surrogate can come in a token's claims (JSON allows "\\ud800"). Written as
is, either fails the whole transaction of its batch, and the same batch again after every
restart, so the partition's versions and audit trail stop there. Both are stored as U+FFFD (the
replacement character) instead; the log keeps the original, so a replay shows it exactly.
"""

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

NUL, REPLACEMENT = "\x00", "\ufffd"


def text(value: str) -> str:
    if NUL in value:
        value = value.replace(NUL, REPLACEMENT)
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:  # lone surrogates: each becomes one U+FFFD
            value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def stored(value: Any) -> Any:
    """A JSON-like value as PostgreSQL can hold it, and gives it back (NaN and Infinity, which
    JSON has not, as null)."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [stored(v) for v in value]
    if isinstance(value, dict):
        return {text(k): stored(v) for k, v in value.items()}
    return value


def jsonb(encoded: str) -> str:
    """JSON text from json.dumps (control characters and, by default, all beyond ASCII escaped)
    fit for jsonb. Only text with a U+0000 or a surrogate escape (also those of emoji, in
    pairs) is decoded and cleaned."""
    if "\\u0000" not in encoded and "\\ud" not in encoded:
        return encoded
    return json.dumps(stored(json.loads(encoded)), sort_keys=True, separators=(",", ":"))


def row(values: Sequence[Any]) -> tuple[Any, ...]:
    """Query arguments with every string fit for text (JSON text from json.dumps is ASCII)."""
    return tuple(text(v) if isinstance(v, str) else v for v in values)


def rows(values: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
    return [row(v) for v in values]
