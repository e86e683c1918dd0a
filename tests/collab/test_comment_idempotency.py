"""`Idempotency-Key` on a new comment thread and on a reply (gateway/collab/idempotent_comments.py):
a post retried after an answer that never came makes one comment. A gateway with Redis and the
projector on the embedded log; FaultyLog holds or fails the gateway's appends."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import httpx

from gateway.api.idempotency import IN_PROGRESS, PENDING_SLACK_S, REUSED
from schemas import keys
from schemas.events import Topic
from schemas.settings import Settings
from tests.collab.comment_stack import TEXT, THREAD, TIMEOUT_S, Stack, long_ago, stack
from tests.gateway.harness import running_gateway
from tests.support import eventually

__all__ = ["stack"]  # the fixture


@contextlib.asynccontextmanager
async def reads_held(stack: Stack) -> AsyncIterator[asyncio.Event]:
    """The log's end offsets held (a slow broker) until the event is set: a thread's anchor on
    a letter no socket holds is checked against the letter rebuilt from the log, which waits."""
    gate, inner, held = asyncio.Event(), stack.log.inner, asyncio.Event()

    async def slow_end_offsets(topic: str) -> dict[int, int]:
        held.set()
        await gate.wait()
        return await inner.end_offsets(topic)

    stack.log.end_offsets = slow_end_offsets  # type: ignore[attr-defined]
    try:
        yield gate
    finally:
        gate.set()
        del stack.log.end_offsets


async def test_a_retry_after_success_answers_the_same_ids_and_appends_nothing(
    stack: Stack,
) -> None:
    letter = await stack.gw.create_letter(TEXT)
    base = f"/v1/letters/{letter}/comments"
    made = await stack.post(base, THREAD, "thread-1")
    assert made.status_code == 201 and "Idempotent-Replayed" not in made.headers, made.text
    again = await stack.post(base, THREAD, "thread-1")
    assert (again.status_code, again.json()) == (201, made.json())
    assert again.headers["Idempotent-Replayed"] == "true"

    replies = f"{base}/{made.json()['thread_id']}/replies"
    answered = await stack.post(replies, {"body": "agreed"}, "reply-1")
    assert answered.status_code == 201, answered.text
    again = await stack.post(replies, {"body": "agreed"}, "reply-1")
    assert (again.status_code, again.json()) == (201, answered.json())
    assert again.headers["Idempotent-Replayed"] == "true"

    ids = [made.json()["comment_id"], answered.json()["comment_id"]]
    assert await stack.comments(letter) == ids
    assert await stack.logged(letter) == ["comment.created", "comment.replied"]


async def test_repeats_while_the_first_is_in_flight_make_one_comment(stack: Stack) -> None:
    letter = await stack.gw.create_letter(TEXT)
    base = f"/v1/letters/{letter}/comments"
    # The first waits on the log (its anchor's check; not its append, whose 2 s timeout a
    # loaded machine could reach meanwhile): its client retries meanwhile.
    async with reads_held(stack) as gate:
        first = asyncio.create_task(stack.post(base, THREAD, "thread-2"))
        await eventually(
            lambda: stack.redis.exists(keys.idempotency_key("firm-a", "u1", "thread-2"))
        )
        repeats = await asyncio.gather(*(stack.post(base, THREAD, "thread-2") for _ in range(4)))
        for r in repeats:
            assert (r.status_code, r.json()) == (409, {"detail": IN_PROGRESS})
            assert int(r.headers["Retry-After"]) >= 1
        assert not first.done()
        gate.set()
        made = await first
    assert made.status_code == 201, made.text
    # Sent at once, the repeats after it all answer it: one comment in all.
    repeats = await asyncio.gather(*(stack.post(base, THREAD, "thread-2") for _ in range(4)))
    assert {(r.status_code, r.headers["Idempotent-Replayed"]) for r in repeats} == {(201, "true")}
    assert all(r.json() == made.json() for r in repeats)
    # Five firsts at once, the log not held: one makes it, each other is 409 or answers it.
    racing = await asyncio.gather(*(stack.post(base, THREAD, "thread-2b") for _ in range(5)))
    made_b = [r for r in racing if r.status_code == 201 and "Idempotent-Replayed" not in r.headers]
    assert len(made_b) == 1, [r.text for r in racing]
    for r in racing:
        assert r.status_code == 409 or (r.status_code, r.json()) == (201, made_b[0].json())
    ids = [made.json()["comment_id"], made_b[0].json()["comment_id"]]
    assert await stack.comments(letter) == ids
    assert await stack.logged(letter) == ["comment.created"] * 2


async def test_the_key_with_another_request_is_422(stack: Stack) -> None:
    letter = await stack.gw.create_letter(TEXT)
    base = f"/v1/letters/{letter}/comments"
    made = (await stack.post(base, THREAD, "thread-3")).json()
    replies = f"{base}/{made['thread_id']}/replies"
    for path, body in (
        (base, {**THREAD, "body": "another body"}),
        (base, {**THREAD, "anchor": {"from": 0, "to": 4}}),
        (replies, {"body": "check this"}),  # another route
    ):
        r = await stack.post(path, body, "thread-3")
        assert (r.status_code, r.json()) == (422, {"detail": REUSED})
    # A key used for a letter is another request too.
    r = await stack.http.post(
        "/v1/letters",
        json={"firm_id": "firm-a", "title": "T"},
        headers={
            "Authorization": f"Bearer {stack.gw.token(user='u1')}",
            "Idempotency-Key": "thread-3",
        },
    )
    assert (r.status_code, r.json()) == (422, {"detail": REUSED})
    assert await stack.comments(letter) == [made["comment_id"]]


async def test_a_refusal_frees_the_key(stack: Stack) -> None:
    letter = await stack.gw.create_letter(TEXT)
    base = f"/v1/letters/{letter}/comments"
    claim = keys.idempotency_key("firm-a", "u1", "thread-4")
    refused = await stack.post(base, THREAD, "thread-4", role="viewer")
    assert refused.status_code == 403
    assert await stack.redis.get(claim) is None
    blank = {**THREAD, "body": "   "}
    refused = await stack.post(base, blank, "thread-4")
    assert (refused.status_code, refused.json()) == (422, {"detail": "comment body is empty"})
    assert await stack.redis.get(claim) is None
    stack.log.broken = True  # the log refuses the append: nothing written
    refused = await stack.post(base, THREAD, "thread-4")
    assert refused.status_code == 503, refused.text
    assert await stack.redis.get(claim) is None
    stack.log.broken = False
    made = await stack.post(base, THREAD, "thread-4")
    assert made.status_code == 201 and "Idempotent-Replayed" not in made.headers
    again = await stack.post(base, THREAD, "thread-4")  # claimed by the one that made it
    assert (again.status_code, again.json()) == (201, made.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    # A reply refused (no such thread) frees its key as well.
    missing = await stack.post(f"{base}/no-such-thread/replies", {"body": "hm"}, "reply-4")
    assert missing.status_code == 404
    assert await stack.redis.get(keys.idempotency_key("firm-a", "u1", "reply-4")) is None
    assert await stack.logged(letter) == ["comment.created"]


async def test_a_repeat_after_a_504_answers_the_comment_that_landed_late(stack: Stack) -> None:
    """The append not confirmed in time lands after the 504: a repeat, however late (the
    pending claim lapsed before: the repeat made a second comment), answers its ids."""
    letter = await stack.gw.create_letter(TEXT)
    base = f"/v1/letters/{letter}/comments"
    made = (await stack.post(base, THREAD, "thread-5a")).json()
    replies = f"{base}/{made['thread_id']}/replies"
    claims = [keys.idempotency_key("firm-a", "u1", k) for k in ("thread-5", "reply-5")]
    stack.log.gate.clear()
    late = await asyncio.gather(
        stack.post(base, THREAD, "thread-5"), stack.post(replies, {"body": "ok"}, "reply-5")
    )
    assert [r.status_code for r in late] == [504, 504], [r.text for r in late]
    for claim in claims:  # its ids kept as long as a settled claim's, not a pending one's
        assert await stack.redis.ttl(claim) > 2 * TIMEOUT_S + 2 + PENDING_SLACK_S + 1
    stack.log.gate.set()
    await eventually(lambda: _count(stack.comments(letter), 3))  # the two landed late
    ids = await stack.comments(letter)  # the first thread's two comments, then the new one
    repeats: dict[str, tuple[str, dict[str, Any], str]] = {
        ids[2]: (base, THREAD, "thread-5"),
        ids[1]: (replies, {"body": "ok"}, "reply-5"),
    }
    for want, (path, body, key) in repeats.items():
        again = await stack.post(path, body, key)
        assert again.status_code == 201, again.text
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["comment_id"] == want
    assert await stack.comments(letter) == ids
    logged = await stack.logged(letter)  # the two late ones in either order: sent together
    assert sorted(logged) == ["comment.created", "comment.created", "comment.replied"]


async def _count(listed: Awaitable[list[str]], n: int) -> bool:
    return len(await listed) == n


async def _folded(stack: Stack, letter: str, offset: int) -> bool:
    at = await stack.redis.get(keys.ydoc_offset_key(letter))
    return at is not None and int(at) > offset


def _hold_only_what_is_waiting(stack: Stack) -> asyncio.Event:
    """The appends held now stay held (the gate returned); later ones pass."""
    held, stack.log.gate = stack.log.gate, asyncio.Event()
    stack.log.gate.set()
    return held


async def test_a_repeat_of_one_not_stored_writes_it_anew(stack: Stack) -> None:
    """After a 504, the comment in no store that read the log to its end: the repeat takes the
    claim and writes it with ids of its own, not the first's (re-read RJ: the projector made a
    comment deleted meanwhile again, PostgreSQL kept it deleted). A first landing after that
    is a second comment, as the 504 warns; later repeats answer the repeat's."""
    letter = await stack.gw.create_letter(TEXT)
    base = f"/v1/letters/{letter}/comments"
    stack.log.gate.clear()
    unconfirmed = await stack.post(base, THREAD, "thread-8")
    assert unconfirmed.status_code == 504, unconfirmed.text
    held = _hold_only_what_is_waiting(stack)
    soon = await stack.post(base, THREAD, "thread-8")  # the first's append may still land
    assert (soon.status_code, soon.json()) == (409, {"detail": IN_PROGRESS}), soon.text
    assert int(soon.headers["Retry-After"]) > 2 * TIMEOUT_S + PENDING_SLACK_S  # its 504 just now
    await long_ago(stack, "thread-8")
    again = await stack.post(base, THREAD, "thread-8")
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers, again.text
    held.set()
    await eventually(lambda: _count(stack.logged(letter), 2))
    last = (await stack.gw.records(Topic.LETTERS, letter))[-1].offset
    await eventually(lambda: _folded(stack, letter, last))
    made = await stack.comments(letter)
    assert len(made) == 2 and again.json()["comment_id"] in made  # two comments, two ids
    third = await stack.post(base, THREAD, "thread-8")
    assert (third.status_code, third.json()) == (201, again.json()), third.text
    assert third.headers["Idempotent-Replayed"] == "true"


