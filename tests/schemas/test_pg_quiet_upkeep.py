"""schemas/pg_quiet.py tells a watched pool's floor retries by asyncpg's private name for the
pool's upkeep task: an asyncpg without it must say so (a WARNING naming the file to update)
rather than let the retries' tracebacks back into operators' logs unexplained; the service
still starts."""

import logging

import asyncpg
import pytest

from schemas import pg_quiet


class _RenamedPool:
    """A pool class of an asyncpg release that renamed the upkeep task's handle."""

    _upkeep = None

    def is_closing(self) -> bool:
        return False


def test_installed_asyncpg_still_names_the_upkeep_task() -> None:
    assert pg_quiet.upkeep_task_named(asyncpg.Pool)


def test_a_renamed_upkeep_task_is_told_once_and_the_pool_still_watched(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=pg_quiet.__name__)
    dsn = "postgresql://127.0.0.1:1/x"
    pool = _RenamedPool()
    try:
        assert pg_quiet.watch(pool, dsn) is pool
        pg_quiet.watch(_RenamedPool(), dsn)
    finally:
        pg_quiet._SERVERS.pop("127.0.0.1:1", None)
    told = [r.getMessage() for r in caplog.records if "_maintenance_task" in r.getMessage()]
    assert len(told) == 1, told
    assert "asyncpg" in told[0] and "schemas/pg_quiet.py" in told[0]
