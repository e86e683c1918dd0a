"""`verify` checks every stored version and the audit trail, not only the latest version.

A forged older version is a replay's base (tools/replay.py), and the audit trail is what
`history` shows: each tampering below must make `verify` exit 1 naming what differs, while the
honest letter (edits, comments, versions, an edit burst still open at the log's end) passes.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from eventlog import Log
from schemas import Anchor, CommentCreated, CommentReplied, CommentResolved
from schemas.settings import Settings
from tests.tools.cli import cli_env, run_cli
from tests.tools.scripted import LETTER, scripted
from tests.tools.session import Session
from tools.backfill import backfill
from tools.progress import Meter
from tools.sources import Sources, open_sources


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # verify reads the log through the same scan on either log


async def _honest_letter(log: Log, settings: Settings) -> Session:
    """The scripted letter, a reply and a resolved thread, then user-1 edits again without
    leaving: that burst is still open at the log's end (no audit row yet, anywhere)."""
    session, _ = await scripted(log, settings)
    await session.append(CommentReplied(thread_id="t1", comment_id="c2", body="Mr Smith"), "user-1")
    await session.append(CommentResolved(thread_id="t1"), "user-2")
    one = session.clients[1]
    await session.join(one)
    paragraph = cast(XmlElement, next(iter(one.root.children)))
    text = next(c for c in paragraph.children if isinstance(c, XmlText))
    text.insert(0, "Dear ")
    await session.quiesce()
    async with open_sources(settings, redis=True, pg=True) as src:
        await backfill(src, "all", meter=Meter(every_s=3600))
    return session


async def _verify(settings: Settings) -> tuple[int, str]:
    code, out, err = await run_cli(cli_env(settings), "verify", LETTER, "--quiet")
    assert "Traceback" not in err, err
    return code, out


async def test_an_honest_letter_verifies(settings: Settings, log: Log) -> None:
    session = await _honest_letter(log, settings)
    async with open_sources(settings, pg=True) as src:
        versions = await src.pg.fetchval(
            "SELECT count(*) FROM letter_version WHERE letter_id = $1", LETTER
        )
        kinds = await src.pg.fetch(
            "SELECT DISTINCT change_type FROM collaboration WHERE letter_id = $1", LETTER
        )
    assert versions == 2  # "draft" and "final": the older one is checked too
    assert {"edit", "comment.created", "comment.replied", "comment.resolved"} <= {
        r["change_type"] for r in kinds
    }
    code, out, _ = await run_cli(cli_env(settings), "verify", LETTER)
    assert code == 0 and "0 mismatch(es)" in out, out
    assert "version(s) equal the replay at their positions" in out
    assert "audit row(s) equal the log's" in out and "2 comment(s) in 1 thread(s)" in out
    assert f"comments:{LETTER} at position" in out
    code, out, _ = await run_cli(cli_env(settings), "verify", "--all")
    assert code == 0 and "0 mismatch(es)" in out, out
    # Records neither consumer has folded yet (their rows and keys may lag): still no mismatch,
    # each projection is compared up to the position it holds.
    anchor = Anchor(start="AA==", end="AA==", quote="Regards")
    await session.append(
        CommentCreated(thread_id="t2", comment_id="c3", anchor=anchor, body="later"), "user-2"
    )
    await session.leave(session.clients[1])
    code, out, _ = await run_cli(cli_env(settings), "verify", LETTER)
    assert code == 0 and "0 mismatch(es)" in out, out


Tamper = Callable[[Sources], Awaitable[None]]


async def _forge_old_state(src: Sources) -> None:
    """Version 1 re-encoded with "FORGED " typed in: a valid Yjs state (forge_version.py)."""
    state = await _version_column(src, "ydoc_state")
    doc: Doc[Any] = Doc()
    doc.apply_update(state)
    first = cast(XmlElement, next(iter(doc.get("default", type=XmlFragment).children)))
    cast(XmlText, next(iter(first.children))).insert(0, "FORGED ")
    await src.pg.execute(
        "UPDATE letter_version SET ydoc_state = $2 WHERE letter_id = $1 AND version_number = 1",
        LETTER,
        doc.get_update(),
    )


