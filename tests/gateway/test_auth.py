"""Token verification (pure) and handshake refusals (HTTP 401/403 before any frame)."""

import base64
import hashlib
import hmac
import logging
import logging.handlers
import time
from typing import Any

import httpx
import jwt
import pytest
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.auth import mint_token, verify_token
from gateway.errors import AuthError
from schemas.settings import Settings
from tests.gateway.harness import Running

SETTINGS = Settings()
SECRET = SETTINGS.jwt_secret.get_secret_value()


def _token(claims: dict[str, Any], key: Any = SECRET, alg: str = "HS256") -> str:
    base = {"sub": "u1", "firmId": "firm-a", "name": "U", "role": "editor"}
    return jwt.encode({**base, "exp": int(time.time()) + 60, **claims}, key, algorithm=alg)


def _raw_token(payload: bytes) -> str:
    """A token signed over exactly `payload` (PyJWT cannot encode a lone surrogate)."""

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signed = b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + b64(payload)
    signature = hmac.new(SECRET.encode(), signed, hashlib.sha256).digest()
    return (signed + b"." + b64(signature)).decode()


def _claims_json(**claims: str) -> bytes:
    base = {"sub": "u1", "firmId": "firm-a", "role": "editor", **claims}
    fields = ",".join(f'"{k}":"{v}"' for k, v in base.items())  # values as written: escapes too
    return f'{{{fields},"exp":{int(time.time()) + 60}}}'.encode()


def test_valid_token_gives_claims() -> None:
    claims = verify_token(mint_token(SETTINGS, "u1", "firm-a", "commenter", "Ann"), SETTINGS)
    assert (claims.sub, claims.firm_id, claims.role, claims.name) == (
        "u1",
        "firm-a",
        "commenter",
        "Ann",
    )
    assert not claims.can_edit


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "not-a-jwt",
        _token({}, key="another-secret-of-sufficient-length-0123456789"),
        _token({"exp": int(time.time()) - 3600}),
        jwt.encode({"sub": "u1", "firmId": "f", "exp": int(time.time()) + 60}, None, "none"),  # type: ignore[arg-type]
        _token({"role": "superuser"}),
        _token({"firmId": None}),
        _token({"sub": "u" * 257}),
        _token({"firmId": "f" * 129}),
        _raw_token(_claims_json(sub="u\\ud800")),
        _raw_token(_claims_json(firmId="\\udfff")),
        _token({}) + "\ud800",  # an app command's JSON can carry it (`auth.renew`)
    ],
    ids=["missing", "empty", "malformed", "bad-signature", "expired", "alg-none", "bad-role",
         "no-firm", "long-sub", "long-firm", "surrogate-sub", "surrogate-firm", "surrogate"],
)  # fmt: skip
def test_invalid_tokens_are_refused(token: str | None) -> None:
    """Refused with an AuthError (401) that does not hold the token: a UnicodeEncodeError from
    PyJWT did (its repr reached the log of a failed app command) and answered 500."""
    with pytest.raises(AuthError) as refused:
        verify_token(token, SETTINGS)
    assert not token or token not in repr(refused.value)


def test_names_that_no_event_can_carry_are_cut_or_replaced() -> None:
    """The ids bound what events hold (schemas.events); a name is only shown, so it is cut to
    256 characters, and one that is not Unicode becomes the user id."""
    assert verify_token(_raw_token(_claims_json(name="n" * 300)), SETTINGS).name == "n" * 256
    assert verify_token(_raw_token(_claims_json(name="A\\ud800")), SETTINGS).name == "u1"
    assert verify_token(_raw_token(_claims_json(name="Zo\\u00eb")), SETTINGS).name == "Zo\u00eb"


def test_exp_is_required() -> None:
    token = jwt.encode({"sub": "u1", "firmId": "firm-a"}, SECRET, algorithm="HS256")
    with pytest.raises(AuthError):
        verify_token(token, SETTINGS)


def test_rs256_with_public_key_and_no_algorithm_confusion() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings = Settings(jwt_algorithms=["RS256"], jwt_public_key=public)
    assert verify_token(_token({}, key=private, alg="RS256"), settings).sub == "u1"
    with pytest.raises(AuthError):  # an HS256 token "signed" with the public key
        verify_token(_token({}, key=SECRET, alg="HS256"), settings)


