"""`python -m snapshotter`: the snapshotter as its own process (settings from STENO_* env). A bad
setting, a missing STENO_DATABASE_URL or an unusable data dir is one line and status 2, as
`steno-collab snapshotter` (which adds a metrics port and an orderly stop on SIGTERM)."""

import asyncio
import contextlib
import sys

from eventlog.errors import LogConfigError
from schemas.log_output import configure_logging
from schemas.settings import Settings, data_dir_refusal, exit_refusing
from snapshotter.service import serve

COMMAND = "steno-collab snapshotter"  # as the projector's `python -m` names itself


def run() -> int:
    settings = Settings()
    if not settings.database_url:
        print(f"{COMMAND}: set STENO_DATABASE_URL", file=sys.stderr)
        return 2
    # The embedded log's folder (a Kafka log needs none): a file there is a configuration error.
    if settings.log_url is None and (refused := data_dir_refusal(settings.data_dir)):
        print(f"{COMMAND}: {refused}", file=sys.stderr)
        return 2
    configure_logging(settings)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))
    return 0


def main() -> None:
    exit_refusing(COMMAND, run, (Settings,), (LogConfigError,))


if __name__ == "__main__":
    main()
