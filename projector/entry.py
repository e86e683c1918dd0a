"""Entry point: build the projector from settings and run it until cancelled (or SIGTERM)."""

import asyncio
import logging
import signal
import sys
from collections import defaultdict
from collections.abc import Awaitable, Coroutine
from typing import Any

import uvloop
from redis.exceptions import RedisError

from eventlog import Log, LogError
from eventlog.errors import PositionPastEndError
from eventlog.factory import open_embedded_reader, open_log
from eventlog.group import GroupMember, join_group
from projector.consumer import Projector
from projector.metrics import Metrics
from projector.reload import Versions
from projector.settings import ProjectorSettings
from projector.store import Store
from schemas import Topic
from schemas.log_output import configure_logging
from schemas.metrics_http import MetricsBindError
from schemas.outages import Outage
from schemas.settings import Settings, data_dir_refusal
from schemas.stores import UnreachableError, answering_redis

logger = logging.getLogger(__name__)
METRICS_PORT_SETTING = "STENO_PROJECTOR_METRICS_PORT"


async def run(
    settings: Settings,
    options: ProjectorSettings,
    log: Log | None = None,
    started: "asyncio.Future[Projector] | None" = None,
) -> None:
    """Run one projector instance until cancelled. `log` may be shared (the all-in-one `dev`
    process); `started` receives the instance once it runs (tests look at its partitions)."""
    if settings.redis_url is None:
        raise SystemExit("steno-collab projector: set STENO_REDIS_URL (redis://host:port/db)")
    own_log, writable = log is None, True
    if log is None:
        log, writable = await _open_log(settings)
    try:
        redis = await answering_redis(settings.redis_url)
    except BaseException:
        if own_log:
            await log.close()
        raise
    versions = Versions(settings.database_url, options.versions_timeout_s)
    metrics = Metrics()
    store = Store(redis, options.ttl_s * 1000, options.notes_ttl_s * 1000)
    projector = Projector(settings, options, log, store, versions, metrics, log_left=writable)
    topics = [settings.topic(Topic.LETTERS), settings.topic(Topic.PRESENCE)]
    try:
        # In the try: a port it cannot bind (MetricsBindError) closes what was opened above.
        if options.metrics_port:  # None or 0: off (0 is what the environment can say)
            port = metrics.serve(settings.host, options.metrics_port)
            logger.info("projector metrics on http://%s:%d/metrics", settings.host, port)
        member = join_group(
            settings, log, options.group, topics, projector,
            session_timeout_ms=options.group_session_timeout_ms,
        )  # fmt: skip
        async with member:
            if started is not None:
                started.set_result(projector)
            await _until_failed(
                projector.failed, projector.work(), _housekeeping(projector, options, member)
            )
    finally:
        await projector.close()
        metrics.close()
        await versions.close()
        await redis.aclose()
        if own_log:
            await log.close()


async def _open_log(settings: Settings) -> tuple[Log, bool]:
    """The log, and whether this process may append to it. An embedded log is opened read-only
    whatever the start order: its one writer is the gateway (README "Stale connections": the
    sweep then drops a dead gateway's connections without logging their `session.left`)."""
    if settings.log_url is not None:
        log = open_log(settings)
        await log.start()
        return log, True
    return await open_embedded_reader(settings), False


async def _until_failed(failed: "asyncio.Future[None]", *loops: Coroutine[Any, Any, None]) -> None:
    """Run `loops` (each runs until cancelled) until one of them or `failed` raises; raise that."""
    tasks = [asyncio.create_task(loop) for loop in loops]
    try:
        done, _ = await asyncio.wait([failed, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for future in done:
            future.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _housekeeping(
    projector: Projector, options: ProjectorSettings, member: GroupMember
) -> None:
    loop = asyncio.get_running_loop()
    last_sweep = last_commit = loop.time()
    tried = _Steps()
    while True:
        await asyncio.sleep(options.check_interval_s)
        now = loop.time()
        # Each step on its own: the lag needs only the log, and must go on rising while Redis
        # is down (what an operator watches then), however the Redis checks fail.
        await tried("check", projector.check())
        report_due = now - last_commit >= options.commit_interval_s
        if report_due and await tried("report", projector.report(member)):
            last_commit = now
        sweep_due = now - last_sweep >= options.sweep_interval_s
        if sweep_due and await tried("sweep", projector.sweep()):
            last_sweep = now


class _Steps:
    """Runs housekeeping steps, retried each tick while Redis or the log fails them; each step's
    outage is warned of once and its end once (a line per tick and step was ~30 per 10 s)."""

    def __init__(self) -> None:
        self._outages: defaultdict[str, Outage] = defaultdict(Outage)  # per step

    async def __call__(self, name: str, step: Awaitable[None]) -> bool:
        """Run `step`; False if Redis or the log failed it."""
        outage = self._outages[name]
        try:
            await step
        except (RedisError, LogError) as exc:  # the fold loop goes on meanwhile
            outage.failed(logger, "projector housekeeping (%s) failed, retrying: %s", name, exc)
            return False
        outage.recovered(
            logger, "projector housekeeping (%s) works again, after %s", name, unit="failure"
        )
        return True


def main(
    options: ProjectorSettings | None = None, metrics_setting: str = METRICS_PORT_SETTING
) -> int:
    """`python -m projector` / `steno-collab projector`: settings from the environment.
    `metrics_setting`: what set `options.metrics_port`, as a refusal to bind it names it."""
    settings = Settings()
    # The embedded log's folder (a Kafka log needs none): a file there is a configuration error.
    if settings.log_url is None and (refused := data_dir_refusal(settings.data_dir)):
        print(f"steno-collab projector: {refused}", file=sys.stderr)
        return 2
    configure_logging(settings)
    return uvloop.run(_main(settings, options or ProjectorSettings(), metrics_setting))


async def _main(settings: Settings, options: ProjectorSettings, metrics_setting: str) -> int:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await run(settings, options)
    except asyncio.CancelledError:
        return 0
    # Nothing to fold into or from.
    except (RedisError, LogError, PositionPastEndError, UnreachableError) as exc:
        logger.error("projector stopped: %s", exc)
        return 1
    except MetricsBindError as exc:  # a setting to change, but as the stores: one line, 1
        logger.error("projector stopped: %s", exc.naming(metrics_setting))
        return 1
    return 0
