"""The identity provider's signing keys, from its JWKS URL (`jwt_jwks_url`), kept in memory.

Production identity providers (Auth0, Okta, Cognito, Keycloak) sign with keys they rotate and
publish as a JSON Web Key Set; a token names its key (`kid`). The set is fetched at start, again
every `REFRESH_S`, and at once when a token names a kid it lacks, since a provider may sign with
a new key moments after publishing it. Verifying never waits on the provider otherwise.

PyJWKClient fetches and parses the set; its own cache is not used: it fetches while holding a
lock that every verification takes, so a provider that is slow or down would stall every
handshake, and after a failed fetch each unknown kid fetches again. Here one fetch runs at a
time, a failed one keeps the keys already known, and kids not in the set make it fetch at most
once per `refetch_s` (`jwt_jwks_refetch_s`): a token can name any kid, and each must not cost
the provider a request.
"""

import asyncio
import contextlib
import logging
import time

from jwt import PyJWK, PyJWKClient, PyJWTError

log = logging.getLogger(__name__)
REFRESH_S = 300.0
FETCH_TIMEOUT_S = 5.0


class Jwks:
    def __init__(self, url: str, refetch_s: float) -> None:
        self.url, self.refetch_s = url, refetch_s
        self.keys: dict[str, PyJWK] = {}  # by kid
        self.error: str | None = "not fetched yet"  # the last fetch's failure, if it failed
        self._client = PyJWKClient(url, cache_jwk_set=False, timeout=FETCH_TIMEOUT_S)
        self._fetch: asyncio.Task[None] | None = None
        self._attempted = -refetch_s  # monotonic time of the last fetch
        self._refresher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Fetch once (a failure is logged and retried on demand), then keep the set fresh."""
        await self.refresh()
        self._refresher = asyncio.create_task(self._every(REFRESH_S), name="jwks refresh")

    async def close(self) -> None:
        for task in (self._refresher, self._fetch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def want(self, kid: str) -> PyJWK | None:
        """The key `kid`, fetching the set again first if it lacks it and none was fetched in
        the last `refetch_s` (or one is under way)."""
        if kid not in self.keys and (
            self._fetch is not None or time.monotonic() - self._attempted >= self.refetch_s
        ):
            await self.refresh()
        return self.keys.get(kid)

    async def refresh(self) -> None:
        if self._fetch is None:
            self._fetch = asyncio.create_task(self._fetch_once(), name="jwks fetch")
        await asyncio.shield(self._fetch)  # a caller that gives up stops no one's fetch

    async def _fetch_once(self) -> None:
        self._attempted = time.monotonic()
        try:
            found = await asyncio.to_thread(self._client.get_signing_keys, True)
        # Not only the client's own errors: a 200 of `{"keys": []}` (PyJWKSetError), a body that
        # is not JSON (ValueError) or nests too deep for it (RecursionError), or a connection
        # reset mid-body (OSError) is a failed fetch too.
        except (PyJWTError, ValueError, RecursionError, OSError) as exc:
            self.error = str(exc) or type(exc).__name__
            log.warning("JWKS %s: %s (keeping %d known keys)", self.url, exc, len(self.keys))
        else:
            self.keys = {key.key_id: key for key in found if key.key_id}
            self.error = None
        finally:
            self._fetch = None

    async def _every(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.refresh()
            except Exception:  # one round's surprise must not end the refreshing for good
                log.exception("JWKS %s: refresh failed", self.url)
