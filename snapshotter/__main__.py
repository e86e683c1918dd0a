"""`python -m snapshotter`: the snapshotter as its own process (settings from STENO_* env)."""

import asyncio
import contextlib

from schemas.log_output import configure_logging
from schemas.settings import Settings
from snapshotter.service import serve


def main() -> None:
    settings = Settings()
    configure_logging(settings)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
