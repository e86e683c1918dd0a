"""The OpenAPI document gives every answer it lists the shape the gateway really sends: no
FastAPI validation list (the app words every 422 as its other errors, gateway.api.responses),
no answer without a schema, errors as JSON even on a plain-text route (/metrics). The shapes
published are checked against real answers of a gateway with the auditor routes."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest_asyncio

from eventlog import Log
from schemas.settings import Settings
from steno_collab.services import gateway_app
from tests.gateway.harness import Running, serving
from tests.support import started_log

REPLAY = "/v1/letters/{letter_id}/replay"
HISTORY = "/v1/letters/{letter_id}/history"


@pytest_asyncio.fixture(loop_scope="session")
async def log(tmp_path: Path) -> AsyncIterator[Log]:
    settings = Settings(data_dir=tmp_path / "steno", partitions=1, metrics_token="scrape-me")
    async with started_log(settings) as the_log:
        yield the_log


@pytest_asyncio.fixture(loop_scope="session")
async def gw(tmp_path: Path, log: Log) -> AsyncIterator[Running]:
    settings = Settings(data_dir=tmp_path / "steno", partitions=1, metrics_token="scrape-me")
    async with serving(gateway_app(settings, log, None, None), settings, log) as running:
        yield running


def _gaps(doc: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(path, method, status, media type) of answers documented without their real shape."""
    found = []
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                contents = answer.get("content") or {"(none)": {}}
                for media, body in contents.items():
                    schema = body.get("schema") or {}
                    wrong = not schema or "HTTPValidationError" in str(schema)
                    if wrong or (status >= "400" and media != "application/json"):
                        found.append((path, method, status, media))
    return found


def _published(doc: dict[str, Any], path: str, status: str, media: str) -> Any:
    """A validator of the schema `doc` publishes for that answer (its references resolved)."""
    schema = doc["paths"][path]["get"]["responses"][status]["content"][media]["schema"]
    return jsonschema_rs.validator_for({**schema, "components": doc["components"]})


async def test_every_documented_answer_has_its_shape(gw: Running) -> None:
    assert _gaps(gw.app.openapi()) == []


async def test_published_shapes_validate_real_answers(gw: Running) -> None:
    doc = gw.app.openapi()
    letter = await gw.create_letter("Dear Sir,\nWe write", title="Claim")
    auditor = {"Authorization": f"Bearer {gw.token(role='auditor')}"}
    async with httpx.AsyncClient(base_url=gw.http, headers=auditor) as http:
        replayed = await http.get(f"/v1/letters/{letter}/replay")
        assert replayed.status_code == 200 and replayed.json()["content"] == "Dear Sir,\nWe write"
        _published(doc, REPLAY, "200", "application/json").validate(replayed.json())
        text = await http.get(f"/v1/letters/{letter}/replay", params={"format": "text"})
        _published(doc, REPLAY, "200", "text/plain").validate(text.text)
        history = await http.get(f"/v1/letters/{letter}/history", params={"after": "not-one"})
        assert history.status_code == 422, history.text
        _published(doc, HISTORY, "422", "application/json").validate(history.json())
        metrics = await http.get("/metrics")  # the auditor's token is not the scraper's
        assert metrics.status_code == 401
        _published(doc, "/metrics", "401", "application/json").validate(metrics.json())
