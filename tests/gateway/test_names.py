"""Titles, version labels and section names follow one rule (gateway/api/names.py): one line,
not blank, without control characters, line separators or bidi embeddings, overrides and
isolates (U+202E reverses what follows it on screen); bidi marks stay."""

import json
import subprocess
from typing import Any

import httpx
import pytest

from gateway.api.names import ONE_LINE, one_line
from tests.collab.conftest import Collab, collab  # noqa: F401  (the fixture)
from tests.gateway.harness import Running

FORGING = ["a\u202eb", "\u202ax", "x\u2066y\u2069", "a\u2028b", "a\u2029b", "a\x85b", "x\ud800"]
# Invisible, joining nothing: "intro\u200b" would read as a second "intro".
HIDDEN = ["intro\u200b", "a\xadb", "\ufeffintro", "a\u2060b", "a\u206eb", "a\U000e0041b"]
KEPT = ["Müller\u200f ./. Schmidt", "\u05e9\u05dc\u05d5\u05dd \u200e(2)", "Intro été", "a\u00a0b",
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "\U0001f468\u200d\U0001f469",
        "第1章\u3000概要", "Glasgow office \U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063"
        "\U000e0074\U000e007f", "Letter 2024 \U0001f600"]  # fmt: skip


@pytest.mark.parametrize("name", FORGING + HIDDEN)
def test_names_that_would_reorder_or_break_lines_are_refused(name: str) -> None:
    assert not one_line(name)


@pytest.mark.parametrize("name", KEPT)
def test_names_with_bidi_marks_or_accents_are_kept(name: str) -> None:
    assert one_line(name)


def test_the_published_pattern_means_the_same_to_a_javascript_regex() -> None:
    """The OpenAPI document's pattern, compiled as JSON Schema validators do (ECMA-262, with and
    without the `u` flag): a Python-only escape there refused digits and capitals."""
    names = [*KEPT, *FORGING, *HIDDEN]
    script = (
        "const [pattern, names] = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(['', 'u'].map((flags) =>"
        " names.map((n) => new RegExp(pattern, flags).test(n)))))"
    )
    # Lone surrogates cannot go through argv (UTF-8): the server refuses them on its own.
    sent = [n for n in names if not any("\ud800" <= c <= "\udfff" for c in n)]
    done = subprocess.run(
        ["node", "-e", script, json.dumps([ONE_LINE, sent])],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    plain, unicode = json.loads(done.stdout)
    # What the pattern can say: everything but tags (which the server refuses besides).
    expected = [one_line(n) or "\U000e0041" in n for n in sent]
    assert plain == unicode == expected


def _auth(gw: Running) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.token()}"}


async def _post(gw: Running, path: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gw.http) as http:
        return await http.post(path, json=body, headers=_auth(gw))


async def test_titles_and_labels_refuse_bidi_overrides(gw: Running) -> None:
    letter = await gw.create_letter("Dear Sir,")
    for name in ("Smith \u202esenoJ", "\u2067Jones", "intro\u200b"):
        titled = await _post(gw, "/v1/letters", {"firm_id": "firm-a", "title": name})
        assert titled.status_code == 422, titled.text
        assert titled.json()["detail"].startswith("invalid request: body.title: "), titled.text
        labelled = await _post(gw, f"/v1/letters/{letter}/versions", {"label": name})
        assert labelled.status_code == 422, labelled.text
        assert labelled.json()["detail"].startswith("invalid request: body.label"), labelled.text
    kept = await _post(gw, f"/v1/letters/{letter}/versions", {"label": KEPT[1]})
    assert kept.status_code == 202, kept.text


async def test_sections_follow_the_same_rule(collab: Collab) -> None:  # noqa: F811
    letter = await collab.gw.create_letter("x")
    refused = await collab.call("POST", f"/v1/letters/{letter}/locks/a%E2%81%A6b", user="al")
    assert refused.status_code == 422, refused.text  # U+2066, an isolate
    kept = await collab.call("POST", f"/v1/letters/{letter}/locks/a%E2%80%8Fb", user="al")
    assert kept.is_success, kept.text  # U+200F, a mark
    spaced = await collab.call("POST", f"/v1/letters/{letter}/locks/a%C2%A0b", user="al")
    assert spaced.is_success, spaced.text  # a no-break space, as in a title
    for invisible in ("intro%E2%80%8B", "%E2%80%8B", "%EF%BB%BF", "%E2%81%A0", "%C2%AD"):
        hidden = await collab.call("POST", f"/v1/letters/{letter}/locks/{invisible}", user="al")
        assert hidden.status_code == 422, (invisible, hidden.text)  # a second "intro", a blank
