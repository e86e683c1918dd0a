"""Paths a client may send garbled: not UTF-8 once percent-decoded (400, counted), and with a
trailing slash (404, never a redirect built from the Host header). Over a real uvicorn."""

from pathlib import Path

import httpx

from schemas.settings import Settings
from tests.gateway.harness import running_gateway


async def test_a_path_not_utf8_is_refused_and_a_trailing_slash_is_not_redirected(
    tmp_path: Path,
) -> None:
    async with running_gateway(Settings(data_dir=tmp_path / "steno", partitions=1)) as gw:
        letter = await gw.create_letter()
        auth = {"Authorization": f"Bearer {gw.token('al')}"}
        base = f"{gw.http}/v1/letters/{letter}/locks"
        async with httpx.AsyncClient() as http:
            for garbled in ("%FF", "%FE", "a%C3"):  # each was the section "\ufffd" (or "a\ufffd")
                r = await http.post(f"{base}/{garbled}", headers=auth)
                assert r.status_code == 400, r.text
                assert r.json() == {"detail": "the path is not UTF-8 once percent-decoded"}
            r = await http.post(f"{base}/%EF%BF%BD", headers=auth)  # U+FFFD itself, well sent
            assert r.json() == {"detail": "locks need Redis"}  # it reached the route
            r = await http.get(f"{gw.http}/v1/letters/", headers={**auth, "Host": "evil.example"})
            assert (r.status_code, r.headers.get("location")) == (404, None)
        refused = (await gw.metrics())['gateway_refusals_total{reason="path_not_utf8"}']
        assert refused == 3
