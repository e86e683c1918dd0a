"""A comment's range is the user's: worked out on the letter with every edit the instance
accepted before the request, also those a failed append left to the letter's rescue
(gateway/live/rescue.py). It was worked out on what the log held: an editor typed "URGENT " at
the start of "Dear Sir", the append failed, and a comment on [0, 6) quoted "Dear S". Now the
request waits for the rescue within the append timeout, else 503 with Retry-After."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
from pycrdt import Doc, XmlFragment, XmlText

from eventlog.errors import LogUnavailableError
from eventlog.factory import open_log
from eventlog.records import Entry
from schemas.events import Topic
from schemas.settings import Settings
from tests.gateway.faults import FaultyLog
from tests.gateway.harness import Running, running_gateway, types_of
from tests.projector.support import projector
from tests.support import eventually


class RefusesAllButComments(FaultyLog):
    """While `refusing`, appends other than comments are refused: the rescue's last attempt
    failed and its next has not come yet when the comment is posted."""

    refusing = False

    async def append(self, topic: str, key: bytes, entries: Sequence[Entry]) -> list[int]:
        if self.refusing and any(
            not dict(e.headers)["type"].startswith(b"comment.") for e in entries
        ):
            raise LogUnavailableError("injected: the log refuses the rescue's append")
        return await super().append(topic, key, entries)


def _type_urgent(doc: Doc[Any]) -> None:
    paragraph = doc.get("default", type=XmlFragment).children[0]
    text = paragraph.children[0]
    assert isinstance(text, XmlText)
    text.insert(0, "URGENT ")


async def test_a_comment_range_holds_the_edits_a_rescue_holds(
    tmp_path: Path, redis_db: str
) -> None:
    settings = Settings(
        data_dir=tmp_path / "steno", redis_url=redis_db, partitions=1, database_url=None
    )
    real = open_log(settings)
    await real.start()
    log = RefusesAllButComments(real)
    redis = aioredis.Redis.from_url(redis_db)
    try:
        async with projector(settings, real), running_gateway(settings, log, redis) as gw:
            letter = await gw.create_letter("Dear Sir")
            alice = await gw.client(letter, user="alice")
            await alice.synced.wait()
            # Her session.joined logged first: its append failing would fail the room before
            # her edit arrives, which it would then refuse (nothing for the rescue to hold).
            await eventually(lambda: _logged(gw, letter, "session.joined"))
            log.broken = log.refusing = True  # the room's append fails, then its rescue's
            await alice.edit(_type_urgent)
            await alice.closed.wait()
            assert alice.close_code == 4503
            log.broken = False  # the log is back; the rescue's attempt was refused

            async def comment() -> httpx.Response:
                async with httpx.AsyncClient(base_url=gw.http, timeout=10) as http:
                    return await http.post(
                        f"/v1/letters/{letter}/comments",
                        json={"body": "why?", "anchor": {"from": 0, "to": 6}},
                        headers={"Authorization": f"Bearer {gw.token(user='bob')}"},
                    )

            refused = await comment()
            # Before: 201, anchored on the log's text without "URGENT ", quoting "Dear S".
            assert (refused.status_code, refused.json()) == (503, {"detail": "log behind"})
            assert refused.headers["retry-after"] == "1"

            log.refusing = False
            made = await comment()
            assert made.status_code == 201, made.text

            async def quotes() -> list[str]:
                async with httpx.AsyncClient(base_url=gw.http, timeout=10) as http:
                    r = await http.get(
                        f"/v1/letters/{letter}/comments",
                        headers={"Authorization": f"Bearer {gw.token(user='bob')}"},
                    )
                return [t["anchor"]["quote"] for t in r.json()["threads"]]

            await eventually(quotes)  # the projector keeps the threads
            assert await quotes() == ["URGENT"]
    finally:
        await redis.aclose()
        await real.close()


async def _logged(gw: Running, letter: str, kind: str) -> bool:
    return kind in types_of(await gw.records(Topic.LETTERS, letter))
