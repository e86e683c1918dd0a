"""`diff`: the CLI's `--json` and the REST route answer the same object (as_of and content
included), and a range that runs backwards is refused naming the caller's own parameters
(`--from`/`--to` on the command line, `from`/`to` over REST)."""

import json

import asyncpg
import httpx
import pytest

from eventlog import Log
from schemas.settings import Settings
from steno_collab.services import gateway_app
from tests.tools.cli import cli_env, run_cli
from tests.tools.rest import auth
from tests.tools.scripted import LETTER, scripted
from tests.tools.snapshots import snapshot_all


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # the shape of the answer does not depend on the log


async def test_cli_and_rest_diff_agree(settings: Settings, log: Log) -> None:
    await scripted(log, settings)
    await snapshot_all(settings, log)
    env, base = cli_env(settings), f"/v1/letters/{LETTER}"
    code, out, err = await run_cli(env, "diff", LETTER, "--from", "1", "--to", "2", "--json")
    assert code == 0, err
    cli = json.loads(out)
    pg = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        app = gateway_app(settings, log, None, pg)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
            params, headers = {"from": "1", "to": "2"}, auth(settings)
            rest = await http.get(f"http://gw{base}/diff", params=params, headers=headers)
            params = {"from": "2", "to": "1"}
            backwards = await http.get(f"http://gw{base}/diff", params=params, headers=headers)
    finally:
        await pg.close()
    assert rest.status_code == 200, rest.text
    assert cli == rest.json()
    assert cli["from"]["as_of"].endswith("+00:00") and cli["to"]["as_of"] > cli["from"]["as_of"]
    assert cli["content"] == {
        "from": "Dear Sir,\nWe write about the claim",
        "to": "Sir,\nWe write about the claim\nRegards",
    }
    detail = backwards.json()["detail"]
    assert backwards.status_code == 400 and "--" not in detail, detail
    assert detail.startswith("to=1 (position") and "is before from=2 (position" in detail, detail
    code, _, err = await run_cli(env, "diff", LETTER, "--from", "2", "--to", "1")
    assert code == 2 and "--to (position" in err and "is before --from (position" in err, err
