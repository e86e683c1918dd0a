"""The rule for names people give things: a letter's title, a version's label, a locked
section. Each is shown in lists, in the web client and in `history`, and kept in the log, so
each is one line that is not blank, cannot forge others and cannot pass for another: no C0 or
C1 control characters (line breaks, escape sequences), no line or paragraph separator (U+2028,
U+2029), and no bidi embedding, override or isolate (U+202A..U+202E, U+2066..U+2069: "Trojan
Source", CVE-2021-42574), which reorder what follows them on screen, no invisible character
that joins nothing: Unicode's default-ignorable code points and format characters (category
Cf), whichever Unicode names, such as the soft hyphen, combining grapheme joiner, zero-width
space, word joiner, BOM, the musical format characters U+1D173..U+1D17A, those reserved for
more of them (U+2065, U+FFF0..U+FFF8, U+E0080..U+E0FFF) and tags outside an England, Scotland or
Wales flag: "intro\u200b" would read as a second "intro"; nor a lone surrogate (JSON can carry
one; UTF-8, the log's encoding, cannot). The format characters that show a sign (the prepended
concatenation marks: U+0600..U+0605, U+06DD, U+070F, U+0890, U+0891, U+08E2, U+110BD, U+110CD)
or shape what they join (the Egyptian hieroglyph format controls U+13430..U+1343F) stay.
Zero-width (non-)joiners stay: Persian and Indic names and emoji sequences need them, as
Mongolian spelling needs its vowel separator (U+180E) before a final vowel. Bidi marks (U+200E,
U+200F, U+061C) stay: right-to-left names need them, and they reorder nothing beyond
themselves. Those, the characters that show as blank space (the Hangul fillers U+115F, U+1160,
U+3164, U+FFA0 and the blank braille pattern U+2800) and the rare invisible format characters
not refused (the interlinear annotation marks U+FFF9..U+FFFB, U+17B4/U+17B5, the shorthand
format controls U+1BCA0..U+1BCA3) stay inside a name, as a space does, but neither start nor
end one, nor does a space: "Intro\u200d" or "Intro " would read as a second "Intro" (U+115F
may start a name when a vowel follows: a Hangul syllable with no initial consonant).
A variation selector (VS1..VS256, the Mongolian free ones) comes right after a character it
can change (an emoji or another symbol, a keycap's digit, an ideograph, a Mongolian letter...):
"Intro\ufe0f" and a selector at the start or after a space are refused, "\u2764\ufe0f" is kept.
A name is in NFC: "R\xe9sum\xe9" precomposed and decomposed would be two names that read as
one, so the decomposed one is refused (saying so) rather than rewritten: the name stored is the
one sent. (Nor is most of the CJK compatibility ideographs U+F900..U+FAFF in NFC.)
Not covered: letters of other scripts that look alike (a Cyrillic o, U+043E, in "Intro").
"""

import re
import unicodedata

# Default_Ignorable_Code_Point, from Unicode's DerivedCoreProperties.txt (the same from Unicode
# 14.0, Python 3.11's, to 17.0; tests/gateway/test_names_invisible.py checks it against node's
# \p{Default_Ignorable_Code_Point}): what shows nothing, assigned or reserved for it. Python
# names no such property: with category Cf (`_hidden_format`), whichever Unicode it knows.
IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)  # fmt: skip
# Of those and the format characters, the ones kept, where the rule below places them: joiners,
# bidi marks, blank space, the Mongolian vowel separator, rare format characters; variation
# selectors (after a character they change); format characters that show a sign or shape
# hieroglyphs (not ignorable). Tags are kept only in a flag (`_FLAG`).
_KEPT = (
    (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891),
    (0x08E2, 0x08E2), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200C, 0x200F),
    (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD),
    (0x110CD, 0x110CD), (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3), (0xE0100, 0xE01EF),
)  # fmt: skip


def _minus(ranges: tuple[tuple[int, int], ...], kept: tuple[tuple[int, int], ...]) -> list[int]:
    inside = {c for low, high in ranges for c in range(low, high + 1)}
    return sorted(inside - {c for low, high in kept for c in range(low, high + 1)})


def _escape(c: int) -> str:
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" if c < 0x10000 else f"\\U{c:08x}"


