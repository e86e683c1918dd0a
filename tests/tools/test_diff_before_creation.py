"""`diff --from T` with T before the letter existed is refused as `replay --at T` is (one stderr
line, exit 1; REST: 404 with the same words), not diffed from an empty document, which showed the
letter's creation as typed by its first editors."""

import httpx
import pytest

from eventlog import Log
from schemas.events import Topic
from schemas.settings import Settings
from steno_collab.services import gateway_app
from tests.snapshotter.scripts import LetterScript, append
from tests.tools.cli import cli_env, run_cli
from tests.tools.rest import auth
from tools.diff import diff
from tools.replay import Cut, NotYetCreated
from tools.sources import open_sources

LETTER = "L-unborn"
BEFORE, LATER = "2000-01-01T00:00:00Z", "2999-01-01T00:00:00Z"


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # the refusal is the tools', whichever log


async def _letter(log: Log, settings: Settings) -> str:
    s = LetterScript(LETTER)
    events = [s.created("alice"), s.paragraph("alice", "Dear Sir,"), s.paragraph("bob", "Regards")]
    await append(log, settings.topic(Topic.LETTERS), events)
    return s.firm


async def test_a_diff_from_before_the_letter_is_refused_as_a_replay_then(
    settings: Settings, log: Log
) -> None:
    firm = await _letter(log, settings)
    env = cli_env(settings)
    replayed = await run_cli(env, "replay", LETTER, "--at", BEFORE)
    diffed = await run_cli(env, "diff", LETTER, "--from", BEFORE, "--to", LATER)
    assert replayed[:2] == diffed[:2] == (1, ""), diffed
    assert diffed[2] == replayed[2].replace("steno-collab replay:", "steno-collab diff:")
    assert f"letter {LETTER} did not exist at 2000-01-01" in diffed[2]
    assert diffed[2].count("\n") == 1 and "Traceback" not in diffed[2]

    app = gateway_app(settings, log, None, None)
    transport = httpx.ASGITransport(app=app)
    headers, base = auth(settings, firm=firm), f"/v1/letters/{LETTER}"
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        at = await client.get(f"{base}/replay", params={"at": BEFORE}, headers=headers)
        changes = await client.get(
            f"{base}/diff", params={"from": BEFORE, "to": LATER}, headers=headers
        )
    assert (
        (changes.status_code, changes.json())
        == (at.status_code, at.json())
        == (
            404,
            {"detail": diffed[2].removeprefix("steno-collab diff: ").rstrip("\n")},
        )
    )

    async with open_sources(settings) as src:
        with pytest.raises(NotYetCreated):  # both ends before it too
            await diff(src, LETTER, Cut(at_ms=0), Cut(at_ms=1))
        # From its creation on, everything in between is diffed, each line by its typist.
        result = await diff(src, LETTER, Cut(offset=1), Cut())
    assert [(h.added, h.authors) for h in result.hunks] == [
        (["Dear Sir,", "Regards"], ["alice", "bob"])
    ]
