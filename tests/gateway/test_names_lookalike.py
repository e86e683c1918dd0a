"""Names that would read as another (gateway/api/names.py): a space or a character that shows
nothing by itself at either end ("Intro" + ZWJ beside "Intro"), a variation selector after a
character it cannot change, tags hidden behind a black flag, a name not in NFC (decomposed
"Résumé" beside the precomposed one) are refused; what scripts and emoji need inside a name
stays. Letters of other scripts that look alike (Cyrillic o) are not covered."""

import json
import subprocess
from urllib.parse import quote

import pytest

from gateway.api.names import ONE_LINE, one_line, problem
from tests.collab.conftest import Collab, collab  # noqa: F401  (the fixture)

# Each shows nothing by itself: joiners, bidi marks, spaces, variation selectors, fillers, the
# Mongolian vowel separator and free variation selector, rare format characters.
SILENT = ["\u200c", "\u200d", "\u200e", "\u200f", "\u061c", " ", "\xa0", "\u3000", "\u2003",
          "\ufe0f", "\ufe0e", "\ufe00", "\U000e0100", "\u3164", "\u2800", "\u180e", "\u180b",
          "\u115f", "\u1160", "\uffa0", "\ufff9", "\u17b4", "\U0001bca0"]  # fmt: skip
ENDS = [pytest.param(f"Intro{c}", id=f"Intro+U+{ord(c):04X}") for c in SILENT]
ENDS += [pytest.param(f"{c}Intro", id=f"U+{ord(c):04X}+Intro") for c in SILENT]


def _tags(text: str) -> str:
    return "".join(chr(0xE0000 + ord(c)) for c in text) + "\U000e007f"


BLACK_FLAG = "\U0001f3f4"
SELECTORS = ["In\ufe0ftro", "a \ufe0fb", "\u2764\ufe0f\ufe0f", "a\u200d\ufe0f", "\u1820 \u180b"]
SELECTORS += ["Intro\U000e0100x", "Intro \u845b\u200d\U000e0100", "a\u2800\ufe0fb"]
FLAGS = [f"Intro{BLACK_FLAG}{_tags('hi')}", f"Intro{BLACK_FLAG}{_tags('usca')}"]
FLAGS += [f"Intro{BLACK_FLAG}{_tags('GBSCT')}", f"Intro{BLACK_FLAG}{_tags('gbsctgbeng')}"]
NOT_NFC = ["Re\u0301sume\u0301", "\u212b", "\u1100\u1161", "\uf900"]
KEPT = [
    "Intro", "R\xe9sum\xe9", "\u7b2c1\u7ae0\u3000\u6982\u8981", "\u0645\u06cc\u200c\u062e\u0648",
    "\u0915\u094d\u200d\u0937", "\U0001f468\u200d\U0001f469\u200d\U0001f467",
    "\U0001f44d\U0001f3fd",
    "\U0001f3f3\ufe0f\u200d\U0001f308", "\u2764\ufe0f", "1\ufe0f\u20e3 first", "#\ufe0f\u20e3",
    "Letter \u263a\ufe0e", f"Glasgow {BLACK_FLAG}{_tags('gbsct')}", f"{BLACK_FLAG}{_tags('gbeng')}",
    f"Cardiff {BLACK_FLAG}{_tags('gbwls')}", "\u845b\U000e0100\u57ce", "a \u2269\ufe00 b",
    "\u1820\u180b\u1821", "\u1832\u1821\u1837\u180e\u1821", "\u115f\u1161", "\uac00",
    "\u05e9\u05dc\u05d5\u05dd \u200e(2)", "M\xfcller\u200f ./. Schmidt", "a\u2800b",
]  # fmt: skip
# What the published pattern cannot say in both JavaScript regex modes: the server alone
# refuses these (the pattern lets them through).
SERVER_ONLY = [*FLAGS, *NOT_NFC, "Intro\ufe0f", "Intro\ufe0e", "Intro\ufe00", "Intro\U000e0100"]
SERVER_ONLY += ["\U000e0100Intro", "In\ufe0ftro", "Intro\u180b"]
SERVER_ONLY += ["Intro\U000e0100x", "Intro \u845b\u200d\U000e0100"]


