"""Points an integrator hit: a letter's title and content as created, and why a token was
refused (told to operators in the log and a metric, never to the caller)."""

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
import websockets

from gateway.auth import TokenRefused, verify_token
from gateway.auth_refusals import Refusals
from gateway.errors import AuthError
from gateway.live.session import Session
from gateway.metrics import Metrics
from schemas.settings import Settings
from tests.gateway.harness import Running

SETTINGS = Settings(jwt_audience="steno", jwt_issuer="https://idp", jwt_leeway_s=10)
SECRET = SETTINGS.jwt_secret.get_secret_value()
REFUSALS = "gateway.auth_refusals"


def _token(claims: dict[str, Any], key: str = SECRET) -> str:
    base = {"sub": "u1", "firmId": "firm-a", "role": "editor", "aud": "steno", "iss": "https://idp"}
    return jwt.encode({**base, "exp": int(time.time()) + 60, **claims}, key, algorithm="HS256")


# -- a letter's title and content ---------------------------------------------------------------


async def _create(gw: Running, body: dict[str, Any]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {gw.token()}"}
    async with httpx.AsyncClient(base_url=gw.http) as http:
        return await http.post("/v1/letters", json={"firm_id": "firm-a", **body}, headers=headers)


async def _content(gw: Running, letter: str) -> str:
    headers = {"Authorization": f"Bearer {gw.token()}"}
    async with httpx.AsyncClient(base_url=gw.http) as http:
        r = await http.get(f"/v1/letters/{letter}", headers=headers)
    assert r.status_code == 200, r.text
    return str(r.json()["content"])


async def test_content_null_is_none_and_line_breaks_of_every_kind_split_paragraphs(
    gw: Running,
) -> None:
    made = await _create(gw, {"title": "T", "content": None})
    assert made.status_code == 201, made.text
    assert await _content(gw, made.json()["letter_id"]) == ""
    made = await _create(gw, {"title": "T", "content": "Dear Sir,\r\nPay.\rRegards\n"})
    assert made.status_code == 201, made.text
    assert await _content(gw, made.json()["letter_id"]) == "Dear Sir,\nPay.\nRegards\n"


@pytest.mark.parametrize(
    ("title", "says"),
    [
        ("", "at least 1 character"),
        ("   ", "one line of text"),
        ("Smith\nv. Jones", "one line of text"),
        ("Smith\r", "one line of text"),
        ("esc \x1b[31m", "one line of text"),
        ("x" * 501, "at most 500 characters"),
    ],
    ids=["empty", "blank", "newline", "carriage-return", "escape", "too-long"],
)
async def test_a_title_is_one_line(gw: Running, title: str, says: str) -> None:
    r = await _create(gw, {"title": title})
    assert r.status_code == 422 and r.json()["detail"].startswith("invalid request: body.title: ")
    assert says in r.json()["detail"]


async def test_titles_of_one_line_are_kept_as_given(gw: Running) -> None:
    for title in ("Smith v.  Jones", "Müller\u200f ./. Schmidt", "x" * 500):
        r = await _create(gw, {"title": title})
        assert r.status_code == 201 and r.json()["title"] == title, r.text


# -- why a token was refused --------------------------------------------------------------------


# Tokens are made in the test, not at collection: a long run would see them expire first.
@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda now: None, "missing"),
        (lambda now: "garbage", "malformed"),
        (lambda now: _token({}, key="another-secret-of-sufficient-length-0123456789"),
         "bad_signature"),
        (lambda now: _token({"exp": now - 60}), "expired"),
        (lambda now: _token({"nbf": now + 60}), "not_yet_valid"),
        (lambda now: _token({"iat": now + 60}), "not_yet_valid"),
        (lambda now: _token({"aud": "billing"}), "audience"),
        (lambda now: _token({"iss": "https://evil"}), "issuer"),
        (lambda now: _token({"role": "root"}), "claims"),
        # Correctly signed, a registered claim of the wrong type: PyJWT's claim checks.
        (lambda now: _token({"sub": 42}), "claims"),
        (lambda now: _token({"jti": 7}), "claims"),
        (lambda now: _token({"exp": "tomorrow"}), "claims"),
        (lambda now: _token({"nbf": "soon"}), "claims"),
        (lambda now: _token({"iat": "today"}), "claims"),
        (lambda now: jwt.encode({"sub": "u1", "exp": now + 60}, "k" * 64, "HS512"), "algorithm"),
    ],
    ids=["missing", "malformed", "signature", "expired", "nbf", "iat", "aud", "iss", "role",
         "sub-type", "jti-type", "exp-type", "nbf-type", "iat-type", "alg"],
)  # fmt: skip
def test_each_refusal_names_its_reason(make: Callable[[int], str | None], reason: str) -> None:
    with pytest.raises(TokenRefused) as refused:
        verify_token(make(int(time.time())), SETTINGS)
    assert refused.value.reason == reason


