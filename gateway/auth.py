"""JWT verification at the handshake and token minting for dev tools.

Algorithms are pinned by settings (never read from the token header), `exp` is required, `aud`
and `iss` are checked when configured. HS256 uses `jwt_secret`; RS256/ES256 use the key the
token names (`kid`) in the identity provider's JWKS (`jwt_jwks_url`, gateway/jwks.py), or, for
a token that names none, the PEM keys of `jwt_public_key` (one or several: while keys rotate,
the old and the new).

Every refusal is a `TokenRefused` naming its reason in one word (gateway/auth_refusals.py
`REASONS`), which operators see and the client does not: it gets a bare `unauthorized`.
"""

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, get_args

import jwt
from annotated_types import MaxLen
from jwt import PyJWK
from pydantic import BaseModel

from gateway.auth_refusals import Refusals
from gateway.errors import AuthError
from gateway.jwks import Jwks
from schemas.events import LetterCreated, UserRef
from schemas.settings import Role, Settings

ROLES: frozenset[str] = frozenset(get_args(Role))
WRITERS: frozenset[str] = frozenset({"editor", "service"})
_HMAC = frozenset({"HS256", "HS384", "HS512"})


def _max_length(model: type[BaseModel], name: str) -> int:
    return next(m.max_length for m in model.model_fields[name].metadata if isinstance(m, MaxLen))


# What the events that carry a token's claims hold (schemas.events).
MAX_SUB = _max_length(UserRef, "id")
MAX_FIRM = _max_length(LetterCreated, "firm_id")
MAX_NAME = _max_length(UserRef, "name")


@dataclass(frozen=True, slots=True)
class Claims:
    """The identity a connection acts as: everything we take from the token."""

    sub: str
    firm_id: str
    name: str
    role: str
    exp: float  # seconds since the epoch

    @property
    def can_edit(self) -> bool:
        return self.role in WRITERS


class TokenRefused(AuthError):
    """A refused token; `reason` is one of REASONS (auth_refusals), the message more."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _reason(exc: jwt.PyJWTError) -> str:
    """The reason PyJWT refused a token for (its leeway applies to exp, nbf and iat alike)."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "expired"
    if isinstance(exc, jwt.ImmatureSignatureError):  # nbf or iat ahead of now plus the leeway
        return "not_yet_valid"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "audience"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "issuer"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return {"aud": "audience", "iss": "issuer"}.get(exc.claim, "claims")
    wrong = (
        jwt.InvalidIssuedAtError,
        jwt.exceptions.InvalidSubjectError,
        jwt.exceptions.InvalidJTIError,
    )
    if isinstance(exc, wrong):  # a registered claim of the wrong type or value, signed well
        return "claims"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "algorithm"
    if isinstance(exc, jwt.DecodeError) and " claim (" in str(exc):
        # PyJWT's "Expiration Time claim (exp) must be an integer." (nbf alike): checked after
        # the signature; its other DecodeErrors are of the token's form (malformed).
        return "claims"
    return "malformed"


PEM = re.compile(r"-----BEGIN [A-Z ]+-----.+?-----END [A-Z ]+-----", re.DOTALL)


def _keys(
    settings: Settings, algorithm: str, kid: Any, jwks: Mapping[str, PyJWK] | None
) -> list[Any]:
    """The keys a token may be signed with, in the order to try them."""
    if algorithm in _HMAC:
        return [settings.jwt_secret.get_secret_value()]
    if jwks is not None and kid is not None:
        jwk = jwks.get(kid) if isinstance(kid, str) else None
        if jwk is None:
            raise TokenRefused(f"no signing key {kid!r}", "unknown_key")
        return [jwk.key]  # the algorithm stays the pinned one: an HMAC never uses these keys
    keys = PEM.findall(settings.jwt_public_key or "")
    if not keys:
        raise TokenRefused(f"no public key configured for {algorithm}", "unknown_key")
    return keys


