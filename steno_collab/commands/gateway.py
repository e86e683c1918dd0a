"""`steno-collab gateway --host H --port P`: one gateway instance on the configured log.

Redis and PostgreSQL are used when their URLs are set (the gateway only reads them). The log or
a store it cannot reach at start is one line on stderr and exit status 1, as in the projector.
Outside dev mode an HS* token secret that is the public default or shorter than 32 bytes is a
configuration error (exit status 2): anyone could mint any firm's `service` token with it. So
are token settings that could verify no token (every connection would get 401), and "none",
and a log that refuses its settings (LogConfigError: Tansu and STENO_KAFKA_IDEMPOTENCE, cli.py).
"""

import argparse
import logging
import signal
import socket
import sys
from contextlib import AsyncExitStack

import uvloop
from jwt.algorithms import get_default_algorithms

from eventlog.errors import LogError
from eventlog.factory import start_writer
from eventlog.records import Log
from gateway.api.server import server_for, tune_interpreter
from gateway.auth import PEM
from schemas.log_output import configure_logging
from schemas.settings import Settings, data_dir_refusal
from schemas.stores import UnreachableError
from steno_collab.services import PortInUseError, bind, connect_checked, gateway_app

logger = logging.getLogger(__name__)

MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash
HMAC = frozenset({"HS256", "HS384", "HS512"})  # verified with STENO_JWT_SECRET, always set


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("gateway", help="serve the y-websocket endpoint and the REST API")
    parser.add_argument("--host", default=None, help="bind address (default: settings.host)")
    parser.add_argument(
        "--port", type=port_number, default=None, help="port (default: settings.port)"
    )
    parser.set_defaults(func=run)


def port_number(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535: argparse's one-line refusal otherwise (a bind
    of 70000 raised OverflowError, a traceback)."""
    port = int(text) if text.isascii() and text.isdigit() else -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0-65535)")
    return port


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    refused = unverifiable(settings) or weak_secret(settings)
    if settings.log_url is None:  # the embedded log, in STENO_DATA_DIR: a file cannot hold it
        refused = refused or data_dir_refusal(settings.data_dir)
    if refused:
        print(f"steno-collab gateway: {refused}", file=sys.stderr)
        return 2
    configure_logging(settings)
    # Uvicorn re-raises the signal that stopped it once it has drained; by then we are done,
    # so the handler it restores and calls is a no-op and the exit status says "clean".
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port  # 0: any free port
    try:
        # The port first, as `dev` does: a taken port is one line, before the log or a store opens.
        sock = bind(host, port)
    except (PortInUseError, OSError) as exc:
        why = exc if isinstance(exc, PortInUseError) else f"cannot listen on {host}:{port}: {exc}"
        print(f"steno-collab gateway: {why}", file=sys.stderr)
        return 1
    tune_interpreter()
    try:
        uvloop.run(serve(settings, sock))
    except UnreachableError as exc:
        logger.error("gateway stopped: %s", exc)
        return 1
    finally:
        sock.close()
    return 0


def unverifiable(settings: Settings) -> str | None:
    """Why the token settings would let no token (or an unsigned one) through, or None."""
    algorithms = settings.jwt_algorithms
    if any(alg.lower() == "none" for alg in algorithms):
        return 'STENO_JWT_ALGORITHMS allows "none" (unsigned tokens): remove it'
    keys = bool(settings.jwt_jwks_url or PEM.search(settings.jwt_public_key or ""))
    supported = get_default_algorithms()
    known = [alg for alg in algorithms if alg in supported]
    if any(alg in HMAC or keys for alg in known):
        return None
    if known:
        return (
            f"STENO_JWT_ALGORITHMS {algorithms}: no key to verify {', '.join(known)} tokens"
            " with: set STENO_JWT_PUBLIC_KEY (PEM) or STENO_JWT_JWKS_URL"
        )
    return (
        f"STENO_JWT_ALGORITHMS {algorithms} names no supported algorithm (HS256, RS256, ES256...)"
    )


def weak_secret(settings: Settings) -> str | None:
    """Why the HS* secret must not guard a production gateway, or None; never the secret."""
    if settings.dev or not any(alg.upper().startswith("HS") for alg in settings.jwt_algorithms):
        return None
    secret = settings.jwt_secret.get_secret_value()
    if secret == Settings.model_fields["jwt_secret"].get_default().get_secret_value():
        return "STENO_JWT_SECRET is the public default: set it to 32+ random bytes"
    if len(secret.encode()) < MIN_SECRET_BYTES:
        return f"STENO_JWT_SECRET is shorter than {MIN_SECRET_BYTES} bytes: set 32+ random bytes"
    return None


async def serve(settings: Settings, sock: socket.socket) -> None:
    async with AsyncExitStack() as started:  # closes what did start, in reverse order
        log = await _start_log(settings)
        started.push_async_callback(log.close)
        redis, pg = await connect_checked(settings, started)
        app = gateway_app(settings, log, redis, pg)
        # log_config=None: uvicorn's records go through the root logger, in the same format.
        level = settings.log_level.lower()
        host, port = sock.getsockname()[:2]
        server = server_for(app, settings, host, port, log_level=level, log_config=None)
        # Uvicorn names no address for a socket handed to it: say where we serve (port 0's too),
        # once the log and the stores answered (a failure before is its one line).
        shown = f"[{host}]" if ":" in host else host
        logger.info("gateway listening on http://%s:%d", shown, port)
        await server.serve(sockets=[sock])


async def _start_log(settings: Settings) -> Log:
    try:
        log = await start_writer(settings)  # a projector may be creating it: waited for
    except LogError as exc:  # its message names the broker or the directory
        raise UnreachableError(exc) from None
    return log