# Their last character shows nothing by itself but changes what shows: a joiner after a virama
# (Malayalam chillu, Bengali khanda ta spelt with it), a bidi mark after punctuation or digits
# in right-to-left text. The server keeps them; the published pattern cannot tell them apart.
SHOWN_AT_THE_END = ["\u0d05\u0d35\u0d28\u0d4d\u200d", "\u09b9\u09a0\u09be\u09a4\u09cd\u200d"]
SHOWN_AT_THE_END += ["\u05e9\u05dc\u05d5\u05dd!\u200f", "\u0645\u0631\u062d\u0628\u0627!\u061c"]
SHOWN_AT_THE_END += ["Report (\u05d8\u05d9\u05d5\u05d8\u05d4)\u200e"]
# ... and the same characters where they change nothing.
NOT_SHOWN = ["Intro!\u200f", "Intro!\u061c", "Report\u200e", "\u05e9\u05dc\u05d5\u05dd\u200f"]
NOT_SHOWN += ["Intro\u200d", "\u0d05\u0d35\u0d28\u200d"]


@pytest.mark.parametrize("name", SHOWN_AT_THE_END)
def test_a_last_character_that_changes_what_shows_is_kept(name: str) -> None:
    assert problem(name) is None


@pytest.mark.parametrize("name", NOT_SHOWN)
def test_the_same_characters_where_they_change_nothing_are_refused(name: str) -> None:
    assert problem(name) == "no space or character that shows nothing by itself at either end"


@pytest.mark.parametrize("name", ENDS)
def test_nothing_shown_at_either_end(name: str) -> None:
    assert not one_line(name)
    assert one_line(name.strip("".join(SILENT)))


@pytest.mark.parametrize("name", SELECTORS)
def test_a_variation_selector_only_after_what_it_changes(name: str) -> None:
    assert not one_line(name)


@pytest.mark.parametrize("name", FLAGS)
def test_tags_only_in_a_recommended_subdivision_flag(name: str) -> None:
    assert not one_line(name)


@pytest.mark.parametrize("name", NOT_NFC)
def test_a_name_not_in_nfc_is_refused_saying_so(name: str) -> None:
    assert problem(name) == "not in NFC (Unicode normalization form C): normalize it first"


@pytest.mark.parametrize("name", KEPT)
def test_names_scripts_and_emoji_need_are_kept(name: str) -> None:
    assert problem(name) is None


def test_the_published_pattern_agrees_in_both_javascript_modes() -> None:
    names = [*KEPT, *SELECTORS, *FLAGS, *NOT_NFC, *(str(p.values[0]) for p in ENDS)]
    script = (
        "const [pattern, names] = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(['', 'u'].map((flags) =>"
        " names.map((n) => new RegExp(pattern, flags).test(n)))))"
    )
    done = subprocess.run(
        ["node", "-e", script, json.dumps([ONE_LINE, names])],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    plain, unicode = json.loads(done.stdout)
    assert plain == unicode == [one_line(n) or n in SERVER_ONLY for n in names]


async def test_a_lookalike_title_label_or_section_is_422(collab: Collab) -> None:  # noqa: F811
    letter = await collab.gw.create_letter("Dear Sir,")
    for name in ("Intro\u200d", " Intro", "Intro\ufe0f", "Re\u0301sume\u0301"):
        titled = await collab.call("POST", "/v1/letters", json={"firm_id": "firm-a", "title": name})
        assert titled.status_code == 422, titled.text
        assert titled.json()["detail"].startswith("invalid request: body.title: ")
        labelled = await collab.call("POST", f"/v1/letters/{letter}/versions", json={"label": name})
        assert labelled.status_code == 422, labelled.text
    kept = await collab.call("POST", "/v1/letters", json={"firm_id": "firm-a", "title": KEPT[5]})
    assert kept.status_code == 201 and kept.json()["title"] == KEPT[5], kept.text
    locked = await collab.call("POST", f"/v1/letters/{letter}/locks/Intro", user="al")
    assert locked.is_success, locked.text
    for name in ("Intro\u200d", "Intro\u3164", "Intro\xa0", "Re\u0301sume\u0301"):
        section = await collab.call("POST", f"/v1/letters/{letter}/locks/{quote(name)}", user="al")
        assert section.status_code == 422, (name, section.text)


@pytest.mark.parametrize("name", ["", " ", "\u200d\u3164", " \ufe0f "])
def test_a_blank_name_is_refused_as_blank_not_for_its_ends(name: str) -> None:
    assert problem(name) == "one line of text, not blank, without control or invisible characters"
