"""The gateway serves the committed bundle (web/dist) whatever its working directory."""

import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from gateway.api.webui import webui_router
from schemas.settings import Settings


async def test_page_is_served_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no web/dist here: `steno-collab gateway` started elsewhere
    app = FastAPI()
    app.include_router(webui_router(Settings(dev=False)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        page = await http.get("/")
        assert page.status_code == 200, page.text
        script = re.search(r'src="(/assets/[^"]+\.js)"', page.text)
        assert script is not None
        assert (await http.get(script.group(1))).status_code == 200
