"""JWT verification at the handshake and token minting for dev tools.

Algorithms are pinned by settings (never read from the token header), `exp` is required, `aud`
and `iss` are checked when configured. HS256 uses `jwt_secret`; RS256/ES256 use `jwt_public_key`.
"""

import time
from dataclasses import dataclass
from typing import Any, get_args

import jwt
from annotated_types import MaxLen
from pydantic import BaseModel

from gateway.errors import AuthError
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


def _key(settings: Settings, algorithm: str) -> Any:
    if algorithm in _HMAC:
        return settings.jwt_secret.get_secret_value()
    if settings.jwt_public_key is None:
        raise AuthError(f"no public key configured for {algorithm}")
    return settings.jwt_public_key


def verify_token(token: str | None, settings: Settings) -> Claims:
    """The claims of a valid token; AuthError for anything else."""
    if not token:
        raise AuthError("missing token")
    try:
        header = jwt.get_unverified_header(token)
        algorithm = header.get("alg")
        if algorithm not in settings.jwt_algorithms:
            raise AuthError(f"algorithm {algorithm!r} not allowed")
        data = jwt.decode(
            token,
            _key(settings, algorithm),
            algorithms=[algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_s,
            options={"require": ["exp", "sub"], "verify_aud": settings.jwt_audience is not None},
        )
    except jwt.PyJWTError as exc:
        raise AuthError(str(exc)) from None
    return _claims(data)


def _claims(data: dict[str, Any]) -> Claims:
    sub, firm, name, role = (data.get(k) for k in ("sub", "firmId", "name", "role"))
    if not isinstance(sub, str) or not sub or not isinstance(firm, str) or not firm:
        raise AuthError("claims sub and firmId are required")
    # Bounded as the events that carry them are, and JSON allows lone surrogates ("\\ud800"),
    # which no event can hold.
    if len(sub) > MAX_SUB or len(firm) > MAX_FIRM or not _unicode(sub) or not _unicode(firm):
        raise AuthError(f"claims sub and firmId: at most {MAX_SUB} and {MAX_FIRM} characters")
    role = role if isinstance(role, str) else "viewer"  # least privilege when absent
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r}")
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