async def test_a_repeat_waits_for_an_older_gateways_unconfirmed_claim(stack: Stack) -> None:
    """During a rolling upgrade: a claim a gateway without `settled_ms` left unconfirmed is as
    old as its TTL says (it set it at its 504), not long ago (re-read RR: the repeat wrote the
    comment anew at once, while the first's append could still land: a second comment)."""
    letter = await stack.gw.create_letter(TEXT)
    base = f"/v1/letters/{letter}/comments"
    stack.log.gate.clear()
    unconfirmed = await stack.post(base, THREAD, "thread-9")
    assert unconfirmed.status_code == 504, unconfirmed.text
    held = _hold_only_what_is_waiting(stack)
    claim = keys.idempotency_key("firm-a", "u1", "thread-9")
    raw = await stack.redis.get(claim)
    assert raw is not None
    older = json.loads(raw)
    del older["settled_ms"]  # as a gateway before it wrote it, TTL set at the 504
    await stack.redis.set(claim, json.dumps(older, separators=(",", ":")), keepttl=True)
    soon = await stack.post(base, THREAD, "thread-9")
    assert (soon.status_code, soon.json()) == (409, {"detail": IN_PROGRESS}), soon.text
    assert int(soon.headers["Retry-After"]) > 2 * TIMEOUT_S + PENDING_SLACK_S  # its 504 just now
    held.set()


