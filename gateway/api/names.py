"""The rule for names people give things: a letter's title, a version's label, a locked
section. Each is shown in lists, in the web client and in `history`, and kept in the log, so
each is one line that is not blank and cannot forge others: no C0 or C1 control characters
(line breaks, escape sequences), no line or paragraph separator (U+2028, U+2029), and no bidi
embedding, override or isolate (U+202A..U+202E, U+2066..U+2069: "Trojan Source",
CVE-2021-42574), which reorder what follows them on screen, no invisible character that joins
nothing (soft hyphen, zero-width space, word joiner and invisible operators, deprecated format
characters, BOM, tags: "intro\u200b" would read as a second "intro"), nor a lone surrogate (JSON
can carry one; UTF-8, the log's encoding, cannot). Zero-width (non-)joiners stay: Persian and
Indic names and emoji sequences need them. Bidi marks (U+200E, U+200F,
U+061C) stay: right-to-left names need them, and they reorder nothing beyond themselves.
"""

import re

_NOT_IN_A_NAME = (
    r"\x00-\x1f\x7f-\x9f\xad\u200b\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
    r"\ud800-\udfff\U000e0000-\U000e007f"
)
# The same rule as a JSON Schema pattern (the OpenAPI document shows it).
ONE_LINE = rf"^[^{_NOT_IN_A_NAME}]*[^\s{_NOT_IN_A_NAME}][^{_NOT_IN_A_NAME}]*$"
_ONE_LINE = re.compile(ONE_LINE)


def one_line(name: str) -> bool:
    """Whether `name` is one line that is not blank, without the characters above."""
    return _ONE_LINE.fullmatch(name) is not None