def _escaped(points: list[int]) -> str:
    """`points` (ascending) as the ranges of a regex class, each end escaped."""
    runs: list[list[int]] = []
    for c in points:
        if runs and runs[-1][1] == c - 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return "".join(_escape(a) if a == b else f"{_escape(a)}-{_escape(b)}" for a, b in runs)


_HIDDEN = _minus(IGNORABLE, _KEPT)
# Every range as a \x or \u escape of the BMP: the published pattern must mean the same to an
# ECMA-262 regex (JSON Schema's), with or without its `u` flag (\U is Python's alone).
_PUBLISHED = r"\x00-\x1f\x7f-\x9f\u2028\u2029" + _escaped([c for c in _HIDDEN if c < 0x10000])
# What shows nothing by itself, kept inside a name, and that \s leaves out (in both dialects):
# blank space, joiners, bidi marks, the Mongolian vowel separator, rare format characters.
_FILLER = r"\u115f"  # starts a syllable before a vowel (U+1161..U+11A7, U+D7B0..U+D7C6)
_VOWEL = r"\u1161-\u11a7\ud7b0-\ud7c6"
_BLANK = r"\u061c\u1160\u17b4\u17b5\u180e\u200c-\u200f\u2800\u3164\uffa0\ufff9-\ufffb"
# Variation selectors of the BMP: the Mongolian free ones and VS1..VS16.
_VS = r"\u180b-\u180d\u180f\ufe00-\ufe0f"


def _pairs(first: int, last: int) -> str:
    """Astral code points as an alternation of UTF-16 pairs: one code point to a regex with the
    `u` flag, two code units to one without; a class cannot name them in both, this can."""
    return "|".join(
        f"\\u{0xD800 + ((c - 0x10000) >> 10):04x}\\u{0xDC00 + ((c - 0x10000) & 0x3FF):04x}"
        for c in range(first, last + 1)
    )


_MUSIC = _pairs(0x1D173, 0x1D17A)
_SHORTHAND = _pairs(0x1BCA0, 0x1BCA3)  # the shorthand format controls: blank at an end
# Also refused by the server: lone surrogates, and the astral ignorable ones but the musical
# (tags, reserved: U+E0000..U+E0FFF), which the pattern cannot name in both regex dialects (nor
# keep tags in a flag).
_NOT_IN_A_NAME = r"\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff" + _escaped(_HIDDEN)
# The rule as a JSON Schema pattern (the OpenAPI document shows it): what a client can check.
# It leaves to the server what it cannot say in both regex dialects: tags and the ignorable
# code points past them, format characters newer than `IGNORABLE`, lone surrogates,
# NFC, VS17..VS256 (U+E0100..U+E01EF) and which character a variation selector can change.
ONE_LINE = (
    rf"^(?!.*(?:{_MUSIC}))"
    rf"(?!{_FILLER}(?![{_VOWEL}]))(?![\s{_BLANK}{_VS}]|{_SHORTHAND})"
    rf"(?!.*[\s{_FILLER}{_BLANK}{_VS}][{_VS}])(?!.*(?:{_SHORTHAND})$)"
    rf"[^{_PUBLISHED}]*[^\s{_FILLER}{_BLANK}{_PUBLISHED}]$"
)
_ONE_LINE = re.compile(rf"[^{_NOT_IN_A_NAME}]+")
_START = re.compile(
    rf"{_FILLER}(?![{_VOWEL}])|[\s{_BLANK}{_VS}\U000e0100-\U000e01ef\U0001bca0-\U0001bca3]"
)
_END = re.compile(rf"[\s{_FILLER}{_BLANK}\U0001bca0-\U0001bca3]\Z")
_NOTHING = re.compile(rf"[\s{_FILLER}{_BLANK}]")
_SHOWN = re.compile(rf"[^\s{_FILLER}{_BLANK}{_VS}\U000e0100-\U000e01ef\U0001bca0-\U0001bca3]")
# A variation selector and the character before it, to check it can change that one.
_SELECTED = re.compile(rf"(.?)([{_VS}\U000e0100-\U000e01ef])", re.DOTALL)
# The subdivision flags Unicode recommends (RGI: England, Scotland, Wales): a black flag, the
# tags of gbeng, gbsct or gbwls, the cancel tag. Any other tag run shows as a bare black flag
# at best, text hidden after it: "Intro🏴" and "Intro🏴" + tags "hi" would read the same.
_FLAG = re.compile(
    "\U0001f3f4\U000e0067\U000e0062"
    "(?:\U000e0065\U000e006e\U000e0067|\U000e0073\U000e0063\U000e0074|\U000e0077\U000e006c\U000e0073)"
    "\U000e007f"
)
# Where the bases of Unicode's variation sequences are (StandardizedVariants.txt, the Ideographic
# Variation Database, emoji-variation-sequences.txt), by range or category: close enough to
# refuse a selector that would change nothing, after a Latin letter, a space or another selector.
_IDEOGRAPHS = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3FFFF))
_STANDARD = (
    *_IDEOGRAPHS,
    (0x1000, 0x109F),  # Myanmar
    (0xA9E0, 0xA9FF),
    (0xAA60, 0xAA7F),
    (0xA840, 0xA877),  # Phags-pa
    (0x10AC0, 0x10AFF),  # Manichaean
    (0x13000, 0x1345F),  # Egyptian hieroglyphs
)
# Emoji that are not symbols (So, Sm): keycaps' digits, # and *, and a few of punctuation or a
# letter's category (double exclamation, exclamation question, information source, wavy dash...).
_EMOJI_NOT_SYMBOLS = "0123456789#*\u203c\u2049\u2139\u3030\u303d"


