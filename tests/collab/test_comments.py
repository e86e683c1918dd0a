"""Comments over REST: each contract with its errors, anchors following edits, roles."""

from pathlib import Path
from typing import Any

from pycrdt import Doc, XmlFragment

from tests.collab.conftest import Collab, collab_on
from tests.support import eventually

JSON = {"Content-Type": "application/json"}
TEXT = "Dear Sir,\nWe demand 5000 EUR within 14 days.\nRegards"


async def _thread(c: Collab, lid: str, start: int, end: int, **kw: Any) -> dict[str, Any]:
    body = {"body": "check this", "anchor": {"from": start, "to": end}, **kw}
    r = await c.call("POST", f"/v1/letters/{lid}/comments", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _threads(c: Collab, lid: str, user: str = "u1", role: str = "editor") -> list[Any]:
    r = await c.call("GET", f"/v1/letters/{lid}/comments", user=user, role=role)
    assert r.status_code == 200, r.text
    return list(r.json()["threads"])


async def test_thread_lifecycle(collab: Collab) -> None:
    lid = await collab.gw.create_letter(TEXT)
    start = TEXT.index("5000")
    made = await _thread(collab, lid, start, start + 8, mentions=["u2"])
    assert set(made) == {"thread_id", "comment_id"}
    tid = made["thread_id"]
    (thread,) = await _threads(collab, lid)  # read-your-writes: no waiting in the test
    assert thread["anchor"]["from"] == start and thread["anchor"]["to"] == start + 8
    assert thread["anchor"]["quote"] == "5000 EUR"
    assert thread["resolved"] is False and thread["detached"] is False
    first = thread["comments"][0]
    assert first["author"] == {"id": "u1", "name": "U1"} and first["mentions"] == ["u2"]

    base = f"/v1/letters/{lid}/comments/{tid}"
    r = await collab.call(
        "POST", base + "/replies", user="u2", role="commenter", json={"body": "ok"}
    )
    assert r.status_code == 201 and set(r.json()) == {"comment_id"}
    reply_id = r.json()["comment_id"]
    assert (await collab.call("POST", base + "/resolve")).status_code == 200
    (thread,) = await _threads(collab, lid)
    assert thread["resolved"] is True and len(thread["comments"]) == 2
    assert (await collab.call("POST", base + "/reopen")).status_code == 200

    r = await collab.call("PATCH", f"{base}/{reply_id}", json={"body": "not mine"})
    assert r.status_code == 403  # u1 is not the reply's author
    r = await collab.call("PATCH", f"{base}/{reply_id}", user="u2", role="commenter",
                          json={"body": "edited"})  # fmt: skip
    assert r.status_code == 200, r.text
    (thread,) = await _threads(collab, lid)
    assert thread["resolved"] is False
    assert thread["comments"][1]["body"] == "edited" and thread["comments"][1]["edited_at"]
    r = await collab.call("DELETE", f"{base}/{reply_id}", user="u2", role="commenter")
    assert r.status_code == 200
    (thread,) = await _threads(collab, lid)
    assert [c["comment_id"] for c in thread["comments"]] == [made["comment_id"]]


async def test_errors(collab: Collab) -> None:
    lid = await collab.gw.create_letter(TEXT)
    path = f"/v1/letters/{lid}/comments"
    ok = {"body": "x", "anchor": {"from": 0, "to": 4}}
    assert (await collab.call("POST", path, role="viewer", json=ok)).status_code == 403
    assert (await collab.call("POST", path, firm="firm-b", json=ok)).status_code == 403
    assert (await collab.call("GET", path, firm="firm-b")).status_code == 403
    assert (await collab.call("POST", "/v1/letters/nope/comments", json=ok)).status_code == 403
    r = await collab.http.post(path, json=ok)
    assert r.status_code == 401
    r = await collab.call("POST", path, content=b"{not json", headers=JSON)
    assert r.status_code == 422
    r = await collab.call("POST", path, content=b"null", headers={"content-type": "text/plain"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("invalid request: body: ")
    big = {**ok, "body": "x" * 10_001}
    r = await collab.call("POST", path, json=big)
    assert r.status_code == 413 and "10000" in r.json()["detail"]
    for anchor in ({"from": 5, "to": 999}, {"from": 4, "to": 4}, {"from": -1, "to": 2}, {}):
        r = await collab.call("POST", path, json={"body": "x", "anchor": anchor})
        assert r.status_code == 422, (anchor, r.text)
        assert r.json()["detail"]
    r = await collab.call("POST", path, json={"body": "x", "anchor": {"start": "AAA=", "end": "!"}})
    assert r.status_code == 422
    r = await collab.call("POST", path + "/nope/replies", json={"body": "x"})
    assert r.status_code == 404
    # A lone surrogate is valid JSON but not Unicode; errors that name it must still render.
    surrogate = rb'{"body": "x\ud800", "anchor": {"from": 0, "to": 4}, "\udfff": 1}'
    for where, body in (
        (path, surrogate),
        ("/v1/letters", rb'{"firm_id": "firm-a", "title": "\ud800"}'),
    ):
        r = await collab.call("POST", where, content=body, headers=JSON)
        assert r.status_code == 422 and r.json()["detail"], (where, r.text)
    r = await collab.call("POST", path, role="commenter", json=ok)
    assert r.status_code == 201  # a commenter comments
    assert len(await _threads(collab, lid, user="v", role="viewer")) == 1  # a viewer reads


async def test_anchor_follows_edits_and_detaches(collab: Collab) -> None:
    lid = await collab.gw.create_letter(TEXT)
    start = TEXT.index("5000")
    await _thread(collab, lid, start, start + 8)
    gone = await _thread(collab, lid, TEXT.index("Regards"), len(TEXT))
    client = await collab.gw.client(lid)
    await client.synced.wait()

    def edit(doc: Doc[Any]) -> None:
        root = doc.get("default", type=XmlFragment)
        root.children[0].children[0].insert(0, "Hello. ")  # before the anchor
        line = root.children[1].children[0]
        line.insert(len(str(line)), " Or else.")  # after it
        del root.children[2].children[0][0:7]  # the second thread's text

    await client.edit(edit)

    async def threads_after_the_edit() -> dict[str, Any] | None:
        # The edit travels over the WebSocket, the read over HTTP: wait until it is applied.
        threads = {t["thread_id"]: t for t in await _threads(collab, lid)}
        return threads if threads[gone["thread_id"]]["detached"] else None

    threads = await eventually(threads_after_the_edit, timeout=15, interval=0.1)  # REST budget
    moved = next(t for tid, t in threads.items() if tid != gone["thread_id"])
    assert moved["anchor"]["from"] == start + 7 and moved["anchor"]["to"] == start + 15
    assert moved["detached"] is False
    assert threads[gone["thread_id"]]["detached"] is True
    await client.close()


async def test_single_paragraph_and_deleted_paragraph(collab: Collab) -> None:
    lid = await collab.gw.create_letter("Only line\nSecond line")
    await _thread(collab, lid, 12, 16)  # "cond"
    client = await collab.gw.client(lid)
    await client.synced.wait()

    def drop_second(doc: Doc[Any]) -> None:
        root = doc.get("default", type=XmlFragment)
        del root.children[1]

    await client.edit(drop_second)

    async def detached() -> bool:
        (thread,) = await _threads(collab, lid)
        return bool(thread["detached"]) and thread["anchor"]["from"] is None

    await eventually(detached, timeout=5)
    await client.close()


async def test_a_letter_holds_a_bounded_number_of_comments(tmp_path: Path, redis_db: str) -> None:
    """Each comment event rewrites the letter's comments in Redis whole: past the bound, new
    threads and replies are refused with a message, and the letter's other reads go on."""
    async with collab_on(tmp_path, redis_db, max_comments_per_letter=3) as c:
        lid = await c.gw.create_letter(TEXT)
        tid = (await _thread(c, lid, 0, 4))["thread_id"]
        replies = f"/v1/letters/{lid}/comments/{tid}/replies"
        for _ in range(2):
            r = await c.call("POST", replies, json={"body": "+"})
            assert r.status_code == 201, r.text
        r = await c.call("POST", replies, json={"body": "+"})
        assert (r.status_code, r.json()) == (
            409, {"detail": "this letter holds 3 comments, the most it may"}
        )  # fmt: skip
        body = {"body": "new", "anchor": {"from": 0, "to": 4}}
        assert (await c.call("POST", f"/v1/letters/{lid}/comments", json=body)).status_code == 409
        (thread,) = await _threads(c, lid)
        assert len(thread["comments"]) == 3
        other = await c.gw.create_letter(TEXT)  # the bound is per letter
        await _thread(c, other, 0, 4)


async def test_a_comment_on_more_text_than_a_quote_holds_keeps_the_whole_range(
    collab: Collab,
) -> None:
    """A comment on the whole of a long letter: the anchor is the range, the quote (shown beside
    it) is cut to the 10,000 characters `Anchor.quote` holds. Both ways of giving an anchor."""
    text = "\n".join(f"Paragraph {i:04d} " + "x" * 85 for i in range(120))  # 12,119 characters
    lid = await collab.gw.create_letter(text)
    made = await _thread(collab, lid, 0, len(text))
    (thread,) = await _threads(collab, lid)
    assert (thread["anchor"]["from"], thread["anchor"]["to"]) == (0, len(text))
    assert thread["anchor"]["quote"] == text[:10_000]
    ends = {"start": thread["anchor"]["start"], "end": thread["anchor"]["end"]}
    body = {"body": "again", "anchor": ends}
    r = await collab.call("POST", f"/v1/letters/{lid}/comments", json=body)
    assert r.status_code == 201, r.text
    again = [t for t in await _threads(collab, lid) if t["thread_id"] != made["thread_id"]]
    assert again[0]["anchor"]["quote"] == text[:10_000]
    assert (again[0]["anchor"]["from"], again[0]["anchor"]["to"]) == (0, len(text))
