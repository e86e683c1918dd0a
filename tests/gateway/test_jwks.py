"""Tokens signed with an identity provider's rotating keys, published as a JWKS on a real HTTP
server on loopback: rotation without a restart, made-up key ids, a provider that is down."""

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt import PyJWK
from jwt.algorithms import RSAAlgorithm
from pydantic import ValidationError

from gateway.jwks import Jwks
from schemas.settings import Settings
from tests.gateway.harness import Running, YClient, running_gateway


class Provider:
    """A JWKS endpoint: publishes the public halves of `keys` (by kid); counts the requests it
    received (`requests`, counted on arrival: a test comparing counts must not race the server
    thread) and answered (`fetches`, to wait for). `body`, when set, is answered instead (with
    200), as a misconfigured provider might."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.requests = 0
        self.fetches = 0
        self.up = True
        self.body: bytes | None = None
        self._fetched = threading.Condition()

    async def fetched(self, count: int) -> None:
        """Wait until `count` fetches have been answered (or fail after 10 s)."""

        def wait() -> bool:
            with self._fetched:
                return self._fetched.wait_for(lambda: self.fetches >= count, timeout=10)

        assert await asyncio.to_thread(wait), f"{self.fetches} fetches, waited for {count}"

    def add(self, kid: str) -> rsa.RSAPrivateKey:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self.keys[kid]

    def document(self) -> bytes:
        jwks = []
        for kid, key in self.keys.items():
            jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            jwks.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return json.dumps({"keys": jwks}).encode()


@contextmanager
def serving(provider: Provider) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with provider._fetched:
                provider.requests += 1
            body = provider.body or (provider.document() if provider.up else b"down")
            self.send_response(200 if provider.up else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            with provider._fetched:
                provider.fetches += 1
                provider._fetched.notify_all()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def signed(key: rsa.RSAPrivateKey, kid: str | None, user: str = "ann", role: str = "editor") -> str:
    claims = {"sub": user, "firmId": "firm-a", "role": role, "exp": int(time.time()) + 600}
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims, key, algorithm="RS256", headers=headers)


@contextmanager
def provider_at(up: bool = True) -> Iterator[tuple[Provider, str]]:
    provider = Provider()
    provider.add("k1")
    provider.up = up
    with serving(provider) as url:
        yield provider, url


def _settings(tmp_path: Path, url: str, **kw: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "steno", partitions=1, jwt_algorithms=["RS256"], jwt_jwks_url=url, **kw
    )


async def _status(gw: Running, token: str) -> int:
    async with httpx.AsyncClient(base_url=gw.http) as http:
        response = await http.get("/v1/letters", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


def _jwks(gw: Running) -> Jwks:
    jwks = gw.app.state.gateway.ctx.verifier.jwks
    assert isinstance(jwks, Jwks)
    return jwks


@pytest_asyncio.fixture
async def rotating(tmp_path: Path) -> AsyncIterator[tuple[Running, Provider]]:
    with provider_at() as (provider, url):
        async with running_gateway(_settings(tmp_path, url, jwt_jwks_refetch_s=0)) as gw:
            yield gw, provider


async def test_keys_rotate_without_a_restart(rotating: tuple[Running, Provider]) -> None:
    gw, provider = rotating
    k1 = provider.keys["k1"]
    async with httpx.AsyncClient(base_url=gw.http) as http:
        created = await http.post(
            "/v1/letters",
            json={"firm_id": "firm-a", "title": "T"},
            headers={"Authorization": f"Bearer {signed(k1, 'k1', 'backend', 'service')}"},
        )
    assert created.status_code == 201
    letter = created.json()["letter_id"]
    client = await YClient.connect(gw.ws_url(letter, signed(k1, "k1")))
    await client.synced.wait()  # the WebSocket handshake verifies with the provider's key
    await client.close()

    k2 = provider.add("k2")  # the provider publishes a new key and signs with it at once
    fetched = provider.requests
    assert await _status(gw, signed(k2, "k2")) == 200
    assert provider.requests == fetched + 1
    assert await _status(gw, signed(k1, "k1")) == 200  # the old one until it is withdrawn

    del provider.keys["k1"]  # withdrawn: forgotten at the next fetch (every 5 min, or a miss)
    assert await _status(gw, signed(provider.add("k3"), "k3")) == 200
    assert await _status(gw, signed(k1, "k1")) == 401
    assert await _status(gw, signed(k2, "k1")) == 401  # a key posing as another
    assert await _status(gw, signed(k2, None)) == 401  # no kid and no PEM key configured
    assert await _status(gw, signed(k2, "k2")) == 200
    dev = jwt.encode({"sub": "x", "firmId": "firm-a", "exp": int(time.time()) + 60},
                     gw.settings.jwt_secret.get_secret_value(), algorithm="HS256")  # fmt: skip
    assert await _status(gw, dev) == 401  # the algorithms stay pinned


async def test_made_up_key_ids_do_not_reach_the_provider(tmp_path: Path) -> None:
    with provider_at() as (provider, url):
        async with running_gateway(_settings(tmp_path, url)) as gw:  # refetch at most every 30 s
            stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            fetched = provider.requests  # the fetch at start
            tokens = [signed(stranger, uuid.uuid4().hex) for _ in range(30)]
            assert await asyncio.gather(*(_status(gw, t) for t in tokens)) == [401] * 30
            assert provider.requests == fetched
            assert await _status(gw, signed(provider.keys["k1"], "k1")) == 200


async def test_a_provider_that_is_down_at_start_is_asked_again(tmp_path: Path) -> None:
    with provider_at(up=False) as (provider, url):
        async with running_gateway(_settings(tmp_path, url, jwt_jwks_refetch_s=0)) as gw:
            async with httpx.AsyncClient(base_url=gw.http) as http:
                ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["jwks"].startswith("error:")
            token = signed(provider.keys["k1"], "k1")
            assert await _status(gw, token) == 401
            provider.up = True
            assert await _status(gw, token) == 200
            gw.app.state.readiness._answered_at = -1e9  # the last answer, from before, is stale
            async with httpx.AsyncClient(base_url=gw.http) as http:
                assert (await http.get("/readyz")).json()["jwks"] == "ok"


BAD_ANSWERS = {
    "no keys": b'{"keys": []}',
    "not JSON": b"<html>maintenance</html>",
    "nested too deep": b"[" * 100_000,
}


@pytest.mark.parametrize("answer", BAD_ANSWERS.values(), ids=BAD_ANSWERS.keys())
async def test_a_bad_answer_at_start_is_a_jwks_error_not_a_failed_start(
    tmp_path: Path, answer: bytes
) -> None:
    with provider_at() as (provider, url):
        provider.body = answer
        async with running_gateway(_settings(tmp_path, url, jwt_jwks_refetch_s=0)) as gw:
            async with httpx.AsyncClient(base_url=gw.http) as http:
                ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["jwks"].startswith("error:")
            token = signed(provider.keys["k1"], "k1")
            assert await _status(gw, token) == 401
            provider.body = None
            assert await _status(gw, token) == 200


@pytest.mark.parametrize("answer", BAD_ANSWERS.values(), ids=BAD_ANSWERS.keys())
async def test_a_bad_answer_to_a_miss_keeps_the_known_keys(
    rotating: tuple[Running, Provider], answer: bytes
) -> None:
    gw, provider = rotating
    k1 = provider.keys["k1"]
    assert await _status(gw, signed(k1, "k1")) == 200
    provider.body = answer
    assert await _status(gw, signed(Provider().add("kx"), "kx")) == 401  # was a 500
    assert _jwks(gw).error is not None
    assert await _status(gw, signed(k1, "k1")) == 200
    provider.body = None
    assert await _status(gw, signed(provider.add("k2"), "k2")) == 200
    assert _jwks(gw).error is None


@pytest.mark.parametrize("answer", BAD_ANSWERS.values(), ids=BAD_ANSWERS.keys())
async def test_the_scheduled_refresh_outlives_a_bad_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: bytes
) -> None:
    monkeypatch.setattr("gateway.jwks.REFRESH_S", 0.05)
    with provider_at() as (provider, url):
        # Misses never fetch here (once an hour): only the scheduled refresh can find k2.
        async with running_gateway(_settings(tmp_path, url, jwt_jwks_refetch_s=3600)) as gw:
            provider.body = answer
            await provider.fetched(provider.fetches + 1)
            k2 = provider.add("k2")
            provider.body = None
            # The second fetch from here on answered good keys; `want` awaits one under way.
            await provider.fetched(provider.fetches + 2)
            assert await _status(gw, signed(k2, "k2")) == 200
            assert await _status(gw, signed(provider.keys["k1"], "k1")) == 200


async def test_the_scheduled_refresh_outlives_a_surprise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure no one foresaw (here injected into the real client, once) ends one round of
    the refresher, not the refresher."""
    monkeypatch.setattr("gateway.jwks.REFRESH_S", 0.05)
    with provider_at() as (provider, url):
        async with running_gateway(_settings(tmp_path, url, jwt_jwks_refetch_s=3600)) as gw:
            client = _jwks(gw)._client
            real, raised = client.get_signing_keys, threading.Event()

            def once(refresh: bool = False) -> list[PyJWK]:
                if not raised.is_set():
                    raised.set()
                    raise RuntimeError("injected")
                return real(refresh)

            monkeypatch.setattr(client, "get_signing_keys", once)
            assert await asyncio.to_thread(raised.wait, 10)
            k2 = provider.add("k2")
            await provider.fetched(provider.fetches + 2)
            assert await _status(gw, signed(k2, "k2")) == 200


@pytest.mark.parametrize("bad", ["not a token", "e30.e30.e30"])
async def test_malformed_tokens_are_401_and_fetch_nothing(
    rotating: tuple[Running, Provider], bad: str
) -> None:
    gw, provider = rotating
    fetched = provider.requests
    assert await _status(gw, bad) == 401
    assert provider.requests == fetched


def test_a_jwks_url_that_is_not_http_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="jwt_jwks_url"):  # PyJWKClient fetches http(s)
        Settings(jwt_jwks_url="file:///etc/jwks.json")