def verify_token(
    token: str | None, settings: Settings, jwks: Mapping[str, PyJWK] | None = None
) -> Claims:
    """The claims of a valid token; AuthError for anything else. `jwks`: the provider's keys
    by kid (Verifier passes them; without, only the secret and the PEM keys are used)."""
    if not token:
        raise TokenRefused("missing token", "missing")
    if not _unicode(token):  # a lone surrogate (JSON allows "\ud800"): PyJWT's encode raises
        raise TokenRefused("malformed token", "malformed")  # ... an error holding the token
    try:
        header = jwt.get_unverified_header(token)
        algorithm = header.get("alg")
        if algorithm not in settings.jwt_algorithms:
            raise TokenRefused(f"algorithm {algorithm!r} not allowed", "algorithm")
        for key in _keys(settings, algorithm, header.get("kid"), jwks):
            try:
                data = jwt.decode(
                    token,
                    key,
                    algorithms=[algorithm],
                    # A blank audience or issuer is none, as `mint_token` reads them.
                    audience=settings.jwt_audience or None,
                    issuer=settings.jwt_issuer or None,
                    leeway=settings.jwt_leeway_s,
                    options={"require": ["exp", "sub"], "verify_aud": bool(settings.jwt_audience)},
                )
            except (jwt.InvalidSignatureError, jwt.InvalidKeyError):
                continue  # another of the PEM keys may have signed it
            return _claims(data)
        raise TokenRefused("signature verification failed", "bad_signature")
    except jwt.PyJWTError as exc:
        raise TokenRefused(str(exc), _reason(exc)) from None


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; AuthError for anything else."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        raise TokenRefused("bearer token required", "missing")
    return token.strip()


class Verifier:
    """Verifies tokens with the configured keys, fetching the provider's JWKS when it has one."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        url, refetch_s = settings.jwt_jwks_url, settings.jwt_jwks_refetch_s
        self.jwks = Jwks(url, refetch_s) if url else None
        self.refusals = Refusals()  # why tokens were refused: logged and counted

    async def start(self) -> None:
        if self.jwks is not None:
            await self.jwks.start()

    async def close(self) -> None:
        if self.jwks is not None:
            await self.jwks.close()

    async def verify(self, token: str | None) -> Claims:
        if self.jwks is None or not token:
            return verify_token(token, self.settings)
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise TokenRefused(str(exc), _reason(exc)) from None
        if isinstance(kid, str):
            await self.jwks.want(kid)
        return verify_token(token, self.settings, self.jwks.keys)


def _claims(data: dict[str, Any]) -> Claims:
    sub, firm, name, role = (data.get(k) for k in ("sub", "firmId", "name", "role"))
    if not isinstance(sub, str) or not sub or not isinstance(firm, str) or not firm:
        raise TokenRefused("claims sub and firmId are required", "claims")
    # Bounded as the events that carry them are, and JSON allows lone surrogates ("\\ud800"),
    # which no event can hold.
    if len(sub) > MAX_SUB or len(firm) > MAX_FIRM or not _unicode(sub) or not _unicode(firm):
        raise TokenRefused(
            f"claims sub and firmId: at most {MAX_SUB} and {MAX_FIRM} characters", "claims"
        )
    role = role if isinstance(role, str) else "viewer"  # least privilege when absent
    if role not in ROLES:
        raise TokenRefused(f"unknown role {role!r}", "claims")
    name = name[:MAX_NAME] if isinstance(name, str) and name and _unicode(name) else sub
    return Claims(sub=sub, firm_id=firm, name=name, role=role, exp=float(data["exp"]))


def _unicode(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def mint_token(
    settings: Settings,
    user: str,
    firm: str,
    role: str = "editor",
    name: str = "",
    ttl_s: int = 3600,
) -> str:
    """An HS256 token signed with the configured secret (dev and scripts)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user,
        "firmId": firm,
        "name": name or user,
        "role": role,
        "iat": now,
        "exp": now + ttl_s,
    }
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")
