"""`diff` names formatting and block changes and who made them (tools/formatting.py), besides
the text: a version whose only change is a word made italic, a paragraph made a heading or a
mark removed is no longer "(no change)"."""

import random
from typing import Any, cast

import pytest
from pycrdt import Doc, Text, XmlElement, XmlFragment, XmlText

from eventlog import Log
from projector.document import DocUpdate
from schemas import VersionSaved
from schemas.settings import Settings
from snapshotter.document import LetterDocument
from tests.tools.session import Client, Session
from tests.tools.snapshots import snapshot_all
from tools.diff import Diff, _attribute, diff, format_text, resolve_point
from tools.replay import Replayed
from tools.sources import open_sources

LETTER = "formatted"


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # what the diff reports does not depend on the log


def _text(client: Client, paragraph: int) -> XmlText:
    node = cast(XmlElement, list(client.root.children)[paragraph])
    return next(c for c in node.children if isinstance(c, XmlText))


def _heading(client: Client) -> None:
    """Paragraph 0 made a heading, as y-prosemirror writes it: the element replaced."""
    root = client.root
    with client.doc.transaction():
        text = str(_text(client, 0))
        del root.children[0]
        level: Any = {"level": 2}  # a number, as the editor writes it (pycrdt types str)
        root.children.insert(0, XmlElement("heading", level, [XmlText(text)]))


async def test_formatting_only_versions_name_the_change_and_the_user(
    settings: Settings, log: Log
) -> None:
    session = Session(log, settings, LETTER, random.Random(0))
    await session.create("Dear Sir,\nWe claim damages")
    owner, one, two = session.clients
    _text(owner, 1).format(3, 8, {"bold": {}})  # "claim", before version 1
    await session.quiesce()
    await session.append(VersionSaved(label="draft"), "user-0")
    _text(one, 1).format(9, 16, {"italic": {}})  # "damages"
    await session.quiesce()
    _heading(two)
    await session.quiesce()
    _text(owner, 1).format(3, 8, {"bold": None})
    await session.quiesce()
    await session.append(VersionSaved(label="final"), "user-0")
    await snapshot_all(settings, log)
    async with open_sources(settings, pg=True) as src:
        start, end = await resolve_point(src, LETTER, "1"), await resolve_point(src, LETTER, "2")
        result = await diff(src, LETTER, start, end)
    assert result.hunks == []  # the text did not change
    assert format_text(result).splitlines()[2:] == [
        '~ line 1 "Dear Sir,": paragraph -> heading(level=2) by user-2',
        '~ line 2 "claim": -bold by user-0',
        '~ line 2 "damages": +italic by user-1',
    ]
    assert [f.to_json() for f in result.formatting] == [
        {"line": 1, "text": "Dear Sir,", "added": [], "removed": [], "by": ["user-2"],
         "block": {"from": [{"type": "paragraph"}],
                   "to": [{"type": "heading", "attrs": {"level": 2}}]}},
        {"line": 2, "text": "claim", "added": [], "removed": [{"type": "bold"}], "block": None,
         "by": ["user-0"]},
        {"line": 2, "text": "damages", "added": [{"type": "italic"}], "removed": [],
         "block": None, "by": ["user-1"]},
    ]  # fmt: skip


def _replayed(state: bytes) -> Replayed:
    return Replayed("l", 0, state, 0, None, None, 0, LetterDocument("default", state).snapshot())


class _Letter:
    """A letter edited in runs of one user's updates, for `_attribute` without a log."""

    def __init__(self, body: type[XmlFragment] | type[Text] = XmlFragment) -> None:
        self.doc: Doc[Any] = Doc()
        self.root: Any = self.doc.get("default", type=body)
        self.runs: list[tuple[str, list[DocUpdate]]] = []

    def paragraphs(self, *lines: str) -> None:
        for line in lines:
            self.root.children.append(XmlElement("paragraph", {}, [XmlText(line)]))

    def text(self, paragraph: int) -> XmlText:
        return cast(XmlText, self.root.children[paragraph].children[0])

    def run(self, user: str, *edits: Any) -> None:
        before = self.doc.get_state()
        for edit in edits:
            edit()
        update = self.doc.get_update(before)
        self.runs.append((user, [DocUpdate(len(self.runs), "", 0, update)]))

    def diff(self, start: bytes) -> Diff:
        a, b = _replayed(start), _replayed(self.doc.get_update())
        hunks, formatting = _attribute(a, b, self.runs, "default")
        return Diff("l", a, b, hunks, formatting)


def test_inserted_text_reformatted_later_names_who_reformatted_it() -> None:
    letter = _Letter()
    letter.paragraphs("Dear Sir,", "We write")
    start = letter.doc.get_update()
    letter.run("bob", lambda: letter.text(1).insert(8, " today", {"italic": {}}))
    letter.run("alice", lambda: letter.text(1).format(9, 14, {"bold": {}}))
    result = letter.diff(start)
    assert [(h.added, h.authors) for h in result.hunks] == [(["We write today"], ["bob"])]
    # bob's italic came with his insert; alice's bold is a change of its own.
    assert [(f.text, f.added, f.by) for f in result.formatting] == [
        ("today", [{"type": "bold"}], ["alice"])
    ]


def test_a_change_undone_in_between_is_no_change_and_a_link_shows_its_target() -> None:
    letter = _Letter()
    letter.paragraphs("Dear Sir,", "See the claim")
    start = letter.doc.get_update()
    letter.run("bob", lambda: letter.text(1).format(0, 3, {"italic": {}}))
    letter.run("carol", lambda: letter.text(1).format(0, 3, {"italic": None}))
    link = {"link": {"href": "https://x.example/\x1b[2J", "target": None}}
    letter.run("dave", lambda: letter.text(1).format(8, 13, link))
    result = letter.diff(start)
    assert [(f.line, f.text, f.by) for f in result.formatting] == [(2, "claim", ["dave"])]
    assert result.formatting[0].added == [{"type": "link", "attrs": {"href": link["link"]["href"]}}]
    assert format_text(result).splitlines()[2:] == [
        '~ line 2 "claim": +link(href="https://x.example/\\x1b[2J") by dave'
    ]  # the target is escaped for terminals as the text is


def test_a_list_item_and_text_edits_keep_their_own_attribution() -> None:
    letter = _Letter()
    letter.paragraphs("Points", "first point", "second point")
    start = letter.doc.get_update()

    def listed() -> None:
        with letter.doc.transaction():
            del letter.root.children[1]
            item = XmlElement(
                "listItem", {}, [XmlElement("paragraph", {}, [XmlText("first point")])]
            )
            letter.root.children.insert(1, XmlElement("bulletList", {}, [item]))

    letter.run("erin", listed)
    letter.run("bob", lambda: letter.text(2).insert(0, "the "))
    result = letter.diff(start)
    assert [(h.start_line, h.authors) for h in result.hunks] == [(3, ["bob"])]
    [change] = result.formatting
    assert (change.line, change.text, change.by) == (2, "first point", ["erin"])
    assert change.describe() == "paragraph -> bulletList > listItem > paragraph"


def test_a_text_body_has_no_formatting() -> None:
    letter = _Letter(Text)
    letter.root += "Dear Sir,\nWe write"
    start = letter.doc.get_update()
    letter.run("bob", lambda: letter.root.insert(18, " today"))
    result = letter.diff(start)
    assert [(h.added, h.authors) for h in result.hunks] == [(["We write today"], ["bob"])]
    assert result.formatting == [] and "~" not in format_text(result)
