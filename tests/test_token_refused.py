"""`steno-collab token` prints only a token the configured gateway accepts: one it would refuse
(an empty user, HS256 not among `STENO_JWT_ALGORITHMS`) is one line and status 2."""

import pytest

from gateway.auth import verify_token
from schemas.settings import Settings
from steno_collab.cli import main


def _token(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int | str | None, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(["token", *args])
    out, err = capsys.readouterr()
    return exited.value.code, out, err


@pytest.mark.parametrize(("user", "firm"), [("", "demo-firm"), ("u1", ""), ("u" * 1000, "f1")])
def test_claims_the_gateway_refuses_are_refused_in_one_line(
    user: str, firm: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _token(capsys, "--user", user, "--firm", firm)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert err.startswith("steno-collab token: the gateway would refuse it (claims): claims sub")


def test_no_hs256_among_the_algorithms_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STENO_JWT_ALGORITHMS", "RS256")
    code, out, err = _token(capsys, "--user", "u1", "--firm", "demo-firm")
    assert (code, out) == (2, "")
    assert err == (
        "steno-collab token: signs HS256, which STENO_JWT_ALGORITHMS (RS256) does not allow:"
        " the gateway would refuse it\n"
    )


def test_a_token_printed_is_one_the_gateway_accepts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STENO_JWT_ALGORITHMS", "RS256,HS256")
    monkeypatch.setenv("STENO_JWT_AUDIENCE", "steno")
    code, out, err = _token(capsys, "--user", "u1", "--firm", "demo-firm", "--role", "viewer")
    assert (code, err) == (0, "")
    claims = verify_token(out.strip(), Settings())
    assert (claims.sub, claims.firm_id, claims.role) == ("u1", "demo-firm", "viewer")