def test_the_leeway_applies_to_exp_nbf_and_iat() -> None:
    """As the README says: a clock up to `jwt_leeway_s` off the issuer's either way."""
    now = int(time.time())
    for claims in ({"exp": now - 5}, {"nbf": now + 5}, {"iat": now + 5}):
        assert verify_token(_token(claims), SETTINGS).sub == "u1"


def test_a_flood_of_refusals_is_logged_once_per_reason_and_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    refusals, metrics = Refusals(repeat_s=30, clock=lambda: now[0]), Metrics()
    expired, forged = TokenRefused("x", "expired"), TokenRefused("y", "bad_signature")
    with caplog.at_level(logging.INFO, logger=REFUSALS):
        for _ in range(100):
            refusals.note(metrics, expired, "REST", "10.0.0.1")
        refusals.note(metrics, forged, "handshake", None)  # another reason: its own line
        now[0] = 31
        refusals.note(metrics, expired, "REST", "10.0.0.2")
    assert [r.getMessage() for r in caplog.records if r.name == REFUSALS] == [
        "REST token refused: expired, from 10.0.0.1",
        "handshake token refused: bad_signature, from unknown host",
        "REST token refused: expired, from 10.0.0.2 (99 more refused as expired not logged)",
    ]
    text = metrics.render().decode()
    assert 'gateway_auth_refusals_total{reason="expired"} 101.0' in text
    assert 'gateway_auth_refusals_total{reason="bad_signature"} 1.0' in text


async def test_refusals_are_logged_with_the_host_and_answered_as_before(
    gw: Running, caplog: pytest.LogCaptureFixture
) -> None:
    letter = await gw.create_letter()
    expired = gw.token(ttl_s=-60)  # past the fixture's leeway of 2 s
    with caplog.at_level(logging.INFO, logger=REFUSALS):
        async with httpx.AsyncClient(base_url=gw.http) as http:
            read = await http.get(f"/v1/letters/{letter}", headers={"Authorization": "Bearer x"})
            write = await http.post(  # refused before its body is read (api/anonymous.py)
                "/v1/letters", json={"firm_id": "firm-a", "title": "T"},
                headers={"Authorization": f"Bearer {expired}"},
            )  # fmt: skip
        with pytest.raises(websockets.InvalidStatus) as handshake:
            async with websockets.connect(gw.ws_url(letter, "")):
                pass
    for r in (read, write):
        assert (r.status_code, r.json()) == (401, {"detail": "unauthorized"})
        assert r.headers["www-authenticate"] == "Bearer"
    assert handshake.value.response.status_code == 401
    assert handshake.value.response.body == b"unauthorized"
    lines = [r.getMessage() for r in caplog.records if r.name == REFUSALS]
    assert lines == [
        "REST token refused: malformed, from 127.0.0.1",
        "REST token refused: expired, from 127.0.0.1",
        "handshake token refused: missing, from 127.0.0.1",
    ]
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name == REFUSALS)
    metrics = await gw.metrics()
    assert metrics['gateway_refusals_total{reason="unauthorized"}'] == 3  # as before
    for reason in ("malformed", "expired", "missing"):
        assert metrics[f'gateway_auth_refusals_total{{reason="{reason}"}}'] == 1


def test_refusals_are_still_auth_errors() -> None:
    """Callers catch AuthError, as before."""
    assert issubclass(TokenRefused, AuthError)


async def test_renewal_refusals_are_logged_like_handshakes(
    gw: Running, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused renewal token is logged by reason, rate-limited, never with its header (a
    kid, an algorithm), and counted; the session is told the same `renewal_unauthorized`."""
    ctx = gw.app.state.gateway.ctx
    monkeypatch.setattr(ctx.verifier, "refusals", Refusals())  # none logged yet
    session = Session(ctx, verify_token(gw.token(), gw.settings), lambda code, why: None)
    claims = {"sub": "u1", "exp": int(time.time()) + 60}
    refused = jwt.encode(claims, "k" * 64, "HS512", headers={"kid": "k-42"})  # not allowed
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            assert await session.renew_with(refused) == "renewal_unauthorized"
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("gateway")]
    assert lines == ["renewal token refused: algorithm, from unknown host"]
    assert "k-42" not in caplog.text and "HS512" not in caplog.text
    metrics = await gw.metrics()
    assert metrics['gateway_auth_refusals_total{reason="algorithm"}'] >= 3
    assert metrics['gateway_refusals_total{reason="renewal_unauthorized"}'] >= 3
