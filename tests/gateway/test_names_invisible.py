"""The name rule (gateway/api/names.py) and the characters that show nothing: invisible format
characters are refused wherever they are ("intro\u034f" would read as a second "intro"); those
kept because scripts need them (joiners, bidi marks, the Mongolian vowel separator) and those
that show as blank space make no name by themselves, as spaces do not. The published pattern
says the same to a JavaScript regex, with and without its `u` flag."""

import json
import subprocess

import httpx
import pytest

from gateway.api.names import ONE_LINE, one_line
from tests.gateway.harness import Running

INVISIBLE = {
    "combining grapheme joiner": ["a\u034fb", "intro\u034f"],
    "musical format characters": [f"in{chr(c)}tro" for c in range(0x1D173, 0x1D17B)],
}
BLANK = {
    "hangul fillers": ["\u115f", "\u1160", "\u3164", "\uffa0", " \u3164 ", "\u115f\u1160"],
    "braille blank": ["\u2800", "\u2800\u2800", "\u2800 \u3164"],
    "joiners and marks": ["\u200d", "\u200f", "\u061c", " \u200c ", "\u200c\u2800", "\u180e"],
}
# Inside a name they are space, as in braille text, or part of a Hangul syllable.
KEPT = ["a\u2800b", "Intro\u3164 2", "\u115f\u1161", "\U0001d172 beams", "\U0001d17b phrase"]
KEPT += ["\u1832\u1821\u1837\u180e\u1821", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"]
REFUSED = [name for names in (*INVISIBLE.values(), *BLANK.values()) for name in names]


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
