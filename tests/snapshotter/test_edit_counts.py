"""Edit counts in characters (Unicode code points, as GET /v1/letters/{id} offsets count) for
updates made by stock Yjs, whatever unit the CRDT's events use: yrs counts an XmlText's deletions
in UTF-8 bytes and a Y.Text body's in UTF-16 units (an astral character is two)."""

from pathlib import Path
from typing import Any

import pytest

from snapshotter.document import LetterDocument
from tests.interop.conftest import node_modules  # noqa: F401 (the fixture: `npm ci` if needed)
from tests.support import node_json

HERE = Path(__file__).parent
FIELD = "default"


@pytest.fixture(scope="module")
def scenarios(node_modules: Path) -> list[dict[str, Any]]:  # noqa: F811
    found: list[dict[str, Any]] = node_json(HERE / "yjs_edits.cjs", node_modules)
    return found


def _counts(doc: LetterDocument, update: str) -> tuple[int, int, set[int]]:
    delta = doc.apply(bytes.fromhex(update))
    return delta.inserted, delta.deleted, delta.paragraphs


@pytest.mark.parametrize("index", [0, 1, 2], ids=["paragraphs", "list", "text-body"])
def test_stock_yjs_edits_count_characters(scenarios: list[dict[str, Any]], index: int) -> None:
    scenario = scenarios[index]
    doc = LetterDocument(FIELD, bytes.fromhex(scenario["base"]))
    for n, step in enumerate(scenario["steps"]):
        inserted, deleted, _ = _counts(doc, step["update"])
        assert (n, inserted, deleted) == (n, step["inserted"], step["deleted"])
        if index != 1:  # a list renders its items' blocks apart; the counts are what matter
            assert doc.snapshot().content == step["text"]


def test_counts_do_not_depend_on_where_the_document_was_loaded(
    scenarios: list[dict[str, Any]],
) -> None:
    """A document loaded from the state just before an update (after an eviction, a restart,
    a backfill's chunk) counts it as one kept in memory does."""
    for scenario in scenarios:
        kept = LetterDocument(FIELD, bytes.fromhex(scenario["base"]))
        for step in scenario["steps"]:
            loaded = LetterDocument(FIELD, kept.state())
            assert _counts(loaded, step["update"]) == _counts(kept, step["update"])


def test_a_text_body_attributes_lines_past_astral_characters(
    scenarios: list[dict[str, Any]],
) -> None:
    steps = scenarios[2]["steps"]
    doc = LetterDocument(FIELD, bytes.fromhex(scenarios[2]["base"]))
    paragraphs = [_counts(doc, step["update"])[2] for step in steps]
    assert paragraphs == [{1}, {1}, {1}, {1}, {1}, {2}, {0, 1}]
