"""The OpenAPI document tells a generated client when to come back: every 429 and 503 a route
documents carries `Retry-After` (the service sends it on every 429, and on a 503 when the wait
is known), as the README says."""

from pathlib import Path

from schemas.settings import Settings
from tests.gateway.harness import running_gateway


async def test_every_429_and_503_documents_retry_after(tmp_path: Path) -> None:
    async with running_gateway(Settings(data_dir=tmp_path / "steno", partitions=1)) as gw:
        paths = gw.app.openapi()["paths"]
    documented = [
        (path, method, status, "Retry-After" in answer.get("headers", {}))
        for path, methods in paths.items()
        for method, operation in methods.items()
        for status, answer in operation["responses"].items()
        if status in ("429", "503") and path != "/readyz"  # a probe's answer, not retried
    ]
    assert len(documented) > 10  # the routes behind a token, at least
    assert [d for d in documented if not d[3]] == []
