"""gateway.api.webui: the page and its assets are served; the demo login exists only in dev mode."""

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from eventlog.factory import open_log
from gateway.api.app import create_app
from gateway.api.webui import DEMO_FIRM, webui_router
from gateway.auth import verify_token
from schemas.settings import Settings

SECRET = "webui-test-secret-0123456789abcdef"


async def client_for(settings: Settings) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(webui_router(settings))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def dev() -> AsyncIterator[httpx.AsyncClient]:
    async with await client_for(Settings(dev=True, jwt_secret=SECRET)) as client:
        yield client


@pytest.fixture
async def prod() -> AsyncIterator[httpx.AsyncClient]:
    async with await client_for(Settings(dev=False, jwt_secret=SECRET)) as client:
        yield client


async def test_page_and_assets_are_served(prod: httpx.AsyncClient) -> None:
    page = await prod.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = re.search(r'src="(/assets/[^"]+\.js)"', page.text)
    assert script is not None
    asset = await prod.get(script.group(1))
    assert asset.status_code == 200
    assert "WebsocketProvider" in asset.text or "letter-" in asset.text


async def test_dev_lists_demo_users_and_mints_verifiable_tokens(dev: httpx.AsyncClient) -> None:
    directory = (await dev.get("/dev/users")).json()
    assert directory["firm_id"] == DEMO_FIRM
    roles = {user["role"] for user in directory["users"]}
    assert {"editor", "viewer", "auditor"} <= roles
    names = [user["name"] for user in directory["users"]]
    assert "Avery Attorney" in names and "Parker Paralegal" in names

    minted = await dev.post("/dev/token", json={"user_id": "parker"})
    assert minted.status_code == 200
    claims = verify_token(minted.json()["token"], Settings(jwt_secret=SECRET))
    assert (claims.sub, claims.firm_id, claims.name, claims.role) == (
        "parker",
        DEMO_FIRM,
        "Parker Paralegal",
        "editor",
    )


async def test_dev_refuses_unknown_user(dev: httpx.AsyncClient) -> None:
    response = await dev.post("/dev/token", json={"user_id": "mallory"})
    assert response.status_code == 404


async def test_outside_dev_nothing_is_minted(prod: httpx.AsyncClient) -> None:
    assert (await prod.get("/dev/users")).status_code == 404
    refused = await prod.post("/dev/token", json={"user_id": "avery"})
    assert refused.status_code == 404
    assert "token" not in refused.json()


async def test_only_files_of_the_bundle_are_served(prod: httpx.AsyncClient) -> None:
    assert (await prod.get("/assets/..%2Fbuild-info.json")).status_code == 404
    assert (await prod.get("/assets/missing.js")).status_code == 404


@pytest.mark.parametrize(
    ("dev_mode", "api_docs", "served"),
    [(False, False, False), (False, True, True), (True, False, True)],
)
async def test_api_docs_only_when_asked_or_in_dev_mode(
    tmp_path: Path, dev_mode: bool, api_docs: bool, served: bool
) -> None:
    """Swagger UI loads its scripts from a CDN: a production gateway serves no docs pages."""
    settings = Settings(dev=dev_mode, api_docs=api_docs, jwt_secret=SECRET, data_dir=tmp_path)
    log = open_log(settings)
    try:
        app = create_app(settings, log)  # routes only: the lifespan (stores, log) is not run
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for path in ("/docs", "/redoc", "/openapi.json"):
                assert ((await client.get(path)).status_code == 200) is served, path
    finally:
        await log.close()
