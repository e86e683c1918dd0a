"""A gateway with the web UI on the embedded log, for the browser tests (serve.py --port ...).

Until `steno-collab dev` runs the gateway with the web UI, this is the smallest real stack the
page needs: the y-websocket endpoint, the letters REST API, the bundle and the dev login.
"""

import argparse
import asyncio
from pathlib import Path

from eventlog.factory import open_log
from gateway.app import create_app
from gateway.server import server_for
from schemas.settings import Settings


async def serve(settings: Settings) -> None:
    log = open_log(settings)
    await log.start()
    try:
        app = create_app(settings, log)  # includes the web UI (gateway.webui)
        await server_for(app, settings, settings.host, settings.port).serve()
    finally:
        await log.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--jwt-secret", required=True)
    parser.add_argument("--no-dev", action="store_true", help="production mode: no dev login")
    args = parser.parse_args()
    settings = Settings(
        dev=not args.no_dev,
        host="127.0.0.1",
        port=args.port,
        data_dir=args.data_dir,
        jwt_secret=args.jwt_secret,
    )
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
