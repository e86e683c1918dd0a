"""`steno-collab diff` of a letter the log does not hold exits 1 (README, "Rebuilding and
auditing") whether its ends are version numbers or instants."""

import pytest

from eventlog import Log
from schemas.settings import Settings
from tests.tools.cli import cli_env, run_cli
from tests.tools.scripted import scripted


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # the command's code is log-agnostic


@pytest.mark.parametrize(
    ("start", "end"), [("1", "2"), ("2000-01-01", "2100-01-01")], ids=["versions", "instants"]
)
async def test_diff_of_an_unknown_letter_exits_1(
    settings: Settings, log: Log, start: str, end: str
) -> None:
    await scripted(log, settings)  # the log holds another letter
    code, out, err = await run_cli(
        cli_env(settings), "diff", "no-such-letter", "--from", start, "--to", end
    )
    assert (code, out) == (1, ""), err
    assert err == "steno-collab diff: no letter 'no-such-letter' in the log\n"
