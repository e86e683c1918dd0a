"""Metric families exist from start, labelled ones with their known labels at 0 (alerts with
rate() or absent() see them before the first event), and every append path is timed."""

from pathlib import Path

import httpx
from prometheus_client import generate_latest

from eventlog.records import Log
from gateway.auth_refusals import REASONS
from gateway.live.confirmed import append_confirmed
from gateway.metrics import Metrics
from schemas.events import Topic, VersionSaved
from schemas.settings import Settings
from snapshotter.metrics import TABLES
from snapshotter.metrics import Metrics as SnapshotterMetrics
from tests.gateway.harness import metric_samples, running_gateway


async def test_a_fresh_gateway_lists_every_auth_refusal_reason_at_zero(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "steno", partitions=1)
    async with running_gateway(settings) as gw, httpx.AsyncClient(base_url=gw.http) as http:
        text = (await http.get("/metrics")).text
    assert "# TYPE gateway_auth_refusals_total counter" in text
    zeros = {f'gateway_auth_refusals_total{{reason="{reason}"}}': 0.0 for reason in REASONS}
    assert zeros.items() <= metric_samples(text).items()


async def test_a_refusal_counts_under_its_reason(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "steno", partitions=1)
    async with running_gateway(settings) as gw, httpx.AsyncClient(base_url=gw.http) as http:
        assert (await http.get("/v1/letters/x", headers={"Authorization": "Bearer no"})).is_error
        samples = await gw.metrics()
    assert samples['gateway_auth_refusals_total{reason="malformed"}'] == 1.0
    assert samples['gateway_auth_refusals_total{reason="expired"}'] == 0.0


async def test_a_requests_own_append_is_timed(tmp_path: Path) -> None:
    # REST creates, comments, lock changes and named versions append with append_confirmed.
    settings = Settings(data_dir=tmp_path / "steno", partitions=1)
    async with running_gateway(settings) as gw:
        ctx = gw.app.state.gateway.ctx
        log: Log = ctx.log
        metrics, topic = Metrics(), settings.topic(Topic.LETTERS)
        entry = ctx.entry("l1", VersionSaved(label="v"), firm="firm-a", user="u1")
        await append_confirmed(log, topic, b"l1", [entry], 5.0, metrics=metrics)
        await append_confirmed(log, topic, b"l1", [entry], 5.0)  # not timed: no metrics given
    samples = metric_samples(metrics.render().decode())
    assert samples[f'gateway_append_seconds_count{{topic="{topic}"}}'] == 1.0


def test_the_snapshotters_tables_are_listed_from_start() -> None:
    text = generate_latest(SnapshotterMetrics().registry).decode()
    zeros = {f'snapshotter_rows_written_total{{table="{table}"}}': 0.0 for table in TABLES}
    assert zeros.items() <= metric_samples(text).items()


async def test_a_rest_create_is_timed_as_one_log_transaction(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "steno", partitions=1)
    count = f'gateway_append_seconds_count{{topic="{settings.topic(Topic.LETTERS)}"}}'
    async with running_gateway(settings) as gw:
        assert (await gw.metrics()).get(count, 0.0) == 0.0
        await gw.create_letter("Dear Sir,\nPay now.")  # letter.created and its content: one
        assert (await gw.metrics())[count] == 1.0