async def test_a_refused_repeat_gives_the_first_its_claim_back(stack: Stack) -> None:
    """The repeat that took the claim is refused (the log down): the first's claim is put back,
    so that once the first lands a later repeat answers it (re-read RJ: the claim was deleted,
    and the next repeat made a second comment)."""
    letter = await stack.gw.create_letter(TEXT)
    base = f"/v1/letters/{letter}/comments"
    claim = keys.idempotency_key("firm-a", "u1", "thread-10")
    stack.log.gate.clear()
    unconfirmed = await stack.post(base, THREAD, "thread-10")
    assert unconfirmed.status_code == 504, unconfirmed.text
    held = _hold_only_what_is_waiting(stack)
    await long_ago(stack, "thread-10")
    first = await stack.redis.get(claim)
    stack.log.broken = True
    refused = await stack.post(base, THREAD, "thread-10")
    assert refused.status_code == 503, refused.text
    assert await stack.redis.get(claim) == first  # unconfirmed, the first's ids
    assert await stack.redis.ttl(claim) > 2 * TIMEOUT_S + 2 + PENDING_SLACK_S + 1
    stack.log.broken = False
    held.set()
    await eventually(lambda: _count(stack.comments(letter), 1))  # the first landed
    [made] = await stack.comments(letter)
    again = await stack.post(base, THREAD, "thread-10")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["comment_id"] == made
    assert await stack.comments(letter) == [made]
    assert await stack.logged(letter) == ["comment.created"]


