"""PostgreSQL down under a cold letter's comment reads: each read answered 503, and each logged
a WARNING (a reviewer saw 14 in 15 s, beside pg_quiet's two outage lines). Now one WARNING per
outage, the next ones DEBUG, and one INFO once reads work again."""

import logging
from pathlib import Path

import pytest

from gateway.collab import shared
from snapshotter.migrate import migrate
from steno_collab import embedded
from tests.collab.cold_comments import TEXT, cold_collab, until_expired
from tests.support import own_postgres

pytestmark = pytest.mark.timeout(120)
COLD = "gateway.collab.cold"


async def test_an_outage_under_cold_reads_is_one_warning_and_one_recovery(
    tmp_path: Path,
    service_tmp: Path,
    redis_db: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=COLD)
    monkeypatch.setattr(shared, "RECENT_APPENDS_S", 1.0)
    pg = await own_postgres(service_tmp / "pg")
    try:
        await migrate(pg.dsn())
        async with cold_collab(tmp_path, redis_db, pg.dsn()) as c:
            lid = await c.gw.create_letter(TEXT)
            base = f"/v1/letters/{lid}/comments"
            made = await c.call("POST", base, json={"body": "look", "anchor": {"from": 0, "to": 4}})
            assert made.status_code == 201, made.text
            await until_expired(c, lid)  # its threads now read from PostgreSQL

            port = pg.port
            await pg.stop()
            for _ in range(3):
                r = await c.call("GET", base)
                assert r.status_code == 503 and r.headers["Retry-After"], r.text
            monkeypatch.setattr(embedded, "free_port", lambda: port)  # back at its address
            await pg.start()
            r = await c.call("GET", base)
            assert r.status_code == 200, r.text
    finally:
        await pg.stop()
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == COLD]
    assert [level for level, _ in said] == [
        logging.WARNING,
        logging.DEBUG,
        logging.DEBUG,
        logging.INFO,
    ], said
    assert "readable again after 3 failures" in said[-1][1]
