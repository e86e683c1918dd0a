"""`diff` names who changed each line, not only each hunk: a hunk over lines each written by
one user said "by alice, bob, carol" on all of them. The CLI's text marks each line of a hunk by
several users, its `--json` and REST `/diff` give `removed_by`/`added_by` per line."""

import json
import random
from collections.abc import Callable
from typing import Any, cast

import pytest
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from eventlog import Log
from projector.document import DocUpdate
from schemas import VersionSaved
from schemas.settings import Settings
from snapshotter.document import LetterDocument
from tests.tools.cli import cli_env, run_cli
from tests.tools.rest import auth, rest_client
from tests.tools.session import Client, Session
from tests.tools.snapshots import snapshot_all
from tests.tools.terminal_text import ESCAPED, HOSTILE, stand_in_replayed
from tools.diff import Diff, Hunk, _attribute, format_text
from tools.replay import Replayed

LETTER = "line-authors"


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # who is named does not depend on the log


def _text(client: Client, paragraph: int) -> XmlText:
    node = cast(XmlElement, list(client.root.children)[paragraph])
    return next(c for c in node.children if isinstance(c, XmlText))


def _paragraph(client: Client, at: int, text: str) -> None:
    """A paragraph typed as the `at`th, as the editor adds one."""
    client.root.children.insert(at, XmlElement("paragraph", {}, [XmlText(text)]))


async def _letter(log: Log, settings: Settings) -> None:
    """Version 1: two lines. Version 2: bob and alice (in this order) each add one, carol
    changes a word of the second. Version 3: alice changes bob's line."""
    session = Session(log, settings, LETTER, random.Random(0))
    session.clients = [Client("alice"), Client("bob"), Client("carol")]
    await session.create("Dear Sir,\nWe claim damages.")
    alice, bob, carol = session.clients
    await session.append(VersionSaved(label="draft"), "alice")
    _paragraph(bob, 2, "Bob: final line before drop.")
    await session.quiesce()
    _paragraph(alice, 2, "Alice: second session text.")
    await session.quiesce()
    damages = _text(carol, 1)
    del damages[9:16]
    damages.insert(9, "costs")
    await session.quiesce()
    await session.append(VersionSaved(label="second"), "carol")
    _text(alice, 3).insert(len("Bob: final line before drop"), ", checked")
    await session.quiesce()
    await session.append(VersionSaved(label="final"), "alice")
    await snapshot_all(settings, log)


async def test_each_line_names_who_changed_it(settings: Settings, log: Log) -> None:
    await _letter(log, settings)
    env = cli_env(settings)
    text = await run_cli(env, "diff", LETTER, "--from", "1", "--to", "2")
    assert text[0] == 0, text[2]
    assert text[1].splitlines()[2:] == [
        "@@ line 2 @@ by alice, bob, carol",
        "-We claim damages.  [carol]",
        "+We claim costs.  [carol]",
        "+Alice: second session text.  [alice]",
        "+Bob: final line before drop.  [bob]",
    ]
    as_json = await run_cli(env, "diff", LETTER, "--from", "1", "--to", "3", "--json")
    assert as_json[0] == 0, as_json[2]
    [hunk] = json.loads(as_json[1])["hunks"]
    assert hunk == {
        "line": 2,
        "removed": ["We claim damages."],
        "added": ["We claim costs.", "Alice: second session text.",
                  "Bob: final line before drop, checked."],
        "authors": ["alice", "bob", "carol"],  # the union, as before
        "removed_by": [["carol"]],
        "added_by": [["carol"], ["alice"], ["bob", "alice"]],  # in the order they first edited
    }  # fmt: skip
    async with rest_client(settings, log, settings.database_url) as client:
        answer = await client.get(
            f"/v1/letters/{LETTER}/diff", params={"from": "1", "to": "3"}, headers=auth(settings)
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["hunks"] == [hunk]  # REST's body is the CLI's JSON


async def test_a_hunk_by_one_user_keeps_plain_lines(settings: Settings, log: Log) -> None:
    await _letter(log, settings)
    text = await run_cli(cli_env(settings), "diff", LETTER, "--from", "2", "--to", "3")
    assert text[0] == 0, text[2]
    assert text[1].splitlines()[2:] == [
        "@@ line 4 @@ by alice",  # the header names the one user: no mark on each line
        "-Bob: final line before drop.",
        "+Bob: final line before drop, checked.",
    ]


def test_the_names_on_lines_are_escaped() -> None:
    """A user name is what a token said: no terminal control through the line marks either."""
    hunk = Hunk(1, ["old"], ["new", "more"], ["bob", f"eve{HOSTILE}"],
                [["bob"]], [[f"eve{HOSTILE}", "bob"], []])  # fmt: skip
    text = format_text(Diff("L", stand_in_replayed(""), stand_in_replayed(""), [hunk]))
    assert text.splitlines()[2:] == [
        f"@@ line 1 @@ by bob, eve{ESCAPED}",
        "-old  [bob]",
        f"+new  [eve{ESCAPED}, bob]",
        "+more",  # none of its text inserted or deleted: no one to name
    ]


def _removed_by(lines: list[str], edits: list[tuple[str, Callable[[XmlFragment], None]]]) -> Any:
    """`removed_by` of the one hunk of `edits` (user, change) made in turn to a letter of
    `lines` (re-read rrD's shapes, on a pycrdt document)."""
    doc: Doc[Any] = Doc()
    root = doc.get("default", type=XmlFragment)
    for line in lines:
        root.children.append(XmlElement("paragraph", {}, [XmlText(line)]))
    start, runs = doc.get_update(), []
    for i, (user, change) in enumerate(edits):
        before = doc.get_state()
        with doc.transaction():
            change(root)
        runs.append((user, [DocUpdate(i, "", 0, doc.get_update(before))]))

    def replayed(state: bytes) -> Replayed:
        return Replayed(
            "l", 0, state, 0, None, None, 0, LetterDocument("default", state).snapshot()
        )

    hunks, _ = _attribute(replayed(start), replayed(doc.get_update()), runs, "default")
    [hunk] = hunks
    return hunk.removed_by


def _in(root: XmlFragment, paragraph: int) -> XmlText:
    node = cast(XmlElement, list(root.children)[paragraph])
    return next(c for c in node.children if isinstance(c, XmlText))


def test_a_line_beside_a_deleted_one_names_who_changed_it_not_who_deleted_the_other() -> None:
    """Alice deletes a paragraph, Bob changes the next: the next named Alice's (its line break
    went with her deletion), README saying otherwise (re-read rrD)."""
    letter = ["Dear Sir,", "Paragraph to drop.", "We accept.", "Regards"]
    edits = [
        ("alice", lambda r: r.children.__delitem__(1)),
        ("bob", lambda r: _in(r, 1).insert(2, " do not")),
    ]
    assert _removed_by(letter, edits) == [["alice"], ["bob"]]
    edits = [  # the last line, typed at its end
        ("alice", lambda r: r.children.__delitem__(1)),
        ("bob", lambda r: _in(r, 1).insert(1, "C")),
    ]
    assert _removed_by(["a", "bbb", "c"], edits) == [["alice"], ["bob"]]


def test_a_paragraph_added_after_a_line_does_not_name_its_writer_on_it() -> None:
    edits = [
        ("alice", lambda r: _in(r, 0).insert(0, "The ")),
        ("bob", lambda r: r.children.append(XmlElement("paragraph", {}, [XmlText("z")]))),
    ]
    assert _removed_by(["line"], edits) == [["alice"]]
