"""`python -m projector`: run one projector instance (settings from STENO_* variables); a bad
setting is one line and status 2, as `steno-collab projector` (schemas/settings.py)."""

from eventlog.errors import LogConfigError
from projector.entry import main
from projector.settings import ProjectorSettings
from schemas.settings import Settings, exit_refusing

exit_refusing("steno-collab projector", main, (Settings, ProjectorSettings), (LogConfigError,))
