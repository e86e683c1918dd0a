"""What the auditors' text outputs say, as a reviewer read them: every `history` event in a
sentence (a notification read, a thread resolved), counts in the singular for one, `diff`'s ends
named by version or instant, `--from` refused naming both of its forms, and an `offset` past the
log's end noted as not final (as an `at` still to come is)."""

import json

import pytest

from eventlog import Log
from schemas import NotificationRead
from schemas.settings import Settings
from snapshotter.document import Snapshot
from steno_collab.commands.diff import _diff
from steno_collab.commands.replay import _replay
from tests.tools.cli import cli_env, run_cli
from tests.tools.rest import auth, rest_client
from tests.tools.scripted import LETTER, scripted
from tests.tools.snapshots import snapshot_all
from tools.diff import Diff, format_text
from tools.history import Entry, describe, history
from tools.history import format_text as history_text
from tools.render import RULE, Provenance, render
from tools.replay import Cut, Replayed
from tools.sources import open_sources

pytestmark = pytest.mark.timeout(120)
BASE = f"/v1/letters/{LETTER}"
SNAPSHOT = Snapshot("body", {"type": "doc", "content": []}, "{}", "")


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # the wording is the log's neither


async def test_a_notification_read_is_a_sentence(settings: Settings, log: Log) -> None:
    session, _ = await scripted(log, settings)
    await session.append(NotificationRead(comment_ids=["c1"]), "user-2")
    many = [f"c{i}" for i in range(12)]
    await session.append(NotificationRead(comment_ids=many), "user-1")
    async with open_sources(settings) as src:
        entries = [e for e in await history(src, LETTER) if e.kind == "notification.read"]
    lines = [line.split(None, 2)[1:] for line in history_text(entries).splitlines()]
    assert lines == [
        ["user-2", "read their notification of comment c1"],
        [
            "user-1",
            "read their notifications of comments c0, c1, c2, c3, c4, c5, c6, c7, c8, c9"
            " [cut: 12 comments, --full shows all]",
        ],
    ]
    assert describe(entries[1], full=True).endswith("c9, c10, c11")


def test_resolve_and_reopen_name_the_thread() -> None:
    for kind in ("resolved", "reopened"):
        entry = Entry(0, "u", f"comment.{kind}", {"thread_id": "t1"}, 5)
        assert describe(entry) == f"{kind} thread t1"


def test_counts_of_one_are_singular() -> None:
    one = {"inserted": 7, "deleted": 0, "paragraphs": [0], "updates": 1, "duration_ms": 0}
    assert describe(Entry(0, "u", "edit", one, 5)) == (
        "edited: +7 -0 characters in paragraph 1 (1 update, 0.0 s)"
    )
    two = one | {"paragraphs": [0, 2], "updates": 2}
    assert describe(Entry(0, "u", "edit", two, 5)) == (
        "edited: +7 -0 characters in paragraphs 1, 3 (2 updates, 0.0 s)"
    )
    once = Replayed("L1", 0, b"", 7, 1_000, 2, 1, SNAPSHOT)
    text = render(once, "text", Provenance("t", Cut(offset=7))).decode()
    assert "base: version 2, then 1 update from the log\n" in text
    coarse = Diff("L1", once, once, runs=1, coarse=1)
    assert "(coarse: 1 of 1 run went past the diff's work budget: " in format_text(coarse)


async def test_diff_text_names_its_ends_as_json_does(settings: Settings, log: Log) -> None:
    await scripted(log, settings)
    await snapshot_all(settings, log)
    between = "2999-01-01T00:00:00Z"  # the log's end: no version exactly (the two leave after 2)
    for start, end in (("1", "2"), ("2", between)):
        text = await _diff(settings, LETTER, start, end, False)
        ends = json.loads(await _diff(settings, LETTER, start, end, True))
        named = []
        for sign, side in (("---", ends["from"]), ("+++", ends["to"])):
            at = f"at position {side['position']}"
            if side["version"] is not None:
                named.append(
                    f"{sign} {LETTER} version {side['version']} {at} (as of {side['as_of']})"
                )
            else:
                named.append(f"{sign} {LETTER} as of {side['as_of']} {at}")
        assert text.splitlines()[:2] == named
    assert ends["from"]["version"] == 2 and ends["to"]["version"] is None  # both kinds seen


async def test_from_names_both_of_its_forms(settings: Settings, log: Log) -> None:
    await scripted(log, settings)
    await snapshot_all(settings, log)
    env = cli_env(settings)
    for bad in ("abc", "1.5"):
        code, out, err = await run_cli(env, "diff", LETTER, "--from", bad, "--to", "2")
        assert (code, out) == (2, "")
        assert err == (
            f"steno-collab diff: {bad!r} is neither a version number (digits, such as 3) nor an"
            " ISO-8601 instant (e.g. 2026-11-27T10:00:00Z)\n"
        )
    async with rest_client(settings, log, settings.database_url, headers=auth(settings)) as http:
        answer = await http.get(f"{BASE}/diff", params={"from": "1.5", "to": "2"})
        assert answer.status_code == 400
        assert answer.json()["detail"].startswith(
            "'1.5' is neither a version number (digits, such as 3) nor an ISO-8601 instant"
        )
        # The `+` a URL decoded as a space keeps its hint.
        plus = await http.get(f"{BASE}/diff?from=2026-12-06T07:52:11.084+01:00&to=2")
        assert plus.status_code == 400 and "encode + as %2B" in plus.json()["detail"]


async def test_an_offset_past_the_end_is_noted(settings: Settings, log: Log) -> None:
    session, _ = await scripted(log, settings)
    end = (await log.end_offsets(session.topic))[0]
    note = f"past the log's end: its end when replayed (position {end}), which later edits may"
    code, out, err = await run_cli(cli_env(settings), "replay", LETTER, "--offset", "999")
    assert code == 0, err
    cut = next(line for line in out.split(RULE)[0].splitlines() if line.startswith("cut: "))
    assert cut == f"cut: --offset 999 (records below it) ({note} extend)"
    at_end = (await _replay(settings, LETTER, Cut(offset=end), "text", False)).decode()
    assert f"cut: --offset {end} (records below it)\n" in at_end  # the end itself: final
    async with rest_client(settings, log, settings.database_url, headers=auth(settings)) as http:
        past = await http.get(f"{BASE}/replay", params={"offset": 999_999})
        assert past.status_code == 200 and past.headers["replay-note"] == f"{note} extend"
        exact = await http.get(f"{BASE}/replay", params={"offset": end})
        assert "replay-note" not in exact.headers
