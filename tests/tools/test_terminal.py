"""Text outputs cannot steer the auditor's terminal: what users wrote reaches it with its control
characters and bidi overrides escaped, one entry per line (tools/terminal.py); JSON is exact."""

import json

import pytest

from eventlog import Log
from schemas import Anchor, CommentCreated, VersionSaved
from schemas.settings import Settings
from tests.tools.scripted import LETTER, scripted
from tests.tools.snapshots import snapshot_all
from tests.tools.terminal_text import ESCAPED, HOSTILE, stand_in_replayed
from tools.diff import Diff, Hunk
from tools.diff import format_text as diff_text
from tools.history import Entry, describe, format_json, history
from tools.history import format_text as history_text
from tools.render import render
from tools.sources import open_sources
from tools.terminal import visible, visible_lines


def _clean(text: str) -> bool:
    """No control character but the newlines (and a letter's tabs), no bidi override."""
    bidi = "\u202a\u202e\u2066\u2069"
    return not any(
        (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0 or c in bidi for c in text
    )


def test_escapes() -> None:
    assert visible(HOSTILE + "\n\t") == ESCAPED + "\\x0a\\x09"
    assert visible_lines(f"Dear Sir,\n\t{HOSTILE}") == f"Dear Sir,\n\t{ESCAPED}"
    assert visible("Grüße, שלום, naïve \\x1b") == "Grüße, שלום, naïve \\x1b"  # text stays as is


@pytest.fixture
def log_kind() -> str:
    return "embedded"


async def test_history_text(settings: Settings, log: Log) -> None:
    session, _ = await scripted(log, settings)
    anchor = Anchor(start="AA==", end="AA==", quote=HOSTILE)
    body = f"ok\r2026-01-01T00:00:00.000+00:00  admin            deleted everything{HOSTILE}"
    comment = CommentCreated(thread_id="t9", comment_id="c9", anchor=anchor, body=body)
    await session.append(comment, "user-2")
    await session.append(VersionSaved(label=f"v{HOSTILE}\nforged line " + "x" * 80), "user-1")
    await snapshot_all(settings, log)
    async with open_sources(settings, pg=True) as src:
        entries = await history(src, LETTER)
    text = history_text(entries)
    assert _clean(text) and len(text.splitlines()) == len(entries)
    created = next(line for line in text.splitlines() if "created comment c9 in thread t9" in line)
    assert "\\x0d2026-01-01" in created and "\\x1b]0;pwned" in created
    version = next(line for line in text.splitlines() if 'version 3 (named "v' in line)
    assert "forged line xxx" in version and "x" * 80 not in version  # shortened like the rest
    exact = format_json(entries)  # JSON: json.dumps escapes controls itself, the data is exact
    assert _clean(exact) and json.loads(exact) == [e.to_json() for e in entries]


def test_diff_text() -> None:
    hunk = Hunk(1, [f"old{HOSTILE}"], [f"new\r{HOSTILE}"], [f"user{HOSTILE}"])
    text = diff_text(Diff("L\x1b[2J", stand_in_replayed(""), stand_in_replayed(""), [hunk]))
    assert _clean(text) and len(text.splitlines()) == 5
    assert f"-old{ESCAPED}\n+new\\x0d{ESCAPED}\n" in text and f"by user{ESCAPED}" in text


def test_replay_text_keeps_the_letters_lines() -> None:
    letter = f"Dear Sir,\n{HOSTILE}\nRegards"
    assert render(stand_in_replayed(letter), "text").decode() == f"Dear Sir,\n{ESCAPED}\nRegards\n"
    exact = json.loads(render(stand_in_replayed(letter), "json"))
    assert exact["content"] == letter and _clean(render(stand_in_replayed(letter), "json").decode())


def test_an_edited_or_deleted_comment_is_named() -> None:
    """`edited comment in thread t9` did not say which of the thread's comments (nor created)."""
    edited = Entry(0, "user-2", "comment.edited", {"thread_id": "t9", "comment_id": "c7"}, 5)
    assert describe(edited) == "edited comment c7 in thread t9"
    deleted = Entry(0, "user-2", "comment.deleted", {"thread_id": "t9", "comment_id": "c7"}, 6)
    assert describe(deleted) == "deleted comment c7 in thread t9"
    created = Entry(0, "user-2", "comment.created", {"thread_id": "t9", "comment_id": "c9"}, 4)
    assert describe(created) == "created comment c9 in thread t9"  # each comment line names it
