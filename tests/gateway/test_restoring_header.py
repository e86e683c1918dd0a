"""The 503s of "Redis lost its locks and create claims, the gateways restore them from the log"
carry `Steno-Unavailable: restoring` (gateway/restored.py `refusal_headers`), so that a client
need not match the detail's operator text (the web page did); other 503s do not. Real Redis,
the embedded log, the projector in-process (tests/collab/conftest.py's stack)."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio

from gateway import restored
from gateway.api.responses import errors
from tests.collab.conftest import Stoppable, stoppable_on
from tests.collab.redis_wiped import create, notified_then_wiped, rebuild, unrestored

HEADER = "Steno-Unavailable"


@pytest_asyncio.fixture(loop_scope="session")
async def stack(tmp_path: Path, redis_db: str) -> AsyncIterator[Stoppable]:
    async with stoppable_on(tmp_path, redis_db) as running:
        yield running


def restoring(r: httpx.Response) -> None:
    unrestored(r)  # 503, the operator's detail, Retry-After: 5
    assert r.headers[HEADER] == "restoring"


async def test_every_restoring_503_says_so_in_a_header(stack: Stoppable) -> None:
    collab = stack.collab
    lid = await collab.gw.create_letter("Intro\nDamages")
    locks = f"/v1/letters/{lid}/locks"
    assert (await collab.call("POST", f"{locks}/intro", user="alice")).is_success
    await collab.redis.flushdb()  # the test's database: FLUSHALL, for it

    restoring(await collab.call("POST", f"{locks}/damages", user="bob"))  # a grant (ACQUIRE)
    restoring(await collab.call("DELETE", f"{locks}/damages", user="bob"))  # LAPSE
    restoring(await collab.call("POST", f"{locks}/intro", user="alice"))  # a renewal (_look)
    restoring(await collab.call("GET", locks, user="bob"))  # the listing
    restoring(await create(collab, key="order-7"))  # a keyed create (CLAIM)
    thread = {"body": "check", "anchor": {"from": 0, "to": 5}}
    keyed = {"Idempotency-Key": "thread-1"}
    comment = f"/v1/letters/{lid}/comments"
    restoring(await collab.call("POST", comment, user="bob", json=thread, headers=keyed))

    assert await rebuild(collab) == "locks: 1 restored, 0 already held, 0 lapsed"
    r = await collab.call("GET", locks, user="bob")
    assert r.status_code == 200 and HEADER not in r.headers, r.text


async def test_other_503s_have_no_such_header(stack: Stoppable) -> None:
    """Notifications after a wipe with the projector down: a 503 of its own (rebuilding)."""
    collab = stack.collab
    await notified_then_wiped(collab, stack.folding)
    r = await collab.call("GET", "/v1/notifications", user="bob")
    assert r.status_code == 503 and "Retry-After" in r.headers, r.text
    assert HEADER not in r.headers


def test_the_openapi_document_names_the_header() -> None:
    documented = errors(503)[503]["headers"][restored.UNAVAILABLE_HEADER]
    assert documented["schema"]["enum"] == [restored.RESTORING]
    assert restored.refusal_headers() == {"Retry-After": "5", HEADER: "restoring"}