async def _alter_old_content(src: Sources) -> None:
    await src.pg.execute(
        "UPDATE letter_version SET content = content || ' FORGED'"
        " WHERE letter_id = $1 AND version_number = 1",
        LETTER,
    )


async def _reattribute_edit(src: Sources) -> None:
    status = await src.pg.execute(
        "UPDATE collaboration SET user_id = 'mallory' WHERE id = (SELECT id FROM collaboration"
        " WHERE letter_id = $1 AND change_type = 'edit' AND user_id = 'user-1'"
        " ORDER BY log_offset LIMIT 1)",
        LETTER,
    )
    assert status == "UPDATE 1"


async def _delete_comment_row(src: Sources) -> None:
    status = await src.pg.execute(
        "DELETE FROM collaboration WHERE letter_id = $1 AND change_type = 'comment.created'",
        LETTER,
    )
    assert status == "DELETE 1"


async def _change_comment_body(src: Sources) -> None:
    status = await src.pg.execute(
        "UPDATE comments SET body = 'FORGED' WHERE letter_id = $1 AND comment_id = 'c1'", LETTER
    )
    assert status == "UPDATE 1"


async def _change_redis_comments(src: Sources) -> None:
    assert src.redis is not None
    key = f"comments:{LETTER}"
    threads = json.loads(cast(bytes, await src.redis.get(key)))
    assert threads[0]["comments"][0]["body"] == "Which sir?"
    threads[0]["comments"][0]["body"] = "FORGED"
    await src.redis.set(key, json.dumps(threads), keepttl=True)


async def _version_column(src: Sources, column: str) -> Any:
    return await src.pg.fetchval(
        f"SELECT {column} FROM letter_version WHERE letter_id = $1 AND version_number = 1",
        LETTER,
    )


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (_forge_old_state, "postgres: version 1 at position {v1}: Yjs state text differs"),
        (_alter_old_content, "postgres: version 1 at position {v1}: content column differs"),
        (
            _reattribute_edit,
            "postgres: audit edit row at position {e1}:"
            ' user_id stored "mallory" where the log has "user-1"',
        ),
        (_delete_comment_row, "postgres: audit comment.created row at position {c1} missing"),
        (
            _change_comment_body,
            'postgres: comment c1: body stored "FORGED" where the log has "Which sir?"',
        ),
        (
            _change_redis_comments,
            f"redis: comments:{LETTER} at position {{r}}: thread t1: comments stored",
        ),
    ],
    ids=["old-state", "old-content", "audit-user", "audit-deleted", "comment-body", "redis"],
)
async def test_tampering_is_a_mismatch(
    settings: Settings, log: Log, tamper: Tamper, expected: str
) -> None:
    await _honest_letter(log, settings)
    async with open_sources(settings, redis=True, pg=True) as src:
        latest = await src.pg.fetchval(
            "SELECT max(version_number) FROM letter_version WHERE letter_id = $1", LETTER
        )
        v1 = await _version_column(src, "log_offset")
        c1 = await src.pg.fetchval(
            "SELECT log_offset FROM collaboration WHERE letter_id = $1"
            " AND change_type = 'comment.created'",
            LETTER,
        )
        e1 = await src.pg.fetchval(
            "SELECT min(log_offset) FROM collaboration WHERE letter_id = $1"
            " AND change_type = 'edit' AND user_id = 'user-1'",
            LETTER,
        )
        assert src.redis is not None
        r = int(cast(bytes, await src.redis.get(f"ydoc:{LETTER}:offset")))
        assert latest > 1  # the forged version is not the latest one
        await tamper(src)
    code, out = await _verify(settings)
    assert code == 1, out
    assert f"MISMATCH {LETTER} " + expected.format(v1=v1, c1=c1, e1=e1, r=r) in out, out
    assert "ok " not in out  # --quiet: mismatches only
