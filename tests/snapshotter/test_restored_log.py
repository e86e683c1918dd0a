"""A log restored from a backup is behind what PostgreSQL was folded from: the snapshotter stops
and says so, instead of skipping the records appended up to its old position."""

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from eventlog.embedded import EmbeddedLog
from eventlog.embedded_backup import backup
from eventlog.errors import PositionPastEndError
from schemas.settings import Settings
from snapshotter.consumer import Snapshotter
from snapshotter.store import Store
from tests.snapshotter.conftest import LETTERS
from tests.snapshotter.scripts import LetterScript, append, drain


async def test_a_position_past_the_restored_logs_end_stops_the_snapshotter(
    elog: EmbeddedLog,
    make_settings: Callable[..., Settings],
    store: Store,
    tmp_path: Path,
) -> None:
    settings = make_settings()
    s = LetterScript("L-restored")
    await append(elog, LETTERS, [s.created(), s.paragraph("alice", "A")])
    backup(elog.path, tmp_path / "backup")  # the log as it was then
    await append(elog, LETTERS, [s.type_text("bob", 0, 1, "B"), s.type_text("bob", 0, 2, "C")])
    await drain(Snapshotter(settings, elog, store), elog)  # PostgreSQL folded all four

    restored_dir = tmp_path / "restored"
    shutil.copytree(tmp_path / "backup", restored_dir)
    restored = EmbeddedLog(restored_dir, settings.partitions, readonly=True)
    await restored.start()
    try:
        with pytest.raises(PositionPastEndError) as stopped:
            await Snapshotter(settings, restored, store).resume()
        assert (stopped.value.position, stopped.value.end) == (4, 2)
        assert "backfill all --from-beginning --reset" in str(stopped.value)
    finally:
        await restored.close()
