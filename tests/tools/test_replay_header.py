"""A printed replay is a record of itself: `replay --format text|html` opens with which letter
it is (id, title), which cut (asked and replayed: as of, position, base version) and by what;
`--bare` and REST give the document alone, JSON is unchanged (tools/render.py)."""

import json
import time

import pytest

from eventlog import Log
from schemas.settings import Settings
from snapshotter.document import Snapshot
from steno_collab.commands.replay import _replay
from tests.tools.cli import cli_env, run_cli
from tests.tools.scripted import LETTER, scripted
from tests.tools.snapshots import snapshot_all
from tools.render import AHEAD, RULE, Provenance, render, replay_headers, tool
from tools.replay import Cut, Replayed
from tools.timefmt import iso

FINAL = "Sir,\nWe write about the claim\nRegards\n"


@pytest.fixture
def log_kind() -> str:
    return "embedded"


def _split(text: str) -> tuple[list[str], str]:
    head, _, body = text.partition(RULE + "\n")
    return head.splitlines(), body


async def test_text_names_the_letter_and_the_cut(settings: Settings, log: Log) -> None:
    _, (first, _second) = await scripted(log, settings)
    await snapshot_all(settings, log)
    at = (await _replay(settings, LETTER, Cut(at_ms=first), "text", True)).decode()
    head, body = _split(at)
    assert body == "Dear Sir,\nWe write about the claim\n"
    assert head[:4] == [
        f"letter: {LETTER}",
        "title: t",
        f"cut: --at {iso(first)}",
        f"as of: {iso(first)}",
    ]
    assert head[4].startswith("position: ") and head[4].endswith(" in partition 0 (next offset)")
    assert head[5] == "base: version 1, then 0 updates from the log"
    assert head[6:] == [f"replayed from the log by {tool()}"] and tool().startswith(
        "steno-collab 0."
    )

    # The log alone, to its end: the title is read from the letter's first record all the same.
    head, body = _split((await _replay(settings, LETTER, Cut(), "text", False)).decode())
    assert body == FINAL and head[1:3] == ["title: t", "cut: the log's end when replayed"]
    assert head[5] == "base: the log from the letter's first record"
    head, _ = _split((await _replay(settings, LETTER, Cut(offset=3), "text", True)).decode())
    assert head[2:5] == [
        "cut: --offset 3 (records below it)",
        head[3],
        "position: 3 in partition 0 (next offset)",
    ]


async def test_html_has_a_header_json_and_bare_do_not(settings: Settings, log: Log) -> None:
    await scripted(log, settings)
    page = (await _replay(settings, LETTER, Cut(), "html", True)).decode()
    assert page.startswith(f'<header data-steno-provenance=""><dl><dt>letter</dt><dd>{LETTER}</dd>')
    assert (
        "<dt>title</dt><dd>t</dd>" in page
        and f"replayed from the log by {tool()}</p></header>\n" in page
    )
    assert page.endswith("<p>Regards</p>\n")
    bare = (await _replay(settings, LETTER, Cut(), "html", True, header=False)).decode()
    assert page.endswith(bare) and not bare.startswith("<header")
    assert (await _replay(settings, LETTER, Cut(), "text", True, header=False)).decode() == FINAL
    as_json = await _replay(settings, LETTER, Cut(), "json", True)
    assert as_json == await _replay(settings, LETTER, Cut(), "json", True, header=False)
    assert set(json.loads(as_json)) == {
        "letter_id", "partition", "position", "as_of", "base_version", "updates_replayed",
        "content", "document",
    }  # fmt: skip


async def test_cli_header_and_bare(settings: Settings, log: Log) -> None:
    await scripted(log, settings)
    env = cli_env(settings)
    code, out, err = await run_cli(env, "replay", LETTER, "--no-versions")
    assert code == 0, err
    assert out.startswith(f"letter: {LETTER}\ntitle: t\n") and out.endswith(f"{RULE}\n{FINAL}")
    assert await run_cli(env, "replay", LETTER, "--bare") == (0, FINAL, "")


def test_what_users_wrote_is_escaped_in_the_header() -> None:
    snapshot = Snapshot("body", {"type": "doc", "content": []}, "{}", "")
    replayed = Replayed("L1", 0, b"", 7, 1_000, None, 0, snapshot)
    hostile = Provenance('a\x1b]0;pwned\x07\n<script>"x"</script>', Cut(offset=7))
    text = render(replayed, "text", hostile).decode()
    assert 'title: a\\x1b]0;pwned\\x07\\x0a<script>"x"</script>\n' in text
    page = render(replayed, "html", hostile).decode()
    assert "<script>" not in page and "&lt;script&gt;&quot;x&quot;&lt;/script&gt;" in page


async def test_an_instant_still_to_come_is_named_not_final(settings: Settings, log: Log) -> None:
    _, (first, _second) = await scripted(log, settings)
    soon = time.time_ns() // 1_000_000 + 3_600_000  # an hour on: a typo'd date, a clock ahead
    head, body = _split((await _replay(settings, LETTER, Cut(at_ms=soon), "text", False)).decode())
    assert body == FINAL  # the log's end: everything there is
    assert head[2] == f"cut: --at {iso(soon)} ({AHEAD})"
    head, _ = _split((await _replay(settings, LETTER, Cut(at_ms=first), "text", False)).decode())
    assert head[2] == f"cut: --at {iso(first)}"  # a past instant: final, no note


def test_rest_headers_name_the_cut() -> None:
    snapshot = Snapshot("body", {"type": "doc", "content": []}, "{}", "")
    replayed = Replayed("L1", 3, b"", 7, 1_000, 2, 5, snapshot)
    named = replay_headers(replayed, Cut(at_ms=1_000), began_ms=2_000)
    assert named == {
        "Replay-Partition": "3",
        "Replay-Position": "7",
        "Replay-As-Of": iso(1_000),
        "Replay-Base-Version": "2",
    }
    alone = Replayed("L1", 3, b"", 0, None, None, 0, snapshot)
    assert replay_headers(alone, Cut(at_ms=2_001), began_ms=2_000) == {
        "Replay-Partition": "3",
        "Replay-Position": "0",
        "Replay-Note": AHEAD,
    }