def test_several_pem_keys_verify_while_keys_rotate() -> None:
    """`jwt_public_key` may hold the old and the new key (RSA and EC alike) at once."""
    old, new, stranger = (rsa.generate_private_key(public_exponent=65537, key_size=2048)
                          for _ in range(3))  # fmt: skip
    curve = ec.generate_private_key(ec.SECP256R1())

    def pem(key: Any) -> str:
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return public.decode()

    bundle = "\n".join([pem(old), pem(curve), pem(new)])
    settings = Settings(jwt_algorithms=["RS256", "ES256"], jwt_public_key=bundle)
    assert verify_token(_token({"sub": "a"}, key=old, alg="RS256"), settings).sub == "a"
    assert verify_token(_token({"sub": "b"}, key=new, alg="RS256"), settings).sub == "b"
    assert verify_token(_token({"sub": "c"}, key=curve, alg="ES256"), settings).sub == "c"
    with pytest.raises(AuthError, match="signature verification failed"):
        verify_token(_token({}, key=stranger, alg="RS256"), settings)
    with pytest.raises(AuthError, match="expired"):  # other failures are not hidden by a retry
        verify_token(_token({"exp": int(time.time()) - 600}, key=new, alg="RS256"), settings)


def test_audience_and_issuer_are_checked_when_configured() -> None:
    settings = Settings(jwt_audience="steno", jwt_issuer="https://idp")
    assert verify_token(mint_token(settings, "u1", "f"), settings).sub == "u1"
    with pytest.raises(AuthError):
        verify_token(_token({"aud": "other", "iss": "https://idp"}), settings)
    with pytest.raises(AuthError):
        verify_token(_token({"aud": "steno", "iss": "https://evil"}), settings)


async def _status(url: str, **kw: Any) -> int:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url, **kw):
            pass
    return refused.value.response.status_code


async def test_handshake_refusals(gw: Running) -> None:
    letter = await gw.create_letter(firm="firm-a")
    base = f"ws://127.0.0.1:{gw.port}/v1/letter-{letter}"
    assert await _status(base) == 401
    assert await _status(f"{base}?token=garbage") == 401
    assert await _status(f"{base}?token={_token({'exp': int(time.time()) - 100})}") == 401
    other_firm = gw.token(firm="firm-b")
    assert await _status(f"{base}?token={other_firm}") == 403
    unknown = f"ws://127.0.0.1:{gw.port}/v1/letter-0000-unknown?token={gw.token()}"
    assert await _status(unknown) == 403
    assert await _status(f"{base}?token={gw.token()}&letterId=other") == 400
    # A service token reaches any firm's letter.
    async with websockets.connect(f"{base}?token={gw.token(firm='x', role='service')}") as ws:
        assert ws.protocol.state.name == "OPEN"
    metrics = await gw.metrics()
    assert metrics['gateway_refusals_total{reason="unauthorized"}'] == 3
    assert metrics['gateway_refusals_total{reason="forbidden"}'] == 2


async def test_tokens_in_handshake_urls_never_reach_the_log(gw: Running) -> None:
    """y-websocket sends its token in the query string, which uvicorn logs with every
    handshake (and every HTTP request): the gateway's records carry it redacted."""
    letter = await gw.create_letter()
    token = gw.token()
    handler = logging.handlers.BufferingHandler(capacity=100_000)  # keeps every record here
    loggers = [logging.getLogger(name) for name in ("uvicorn.error", "uvicorn.access")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)  # the gateway command's level (the harness runs quieter)
        logger.addHandler(handler)
    try:
        client = await gw.client(letter)
        await client.synced.wait()
        await client.close()
        with pytest.raises(websockets.InvalidStatus):  # refused: logged with its status
            async with websockets.connect(gw.ws_url(letter, token + "x")):
                pass
        async with httpx.AsyncClient(base_url=gw.http) as http:
            await http.get("/healthz", params={"token": token})
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
    lines = [record.getMessage() for record in handler.buffer]
    handshakes = [line for line in lines if "WebSocket /v1/letter-" in line]
    assert len(handshakes) == 2 and all("token=[redacted]" in line for line in handshakes)
    assert any("/healthz?token=[redacted]" in line for line in lines)
    assert not any(token[-20:] in line for line in lines)
