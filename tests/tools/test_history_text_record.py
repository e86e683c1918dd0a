"""`history`'s text is a record an auditor can print: every comment line names its comment (a
deletion is matched to the reply it removed), a text cut short says so, and `--full` prints
bodies, quotes, titles and labels whole, a multi-line one on indented lines below its entry."""

import json

import pytest

from eventlog import Log
from schemas import (
    Anchor,
    CommentCreated,
    CommentDeleted,
    CommentEdited,
    CommentReopened,
    CommentReplied,
    CommentResolved,
)
from schemas.settings import Settings
from steno_collab.commands.history import _history
from tests.tools.cli import cli_env, run_cli
from tests.tools.scripted import LETTER, scripted
from tools.history import Entry, format_json, format_text, history
from tools.sources import open_sources

LONG = "The client confirmed by phone on 3 March that the amount of 4,200 EUR is NOT accepted"
LINES = "First point.\n2026-01-01T00:00:00.000+00:00  admin   deleted everything\x1b[2J"


@pytest.fixture
def log_kind() -> str:
    return "embedded"


async def _commented(log: Log, settings: Settings) -> list[Entry]:
    session, _ = await scripted(log, settings)
    anchor = Anchor(start="AA==", end="AA==", quote="We write about the claim")
    await session.append(
        CommentCreated(thread_id="t1", comment_id="c1", anchor=anchor, body="ok?"), "user-1"
    )
    await session.append(CommentReplied(thread_id="t1", comment_id="c2", body=LONG), "user-2")
    await session.append(CommentReplied(thread_id="t1", comment_id="c3", body=LINES), "user-2")
    await session.append(CommentEdited(thread_id="t1", comment_id="c2", body=LONG + "!"), "user-2")
    await session.append(CommentDeleted(thread_id="t1", comment_id="c3"), "user-1")
    await session.append(CommentResolved(thread_id="t1"), "user-1")
    await session.append(CommentReopened(thread_id="t1"), "user-1")
    async with open_sources(settings) as src:
        return await history(src, LETTER)


def _comment_lines(text: str) -> list[str]:
    return [
        line.split("  ", 1)[1].split(None, 1)[1]
        for line in text.splitlines()
        if (" comment" in line or " thread" in line) and not line.startswith(" ")
    ]


async def test_every_comment_line_names_its_comment(settings: Settings, log: Log) -> None:
    entries = await _commented(log, settings)
    lines = _comment_lines(format_text(entries))
    assert [line.split(" in thread")[0] for line in lines[-7:]] == [
        "created comment c1",
        "replied comment c2",
        "replied comment c3",
        "edited comment c2",
        "deleted comment c3",
        "resolved thread t1",  # the thread's: the record names no comment
        "reopened thread t1",
    ]


async def test_a_cut_text_says_so_and_full_shows_it_whole(settings: Settings, log: Log) -> None:
    entries = await _commented(log, settings)
    short = format_text(entries)
    replied = next(line for line in short.splitlines() if "replied comment c2" in line)
    assert "is NOT accepted" not in replied
    assert replied.endswith(f'that the amount of…" [cut: {len(LONG)} characters, --full shows all]')
    assert len(short.splitlines()) == len(entries)  # one line an entry

    full = await _history(settings, LETTER, None, None, False, full=True)
    assert full == format_text(entries, full=True)
    lines = full.splitlines()
    replied = next(line for line in lines if "replied comment c2" in line)
    assert replied.endswith(f': "{LONG}"') and "cut" not in replied
    # A multi-line body: named on its entry's line, then its lines indented (escaped), so that
    # none of them reads as an entry of its own.
    at = next(i for i, line in enumerate(lines) if "replied comment c3" in line)
    assert lines[at].endswith("in thread t1: (body below)")
    assert lines[at + 1 : at + 4] == [
        "    body:",
        "      First point.",
        "      2026-01-01T00:00:00.000+00:00  admin   deleted everything\\x1b[2J",
    ]
    assert sum(not line.startswith(" ") for line in lines) == len(entries)


async def test_the_cli_takes_full(settings: Settings, log: Log) -> None:
    entries = await _commented(log, settings)
    code, out, err = await run_cli(cli_env(settings), "history", LETTER, "--full")
    assert (code, err) == (0, "") and out == format_text(entries, full=True)
    refused = await run_cli(cli_env(settings), "history", LETTER, "--full", "--json")
    assert refused[0] == 2 and "not allowed with" in refused[2]


async def test_paragraphs_are_counted_from_one_in_text_and_zero_in_json(
    settings: Settings, log: Log
) -> None:
    """As README's auditor section says (the JSON, REST's too, is left as it was)."""
    entries = await _commented(log, settings)
    edit = next(e for e in entries if e.kind == "edit" and not e.data.get("initial"))
    [row] = json.loads(format_json([edit]))
    assert row["data"]["paragraphs"] == [1]
    assert "in paragraph 2 (" in format_text([edit])
