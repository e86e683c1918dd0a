"""The text of a body's runs is rendered with its length, given explicitly (gateway/content.py
`Body`, `render`): the line breaks after the last run (an empty paragraph, a hard break at the
end) are in no run. A list subclass once carried the length, so a slice of the runs rendered
without those breaks. Pure."""

from gateway.content import leaves, plain_text, render
from tests.gateway.tiptap import FIELD, br, doc_of, empty_p, p


def test_the_text_keeps_the_breaks_after_the_last_run() -> None:
    doc = doc_of([p("Regards,"), p("Avery", br()), empty_p()])
    body = leaves(doc, FIELD)
    assert plain_text(doc, FIELD) == body.text() == "Regards,\nAvery\n\n"
    assert render(body.runs[:1], body.length) == "Regards," + "\n" * 8  # a part: as long
    assert render(body.runs, body.runs[-1].end) == "Regards,\nAvery"  # up to the last run only
