"""The name rule (gateway/api/names.py) and the characters that show nothing: invisible format
characters are refused wherever they are ("intro\u034f" would read as a second "intro"); those
kept because scripts need them (joiners, bidi marks, the Mongolian vowel separator) and those
that show as blank space make no name by themselves, as spaces do not. The published pattern
says the same to a JavaScript regex, with and without its `u` flag."""

import json
import subprocess
import unicodedata

import httpx
import pytest

from gateway.api.names import IGNORABLE, ONE_LINE, one_line, problem
from tests.gateway.harness import Running

INVISIBLE = {
    "combining grapheme joiner": ["a\u034fb", "intro\u034f"],
    "musical format characters": [f"in{chr(c)}tro" for c in range(0x1D173, 0x1D17B)],
    # Default-ignorable code points reserved for more invisible characters: refused before
    # Unicode assigns them (or Python learns of them).
    "reserved ignorable": ["a\u2065b", *(f"a{chr(c)}b" for c in range(0xFFF0, 0xFFF9))],
}
# The same past the tags, which only the server refuses (the pattern cannot say them in both
# JavaScript modes, as tags).
INVISIBLE["reserved ignorable, astral"] = ["a\U000e0080b", "a\U000e0fffb", "a\U000e01f0b"]
BLANK = {
    "hangul fillers": ["\u115f", "\u1160", "\u3164", "\uffa0", " \u3164 ", "\u115f\u1160"],
    "braille blank": ["\u2800", "\u2800\u2800", "\u2800 \u3164"],
    "joiners and marks": ["\u200d", "\u200f", "\u061c", " \u200c ", "\u200c\u2800", "\u180e"],
}
# Inside a name they are space, as in braille text, or part of a Hangul syllable.
KEPT = ["a\u2800b", "Intro\u3164 2", "\u115f\u1161", "\U0001d172 beams", "\U0001d17b phrase"]
KEPT += ["\u1832\u1821\u1837\u180e\u1821", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"]
# Format characters that show a sign (Arabic number sign, end of ayah) or shape hieroglyphs.
KEPT += ["\u0600\u0661\u0662", "\u06dd\u0661", "\U00013000\U00013430\U00013001", "\U000110bd1"]
PUBLISHED = [k for k in (*INVISIBLE, *BLANK) if not k.endswith("astral")]
REFUSED = [name for k in PUBLISHED for name in {**INVISIBLE, **BLANK}[k]]


@pytest.mark.parametrize("name", [pytest.param(n, id=k) for k, v in INVISIBLE.items() for n in v])
def test_invisible_format_characters_are_refused(name: str) -> None:
    assert not one_line(name)


@pytest.mark.parametrize("name", [pytest.param(n, id=k) for k, v in BLANK.items() for n in v])
def test_a_name_of_blank_characters_alone_is_blank(name: str) -> None:
    assert not one_line(name)


@pytest.mark.parametrize("name", KEPT)
def test_blank_characters_inside_a_name_and_neighbours_stay(name: str) -> None:
    assert one_line(name)


def test_the_published_pattern_says_the_same_in_both_javascript_modes() -> None:
    script = (
        "const [pattern, names] = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(['', 'u'].map((flags) =>"
        " names.map((n) => new RegExp(pattern, flags).test(n)))))"
    )
    names = [*REFUSED, *KEPT]
    done = subprocess.run(
        ["node", "-e", script, json.dumps([ONE_LINE, names])],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    plain, unicode = json.loads(done.stdout)
    assert plain == unicode == [one_line(n) for n in names]


async def test_a_blank_or_invisible_title_is_refused_over_http(gw: Running) -> None:
    auth = {"Authorization": f"Bearer {gw.token()}"}
    for title in ("\u3164", "intro\u034f", "\u200d"):
        async with httpx.AsyncClient(base_url=gw.http) as http:
            r = await http.post(
                "/v1/letters", json={"firm_id": "firm-a", "title": title}, headers=auth
            )
        assert r.status_code == 422, r.text
        assert r.json()["detail"].startswith("invalid request: body.title: "), r.text


def _runs(points: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for c in points:
        runs[-1:] = [(runs[-1][0], c)] if runs and runs[-1][1] == c - 1 else [*runs[-1:], (c, c)]
    return runs


def test_the_ignorable_table_is_unicodes() -> None:
    """names.IGNORABLE is Default_Ignorable_Code_Point as node's regex (ICU) knows it."""
    script = (
        "const r = /\\p{Default_Ignorable_Code_Point}/u, found = [];"
        "for (let c = 0; c < 0x110000; c++) if (r.test(String.fromCodePoint(c))) found.push(c);"
        "console.log(JSON.stringify(found))"
    )
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True)
    assert _runs(json.loads(done.stdout)) == list(IGNORABLE)


def test_every_format_character_python_knows_is_refused_or_kept_on_purpose() -> None:
    """Category Cf (Python's Unicode, whatever its version): refused in a name, but for those
    that show a sign or shape what they join, and those the rule places (joiners, bidi marks)."""
    kept = [
        c for c in range(0x110000)
        if unicodedata.category(chr(c)) == "Cf" and one_line(f"\u0661{chr(c)}\u0662")
    ]  # fmt: skip
    prepended = [*range(0x600, 0x606), 0x6DD, 0x70F, 0x890, 0x891, 0x8E2, 0x110BD, 0x110CD]
    egyptian = [c for c in range(0x13430, 0x13440) if unicodedata.category(chr(c)) == "Cf"]
    placed = [0x61C, 0x180E, 0x200C, 0x200D, 0x200E, 0x200F, 0xFFF9, 0xFFFA, 0xFFFB]
    assert kept == sorted([*prepended, *egyptian, *placed, *range(0x1BCA0, 0x1BCA4)])


LEFT_TO_THE_SERVER = ("a variation selector only after", "not in NFC")


def test_the_published_pattern_agrees_with_the_server_on_every_bmp_character() -> None:
    """Each character of the BMP between two letters and alone: what the pattern refuses, the
    server does (but what it leaves to the server: lone surrogates, a variation selector after
    a character it cannot change, NFC)."""
    names = [
        name
        for c in range(0x10000)
        if not 0xD800 <= c <= 0xDFFF
        for name in (f"a{chr(c)}b", chr(c))
        if not (problem(name) or "").startswith(LEFT_TO_THE_SERVER)
    ]
    script = (
        "const [pattern, names] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(['', 'u'].map((flags) => {"
        " const r = new RegExp(pattern, flags);"
        " return names.map((n, i) => r.test(n) ? '' : i).filter((i) => i !== '') })))"
    )
    done = subprocess.run(
        ["node", "-e", script], input=json.dumps([ONE_LINE, names]),
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    plain, unicode = json.loads(done.stdout)
    refused = [i for i, name in enumerate(names) if not one_line(name)]
    assert [names[i] for i in plain] == [names[i] for i in unicode] == [names[i] for i in refused]
