"""`python -m snapshotter`: the snapshotter as its own process (settings from STENO_* env), as
`steno-collab snapshotter` (snapshotter/entry.py): a metrics port, an orderly stop on SIGTERM,
one line for a bad setting (status 2) or an unreachable store (status 1)."""

from eventlog.errors import LogConfigError
from schemas.settings import Settings, exit_refusing
from snapshotter.entry import COMMAND, main

exit_refusing(COMMAND, main, (Settings,), (LogConfigError,))
