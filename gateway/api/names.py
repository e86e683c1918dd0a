"""The rule for names people give things: a letter's title, a version's label, a locked
section. Each is shown in lists, in the web client and in `history`, and kept in the log, so
each is one line that is not blank and cannot forge others: no C0 or C1 control characters
(line breaks, escape sequences), no line or paragraph separator (U+2028, U+2029), and no bidi
embedding, override or isolate (U+202A..U+202E, U+2066..U+2069: "Trojan Source",
CVE-2021-42574), which reorder what follows them on screen, no invisible character that joins
nothing (soft hyphen, combining grapheme joiner, zero-width space, word joiner and the
invisible operators and deprecated format characters of U+2060..U+206F, BOM, the musical
format characters U+1D173..U+1D17A, tags outside an emoji flag: "intro\u200b" would read as a
second "intro"), nor a lone surrogate (JSON can carry one; UTF-8, the log's encoding, cannot).
Zero-width (non-)joiners stay: Persian and Indic names and emoji sequences need them, as
Mongolian spelling needs its vowel separator (U+180E) before a final vowel. Bidi marks (U+200E,
U+200F, U+061C) stay: right-to-left names need them, and they reorder nothing beyond
themselves. Those, and the characters that show as blank space (the Hangul fillers U+115F,
U+1160, U+3164, U+FFA0 and the blank braille pattern U+2800), stay inside a name, as a space
does, but do not make one: a name of nothing else is blank. Not refused either (rare, and each
shows nothing): the interlinear annotation marks U+FFF9..U+FFFB, variation selectors,
U+17B4/U+17B5 and the shorthand format controls U+1BCA0..U+1BCA3.
"""

import re

# Every range as a \x or \u escape of the BMP: the published pattern must mean the same to an
# ECMA-262 regex (JSON Schema's), with or without its `u` flag (\U is Python's alone).
_PUBLISHED = (
    r"\x00-\x1f\x7f-\x9f\xad\u034f\u200b\u2028\u2029\u202a-\u202e\u2060-\u2064"
    r"\u2066-\u206f\ufeff"
)
# What shows nothing by itself, kept inside a name, and that \s leaves out (in both dialects):
# blank space, joiners, bidi marks, the Mongolian vowel separator.
_BLANK = r"\u061c\u115f\u1160\u180e\u200c-\u200f\u2800\u3164\uffa0"
# The musical format characters, each as its UTF-16 pair: one code point to a regex with the
# `u` flag, two code units to one without; a class cannot name them in both, an alternation can.
_MUSIC = "|".join(rf"\ud834\udd{low:02x}" for low in range(0x73, 0x7B))
# Also refused by the server: lone surrogates, and tags (U+E0000..U+E007F), which the pattern
# cannot name in both regex dialects (nor keep in a flag).
_NOT_IN_A_NAME = _PUBLISHED + "\U0001d173-\U0001d17a\ud800-\udfff\U000e0000-\U000e007f"
# The rule as a JSON Schema pattern (the OpenAPI document shows it): what a client can check.
ONE_LINE = rf"^(?!.*(?:{_MUSIC}))[^{_PUBLISHED}]*[^\s{_BLANK}{_PUBLISHED}][^{_PUBLISHED}]*$"
_ONE_LINE = re.compile(rf"^[^{_NOT_IN_A_NAME}]*[^\s{_BLANK}{_NOT_IN_A_NAME}][^{_NOT_IN_A_NAME}]*$")
# A subdivision flag (England, Scotland, Wales): a black flag, then tags, then the cancel tag.
_FLAG = re.compile("\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f")


def one_line(name: str) -> bool:
    """Whether `name` is one line that is not blank, without the characters above."""
    return _ONE_LINE.fullmatch(_FLAG.sub("\U0001f3f4", name)) is not None
