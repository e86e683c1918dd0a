"""`steno-collab token`: print a JWT signed with the configured secret (dev and scripts).

It prints only a token this configuration's gateway accepts: one it would refuse (an empty user,
HS256 not among `STENO_JWT_ALGORITHMS`, ...) is one line and status 2, not a token that fails
later as a bare 401."""

import argparse
import sys

from gateway.auth import ROLES, TokenRefused, mint_token, verify_token
from schemas.settings import Settings


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("token", help="print a signed token for a user of a firm")
    parser.add_argument("--user", required=True, help="user id (the sub claim)")
    parser.add_argument("--firm", required=True, help="firm id (the firmId claim)")
    parser.add_argument(
        "--role",
        default="editor",
        choices=sorted(ROLES),
        help="the role claim (default: %(default)s)",
    )
    parser.add_argument("--name", default="", help="display name (default: the user id)")
    parser.add_argument(
        "--ttl",
        type=positive_seconds,
        default=3600,
        help="seconds until it expires (default: %(default)s)",
    )
    parser.set_defaults(func=run)


def positive_seconds(text: str) -> int:
    """A TTL of at least a second: 0 or less minted a token already expired, and exit 0."""
    seconds = int(text) if text.isascii() and text.isdigit() else 0
    if seconds < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return seconds


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    if not settings.jwt_secret.get_secret_value():  # PyJWT: "HMAC key must not be empty"
        print(
            "steno-collab token: STENO_JWT_SECRET is empty: nothing to sign with", file=sys.stderr
        )
        return 2
    if "HS256" not in settings.jwt_algorithms:  # what it signs with: the gateway refuses it
        algorithms = ", ".join(settings.jwt_algorithms)
        print(
            f"steno-collab token: signs HS256, which STENO_JWT_ALGORITHMS ({algorithms}) does"
            " not allow: the gateway would refuse it",
            file=sys.stderr,
        )
        return 2
    token = mint_token(settings, args.user, args.firm, args.role, args.name, args.ttl)
    try:  # the gateway's own check, claims included (an empty --user, one too long)
        verify_token(token, settings)
    except TokenRefused as exc:
        print(
            f"steno-collab token: the gateway would refuse it ({exc.reason}): {exc}",
            file=sys.stderr,
        )
        return 2
    print(token)
    return 0
