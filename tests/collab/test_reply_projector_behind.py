"""A write naming a thread or comment Redis does not have yet (the projector down or behind: a
restart, a rebalance) is not refused as unknown: it is looked for where the log is folded to its
end (PostgreSQL, the snapshotter's tables), 503 with Retry-After if no store has folded it; 404
only when one that has lacks it. The projector is the real one, its commits held."""

import json
from pathlib import Path

import pytest

from gateway.collab import cold, shared
from snapshotter.migrate import migrate
from tests.collab import stack
from tests.collab.held_projector import Hold
from tests.projector.support import caught_up

TEXT = "Dear Sir,\nWe demand 5000 EUR within 14 days.\nRegards"


async def test_a_reply_to_a_thread_the_projector_has_not_folded_is_not_404(
    tmp_path: Path, redis_db: str, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared, "CATCH_UP_S", 0.3)  # the waits for the projector, PostgreSQL
    await migrate(pg_database)
    hold = Hold(monkeypatch)
    async with stack.services(tmp_path, redis_db, pg_database) as c:
        lid = await c.gw.create_letter(TEXT)
        base = f"/v1/letters/{lid}/comments"
        new = {"body": "old", "anchor": {"from": 0, "to": 4}}
        old = (await stack.ok(c, "POST", base, json=new))["thread_id"]
        await caught_up(c.gw.log, c.gw.settings, c.redis)
        await stack.snapshot(c, pg_database)

        hold.gate.clear()  # the projector is behind from here
        try:
            new = {"body": "fresh", "anchor": {"from": 10, "to": 16}}
            fresh = (await stack.ok(c, "POST", base, json=new))["thread_id"]
            held = json.loads(await c.redis.get(f"comments:{lid}") or "[]")
            assert [t["thread_id"] for t in held] == [old]  # not the fresh one
            # Both stores behind: neither can tell the thread is unknown.
            r = await c.call("POST", f"{base}/{fresh}/replies", "u2", json={"body": "early"})
            assert r.status_code == 503 and r.headers["Retry-After"], r.text
            assert r.json()["detail"] == cold.BEHIND

            await stack.snapshot(c, pg_database)  # PostgreSQL has it: the reply is taken
            made = await stack.ok(
                c, "POST", f"{base}/{fresh}/replies", "u2", json={"body": "reply"}
            )
            await stack.snapshot(c, pg_database)  # and a comment made meanwhile is the author's own
            path = f"{base}/{fresh}/{made['comment_id']}"
            await stack.ok(c, "PATCH", path, "u2", json={"body": "edited"})
            await stack.snapshot(c, pg_database)
            r = await c.call("PATCH", path, "u3", json={"body": "not mine"})
            assert r.status_code == 403, r.text
            await stack.ok(c, "POST", f"{base}/{fresh}/resolve")
            # Unknown where the log is folded to its end (PostgreSQL, now): 404.
            await stack.snapshot(c, pg_database)
            r = await c.call("POST", f"{base}/no-such-thread/replies", json={"body": "x"})
            assert r.status_code == 404, r.text
        finally:
            hold.gate.set()

        await caught_up(c.gw.log, c.gw.settings, c.redis)
        shown = (await stack.ok(c, "GET", base))["threads"]
        assert [[m["body"] for m in t["comments"]] for t in shown] == [
            ["old"],
            ["fresh", "edited"],
        ]
        assert shown[1]["resolved"]
        # Both caught up: an unknown thread or comment is 404, from Redis.
        r = await c.call("POST", f"{base}/no-such-thread/replies", json={"body": "x"})
        assert r.status_code == 404 and r.json()["detail"] == "no such thread", r.text
        r = await c.call("PATCH", f"{base}/{fresh}/no-such-comment", json={"body": "x"})
        assert r.status_code == 404 and r.json()["detail"] == "no such comment", r.text