def _within(c: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(low <= ord(c) <= high for low, high in ranges)


def _changes(selector: str, base: str) -> bool:
    """Whether `selector` can change how `base` shows (a selector after nothing cannot)."""
    if not base or _NOTHING.match(base):  # a blank braille pattern is So, and shows nothing
        return False
    if "\u180b" <= selector <= "\u180f":  # Mongolian free variation selectors
        return "\u1820" <= base <= "\u18aa"
    if selector >= "\U000e0100":  # VS17..VS256: ideographic variation sequences
        return _within(base, _IDEOGRAPHS)
    symbol = unicodedata.category(base) in ("Sm", "So")
    if selector >= "\ufe0e":  # text or emoji presentation
        return symbol or base in _EMOJI_NOT_SYMBOLS
    return symbol or base == "0" or _within(base, _STANDARD)


_JOINERS, _BIDI_MARKS = "\u200c\u200d", "\u200e\u200f\u061c"
_NEUTRAL = frozenset({"ON", "ES", "ET", "CS", "EN", "AN"})  # bidi classes a mark may place


def _shown_at_the_end(name: str) -> bool:
    """A last character that does change what shows, though it shows nothing itself: a joiner
    after a virama (Malayalam chillu, Bengali khanda ta in their joiner spellings), or a bidi
    mark after punctuation or digits in a name with right-to-left letters (where "!" goes)."""
    last, before = name[-1], name[-2:-1]
    if not before:
        return False
    if last in _JOINERS:
        return unicodedata.combining(before) == 9
    if last in _BIDI_MARKS:
        rtl = any(unicodedata.bidirectional(c) in ("R", "AL") for c in name[:-1])
        return rtl and unicodedata.bidirectional(before) in _NEUTRAL
    return False


def _hidden_format(name: str) -> bool:
    """A format character not kept: one the table above may not know (a newer Unicode's)."""
    return any(unicodedata.category(c) == "Cf" and not _within(c, _KEPT) for c in name)


def problem(name: str) -> str | None:
    """Why `name` is not a name, to tell the client; None when it is one."""
    flagless = _FLAG.sub("\U0001f3f4", name)
    if not _ONE_LINE.fullmatch(flagless) or not _SHOWN.search(flagless):
        return "one line of text, not blank, without control or invisible characters"
    if _hidden_format(flagless):
        return "one line of text, not blank, without control or invisible characters"
    if _START.match(flagless) or (_END.search(flagless) and not _shown_at_the_end(flagless)):
        return "no space or character that shows nothing by itself at either end"
    if not all(_changes(vs, base) for base, vs in _SELECTED.findall(flagless)):
        return "a variation selector only after a character it can change"
    if not unicodedata.is_normalized("NFC", name):
        return "not in NFC (Unicode normalization form C): normalize it first"
    return None


def one_line(name: str) -> bool:
    """Whether `name` is one line that is not blank, follows the rule above."""
    return problem(name) is None
