"""`python -m snapshotter`: the snapshotter as its own process (settings from STENO_* env)."""

import asyncio
import contextlib
import logging

from schemas.settings import Settings
from snapshotter.service import serve


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(Settings()))


if __name__ == "__main__":
    main()
