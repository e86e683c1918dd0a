"""What PostgreSQL's text and jsonb cannot hold: U+0000.

Any client can put one in a letter (a Yjs update), a title, a comment or a token's name, and the
log takes it as sent. Written as is, it fails the whole transaction of its batch, and the same
batch again after every restart, so the partition's versions and audit trail stop there. It is
stored as U+FFFD (the replacement character) instead; the log keeps the original, so a replay
shows it exactly.
"""

import re
from collections.abc import Iterable, Sequence
from typing import Any

NUL, REPLACEMENT = "\x00", "\ufffd"
# `\u0000` as a JSON escape: preceded by an even number of backslashes (a literal backslash
# followed by "u0000", in the text itself, is `\\u0000` and stays).
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def text(value: str) -> str:
    return value.replace(NUL, REPLACEMENT) if NUL in value else value


def jsonb(encoded: str) -> str:
    """JSON text (from json.dumps, which escapes every control character) fit for jsonb."""
    return _NUL_ESCAPE.sub(r"\1\\ufffd", encoded) if "\\u0000" in encoded else encoded


def row(values: Sequence[Any]) -> tuple[Any, ...]:
    """Query arguments with every string fit for text (JSON text has no raw U+0000 to change)."""
    return tuple(text(v) if isinstance(v, str) else v for v in values)


def rows(values: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
    return [row(v) for v in values]


def stored(value: Any) -> Any:
    """A JSON-like value as PostgreSQL gives it back (what a check of the columns expects)."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, list):
        return [stored(v) for v in value]
    if isinstance(value, dict):
        return {text(k): stored(v) for k, v in value.items()}
    return value
