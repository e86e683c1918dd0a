"""Sessions that end while a browser test watches: a stack with no JWT leeway (a session ends
at its token's `exp`), tokens of a short life, and taking the steps again with a longer one
when a loaded machine was too slow for the first."""

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest_asyncio

from tests.web.stacks import stack_url

T = TypeVar("T")

# A token that expires while the test watches, yet lives long enough to open the letter: 8 s
# (whole seconds: 7 at worst) where the page is ready in 2-4 s; if it was not ready in time, once
# more with 20 s (a loaded CI machine took up to ~10 s to load it). See `before_expiry`.
SHORT_TTLS_S = (8, 20)
MARGIN_S = 1  # the steps that need the session alive ended at least this long before its end


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def base_url() -> AsyncIterator[str]:
    """conftest.py's stack with no JWT leeway: a session ends at its token's `exp`, not 10 s
    later (the leeway is for clock skew with an issuer, and here the test is the issuer)."""
    async with stack_url(jwt_leeway_s="0") as url:
        yield url


async def before_expiry(attempt: Callable[[int], Awaitable[T]]) -> T:
    """`attempt(ttl_s)` mints a token of that life and takes the steps that need its session
    alive (loading the page, typing); what it returns once they ended before the token's
    expiry. Too slow (or failed once the token had expired: the expiry may be why), it runs
    again with the next, longer life; the last one's outcome stands."""
    for ttl_s in SHORT_TTLS_S:
        # `exp` is int(mint time) + ttl_s, so at least `ends`; with no leeway, the session's end.
        ends = time.time() - 1 + ttl_s
        last = ttl_s == SHORT_TTLS_S[-1]
        try:
            result = await attempt(ttl_s)
        except Exception:
            if last or time.time() < ends - MARGIN_S:
                raise
        else:
            if last or time.time() < ends - MARGIN_S:
                return result
        print(f"not ready within a {ttl_s} s token: again with a longer one")
    raise AssertionError("unreachable: the last attempt returns or raises")