async def test_a_late_refusal_lets_the_repeat_write_the_comment(stack: Stack) -> None:
    """The append of a 504 ends refused by the log: nothing landed, a repeat once it cannot be
    running any more writes it."""
    letter = await stack.gw.create_letter(TEXT)
    base = f"/v1/letters/{letter}/comments"
    stack.log.gate.clear()
    unconfirmed = await stack.post(base, THREAD, "thread-9")
    assert unconfirmed.status_code == 504, unconfirmed.text
    stack.log.broken = True
    stack.log.gate.set()
    await eventually(lambda: stack.log.waiting == 0)
    stack.log.broken = False
    await long_ago(stack, "thread-9")
    made = await stack.post(base, THREAD, "thread-9")
    assert made.status_code == 201 and "Idempotent-Replayed" not in made.headers, made.text
    assert await stack.comments(letter) == [made.json()["comment_id"]]
    assert await stack.logged(letter) == ["comment.created"]


async def test_a_write_that_outlasts_its_claim_does_not_append_past_a_repeat(
    stack: Stack,
) -> None:
    """A request slower than its pending claim (the letter rebuilt for the anchor's check):
    the claim lapsed and a repeat took the key. The first must not write too (re-read rrA:
    both appended, two comments for one key)."""
    letter = await stack.gw.create_letter(TEXT)
    base = f"/v1/letters/{letter}/comments"
    claim = keys.idempotency_key("firm-a", "u1", "thread-6")
    async with reads_held(stack) as gate:
        first = asyncio.create_task(stack.post(base, THREAD, "thread-6"))
        await eventually(lambda: stack.redis.exists(claim))
        await stack.redis.delete(claim)  # lapsed (its TTL is ~40 s: not waited for here)
        second = asyncio.create_task(stack.post(base, THREAD, "thread-6"))
        await eventually(lambda: stack.redis.exists(claim))  # the repeat's claim
        gate.set()
        late, made = await first, await second
    assert (late.status_code, late.json()) == (409, {"detail": IN_PROGRESS}), late.text
    assert made.status_code == 201 and "Idempotent-Replayed" not in made.headers, made.text
    assert await stack.comments(letter) == [made.json()["comment_id"]]
    assert await stack.logged(letter) == ["comment.created"]


async def test_a_write_whose_lapsed_claim_nobody_took_claims_it_again(stack: Stack) -> None:
    letter = await stack.gw.create_letter(TEXT)
    base = f"/v1/letters/{letter}/comments"
    claim = keys.idempotency_key("firm-a", "u1", "thread-7")
    async with reads_held(stack) as gate:
        first = asyncio.create_task(stack.post(base, THREAD, "thread-7"))
        await eventually(lambda: stack.redis.exists(claim))
        await stack.redis.delete(claim)
        gate.set()
        made = await first
    assert made.status_code == 201, made.text
    again = await stack.post(base, THREAD, "thread-7")  # answered as the first: settled done
    assert (again.status_code, again.json()) == (201, made.json()), again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await stack.logged(letter) == ["comment.created"]


async def test_without_redis_a_keyed_comment_is_503(tmp_path: Path) -> None:
    async with running_gateway(Settings(data_dir=tmp_path / "steno", partitions=2)) as gw:
        letter = await gw.create_letter(TEXT)
        headers = {"Authorization": f"Bearer {gw.token(user='u1')}"}
        async with httpx.AsyncClient(base_url=gw.http, timeout=30) as http:

            async def post(key: str) -> httpx.Response:
                headers["Idempotency-Key"] = key
                return await http.post(
                    f"/v1/letters/{letter}/comments", json=THREAD, headers=headers
                )

            r = await post("thread-6")
            assert r.status_code == 503 and "needs Redis" in r.json()["detail"], r.text
            assert (await post("bad key")).status_code == 400


async def test_the_openapi_document_lists_the_header_and_its_answers(stack: Stack) -> None:
    paths = stack.gw.app.openapi()["paths"]
    for path in (
        "/v1/letters/{letter_id}/comments",
        "/v1/letters/{letter_id}/comments/{thread_id}/replies",
    ):
        operation = paths[path]["post"]
        assert "Idempotency-Key" in [p["name"] for p in operation["parameters"]]
        answers = operation["responses"]
        assert {"400", "409", "422"} <= set(answers)
        assert "Idempotent-Replayed" in answers["201"]["headers"]
        assert "Retry-After" in answers["409"]["headers"]
        assert "full of comments" in answers["409"]["description"]
