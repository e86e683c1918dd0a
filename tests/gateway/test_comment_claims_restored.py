"""A comment's `Idempotency-Key` claim (gateway/collab/idempotent_comments.py) outlives what Redis
forgets: the claims a wipe took come back from the log (`comment.created` / `comment.replied`
carry them, as `letter.created` does; `backfill locks` restores them), the ids of every attempt
a chain of 504s left unconfirmed are kept, and the time a claim was left unconfirmed is its
own, not its TTL's (which putting it back resets). Real Redis and the real log; FaultyLog holds
or fails the gateway's appends."""

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio

from gateway import restored
from gateway.api.idempotency import REUSED
from schemas import keys
from schemas.events import CommentCreated, CommentReplied, Topic
from tests.collab.comment_stack import TEXT, THREAD, Stack, long_ago, stack
from tests.collab.conftest import Collab, collab_on
from tests.gateway.harness import types_of
from tests.support import eventually
from tools.backfill import backfill
from tools.progress import Meter
from tools.sources import Sources

__all__ = ["stack"]  # the fixture, used here too
KEY = "order-7/comment"  # a client may put anything in it: not for the log


@pytest_asyncio.fixture(loop_scope="session")
async def collab(tmp_path: Path, redis_db: str) -> AsyncIterator[Collab]:
    async with collab_on(tmp_path, redis_db) as running:
        yield running


async def post(collab: Collab, path: str, body: dict[str, Any], key: str) -> httpx.Response:
    return await collab.call("POST", path, json=body, headers={"Idempotency-Key": key})


async def logged(collab: Collab, letter: str) -> list[dict[str, Any]]:
    """The values of the letter's comment events in the log."""
    records = await collab.gw.records(Topic.LETTERS, letter)
    found = zip(types_of(records), records, strict=True)
    return [json.loads(r.value) for kind, r in found if kind.startswith("comment.")]


async def restore(collab: Collab) -> str:
    """`steno-collab backfill locks`: its line, timing cut."""
    src = Sources(collab.gw.settings, collab.gw.log, collab.redis)
    [line] = (await backfill(src, "locks", meter=Meter(every_s=3600))).lines
    return line.split(" in ")[0]


async def test_a_comment_repeated_after_a_wipe_and_restore_answers_the_first(
    collab: Collab,
) -> None:
    letter = await collab.gw.create_letter(TEXT)
    base = f"/v1/letters/{letter}/comments"
    thread = await post(collab, base, THREAD, KEY)
    assert thread.status_code == 201, thread.text
    replies = f"{base}/{thread.json()['thread_id']}/replies"
    reply = await post(collab, replies, {"body": "agreed"}, KEY + "/reply")
    assert reply.status_code == 201, reply.text
    created, replied = await logged(collab, letter)
    assert KEY not in json.dumps([created, replied])  # only its hash, scoped to the caller
    claim = keys.idempotency_key("firm-a", "u1", KEY)
    assert created["idempotency"]["key"] == hashlib.sha256(claim.encode()).hexdigest()
    assert replied["idempotency"]["key"] != created["idempotency"]["key"]

    await collab.redis.flushdb()  # the test's database: FLUSHALL, for it
    early = await post(collab, base, THREAD, KEY)  # would write a second comment
    assert early.status_code == 503, early.text
    assert early.headers["Retry-After"] == str(restored.RETRY_S)
    assert await restore(collab) == (
        "locks: 0 restored, 0 already held, 0 lapsed;"
        " idempotency keys: 2 restored, 0 already held, 0 lapsed"
    )

    for path, body, key, first in (
        (base, THREAD, KEY, thread),
        (replies, {"body": "agreed"}, KEY + "/reply", reply),
    ):
        again = await post(collab, path, body, key)
        assert (again.status_code, again.json()) == (201, first.json()), again.text
        assert again.headers["Idempotent-Replayed"] == "true"
    other = await post(collab, base, {**THREAD, "body": "another"}, KEY)
    assert (other.status_code, other.json()) == (422, {"detail": REUSED})
    assert len(await logged(collab, letter)) == 2  # nothing appended


def test_comments_logged_before_the_field_still_decode() -> None:
    anchor = {"start": "s", "end": "e"}
    old = {"thread_id": "t", "comment_id": "c", "body": "b", "anchor": anchor}
    assert CommentCreated.model_validate(old).idempotency is None
    assert CommentReplied.model_validate(old).idempotency is None


async def refuse_held(stack: Stack, held: asyncio.Event) -> None:
    """The appends held at `held` end refused by the log: nothing of them lands."""
    stack.log.broken = True
    held.set()
    await eventually(lambda: stack.log.waiting == 0)
    stack.log.broken = False


async def test_a_repeat_after_a_chain_of_504s_answers_the_first_that_landed(
    stack: Stack,
) -> None:
    """The first's append is held past its 504; a repeat, once it cannot be running, takes the
    claim and 504s too. The first then lands: a later repeat answers it (re-read: the second's
    504 kept only its own ids, and the repeat waited to write a second comment)."""
    letter = await stack.gw.create_letter(TEXT)
    base = f"/v1/letters/{letter}/comments"
    first_held = stack.log.gate
    first_held.clear()
    first = await stack.post(base, THREAD, "chain-1")
    assert first.status_code == 504, first.text
    await long_ago(stack, "chain-1")
    stack.log.gate = second_held = asyncio.Event()  # the repeat's append held on its own
    second = await stack.post(base, THREAD, "chain-1")
    assert second.status_code == 504, second.text
    first_held.set()
    await eventually(lambda: stack.log.waiting == 1)  # the first's append landed
    await eventually(lambda: _listed(stack, letter, 1))
    [landed] = await stack.comments(letter)
    again = await stack.post(base, THREAD, "chain-1")
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["comment_id"] == landed
    await refuse_held(stack, second_held)
    assert await stack.comments(letter) == [landed]
    assert await stack.logged(letter) == ["comment.created"]


async def test_a_refused_repeat_leaves_the_first_its_504_time(stack: Stack) -> None:
    """The repeat that took the claim of a 504 long ago is refused (the log down): the first's
    claim is put back as it was, so the next repeat writes the comment at once (re-read: its
    age was read from its TTL, which putting it back reset: 409 for as long again)."""
    letter = await stack.gw.create_letter(TEXT)
    base = f"/v1/letters/{letter}/comments"
    held = stack.log.gate
    held.clear()
    unconfirmed = await stack.post(base, THREAD, "given-back")
    assert unconfirmed.status_code == 504, unconfirmed.text
    stack.log.gate = asyncio.Event()  # the first stays held; later appends pass
    stack.log.gate.set()
    await long_ago(stack, "given-back")
    stack.log.broken = True
    refused = await stack.post(base, THREAD, "given-back")
    assert refused.status_code == 503, refused.text
    stack.log.broken = False
    made = await stack.post(base, THREAD, "given-back")
    assert made.status_code == 201 and "Idempotent-Replayed" not in made.headers, made.text
    await refuse_held(stack, held)
    assert await stack.logged(letter) == ["comment.created"]


async def _listed(stack: Stack, letter: str, n: int) -> bool:
    return len(await stack.comments(letter)) == n
