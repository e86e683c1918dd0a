"""Runs the snapshotter against configured services: migrations, log, store, group
membership (which partitions are ours), and restarts from stored positions after failures.

It yields to a reset rebuild of its tables (`backfill snapshotter --from-beginning --reset`),
which may run while it serves: the rebuild's marker refuses its commits (the store's
`yield_to_rebuild`), and it waits for the rebuild to end, then follows from the positions the
rebuild stored. It yields to a rebuild of chosen letters (`backfill snapshotter --letters` or
`--since`) on its partitions likewise: the job folds them up to the position the service had
when it began, which does not move until the job ends; then the service goes on from there."""

import asyncio
import contextlib
import logging
from collections.abc import Collection

import asyncpg

from eventlog.errors import LogUnavailableError
from eventlog.factory import open_log
from eventlog.group import Assignment, join_group
from eventlog.records import Log
from schemas.events import Topic
from schemas.outages import Outage
from schemas.rebuilds import backfill_running, jobs_folded
from schemas.settings import Settings
from snapshotter.consumer import GROUP, Snapshotter
from snapshotter.metrics import Metrics
from snapshotter.migrate import migrate
from snapshotter.store import RebuildUnderWay, StalePositionError, Store

log = logging.getLogger(__name__)
# Failures worth retrying from the stored positions; anything else is a bug and crashes.
# PostgreSQL's class 08 (connection exceptions) and class 57 (operator intervention): it is
# shutting down, or restarting after a crash and replaying its WAL (57P03 "not yet accepting
# connections"), or our session was terminated. All end once the server is back. Class 40
# (a deadlock, a serialization failure) rolled the transaction back: it may pass next time.
RETRYABLE = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.TransactionRollbackError,
    LogUnavailableError,
    StalePositionError,
)
BACKOFF_S = (0.5, 10.0)  # first and longest wait before retrying
LAG_INTERVAL_S = 1.0  # how often `snapshotter_lag_records` is measured
REBUILD_POLL_S = 1.0  # how often a snapshotter waiting for a rebuild looks again


def retryable(exc: Exception) -> bool:
    # A pooled connection that died raises a bare InterfaceError ("connection is closed"); its
    # subclasses (arguments asyncpg cannot encode, client configuration) would fail again. A
    # commit cut by a PostgreSQL restart can leave the connection mid-operation, and the pool's
    # reset on release then raises a bare InternalClientError ("cannot switch to state 15;
    # another operation (2) is in progress"): the connection is dropped, a new one works.
    return isinstance(exc, RETRYABLE) or type(exc) in (
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
    )


# What the pause says of a letters job in each state (`_job_state`), in this order.
_JOB_STATES = (
    ("begun", "is rebuilding letters up to this snapshotter's positions"),
    (
        "finishing",
        "was interrupted, and a later backfill snapshotter run is finishing it, rebuilding its"
        " letters up to this snapshotter's positions",
    ),
    (
        "queued",
        "was interrupted: the backfill snapshotter run under way finishes it before its own work"
        " (a reset supersedes it)",
    ),
    (
        "interrupted",
        "was interrupted: run any backfill snapshotter (it finishes this one first), or"
        " backfill snapshotter --from-beginning --reset",
    ),
    (
        # Marked before its letters were recorded (letters_jobs): finished only by its own
        # letters given again, whether a run is under way or not.
        "unrecorded",
        "was interrupted: run its command again with the same --letters, or backfill"
        " snapshotter --from-beginning --reset",
    ),
)


def _job_state(group: str, folded: dict[str, str], unrecorded: set[str], running: bool) -> str:
    """`folded`: schemas.rebuilds.jobs_folded's; `running`: a run holds the backfills' lock."""
    if group in folded:
        return folded[group]
    if group in unrecorded:
        return "unrecorded"
    # Every run finishes the interrupted jobs that recorded their letters before its own work
    # (tools/backfill_snapshotter.py); a job is marked only under the lock, so one not folded
    # while a run holds it is one that run has yet to reach.
    return "queued" if running else "interrupted"


async def serve(
    settings: Settings,
    log_: Log | None = None,
    *,
    run_migrations: bool = True,
    metrics_port: int | None = None,
) -> None:
    """Run until cancelled. `log_` is a started log to share (one-process dev mode).
    `metrics_port`: serve /metrics there, on `settings.host` (None or 0: not served)."""
    if not settings.database_url:
        raise ValueError("the snapshotter needs STENO_DATABASE_URL")
    if run_migrations:
        await migrate(settings.database_url)
    # Read-only: the snapshotter never appends, and the embedded log's writer lock belongs to
    # the gateway process.
    the_log = open_log(settings, readonly=True) if log_ is None else log_
    if log_ is None:
        await the_log.start()
    store = await Store.open(settings.database_url, yield_to_rebuild=True)
    metrics = Metrics()
    try:
        if metrics_port:
            port = metrics.serve(settings.host, metrics_port)
            log.info("snapshotter metrics on http://%s:%d/metrics", settings.host, port)
        owner = Owner(Snapshotter(settings, the_log, store, metrics))
        topic = settings.topic(Topic.LETTERS)
        async with join_group(settings, the_log, GROUP, [topic], owner):
            reporting = asyncio.create_task(owner.report_lag(), name="snapshotter-lag")
            try:
                await owner.failed  # only a non-retryable error ends this; else cancellation
            finally:
                reporting.cancel()
                await asyncio.gather(reporting, return_exceptions=True)
    finally:
        metrics.close()
        await store.close()
        if log_ is None:
            await the_log.close()


class Owner:
    """Follows the partitions the group assigns; stops before they are handed to another."""

    def __init__(self, snapshotter: Snapshotter) -> None:
        self.snapshotter = snapshotter
        self.failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None
        self._owned: frozenset[int] = frozenset()
        self._count_owned()  # 0 until assigned: a spare says so
        # Restarts since the last commit: an outage restarts it every 10 s (BACKOFF_S), said
        # once (then DEBUG), and once more with the count when its positions move again.
        self._restarts = Outage()
        self._failed_at: dict[int, int] = {}  # the positions at the last restart

    def _count_owned(self) -> None:
        owned = self.snapshotter.metrics.partitions_owned.labels(self.snapshotter.topic)
        owned.set(len(self._owned))

    async def assigned(self, partitions: Assignment) -> None:
        owned = partitions.get(self.snapshotter.topic, frozenset())
        self._owned = frozenset(owned)
        self._count_owned()
        if owned:
            self._task = asyncio.create_task(self._run(owned), name="snapshotter")

    async def revoked(self, partitions: Assignment) -> None:
        for p in self._owned:  # another instance reports them now
            with contextlib.suppress(KeyError):  # never measured
                self.snapshotter.metrics.lag.remove(self.snapshotter.topic, str(p))
        self._owned = frozenset()
        self._count_owned()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            try:  # best effort: without it, the next owner folds the unsaved records again
                await self.snapshotter.checkpoint()
            except Exception as exc:
                log.warning("snapshotter could not save letter states on stopping: %r", exc)

    async def _run(self, partitions: Collection[int]) -> None:
        delay, refused = BACKOFF_S[0], False
        while True:
            before = dict(self.snapshotter.positions)
            try:
                if await self._wait_for_rebuild(partitions):
                    delay = BACKOFF_S[0]
                elif refused:  # the rebuild ended meanwhile, or is about to be seen: not a spin
                    await asyncio.sleep(REBUILD_POLL_S)
                refused = False
                await self.snapshotter.run(partitions)
            except RebuildUnderWay:
                # Not a failure: a rebuild's marker refused the commit; the wait says so.
                self.snapshotter.metrics.retries.labels(RebuildUnderWay.__name__).inc()
                refused = True
            except Exception as exc:
                if not retryable(exc):
                    if not self.failed.done():
                        self.failed.set_exception(exc)
                    return
                if self.snapshotter.positions != before:  # it committed: the outage is new
                    delay = BACKOFF_S[0]
                    self._committed_again()
                self.snapshotter.metrics.retries.labels(type(exc).__name__).inc()
                self._failed_at = dict(self.snapshotter.positions)
                self._restarts.failed(
                    log,
                    "snapshotter restarting from stored positions after: %r (further restarts"
                    " before it commits again are logged at DEBUG)",
                    exc,
                )
                await asyncio.sleep(delay)  # back off from a failing dependency
                delay = min(delay * 2, BACKOFF_S[1])

    def _committed_again(self) -> None:
        self._restarts.recovered(log, "snapshotter working again after %s", unit="restart")

    async def _wait_for_rebuild(self, partitions: Collection[int]) -> bool:
        """Wait while a reset rebuild owns the positions, or a letters job one of `partitions`'
        (the lag metric shows the wait); True if there was one. Every partition waits: one
        loop folds them all, and a job is bounded (it folds up to where this one was). An
        interrupted rebuild keeps us waiting until it is run to its end: said at WARNING."""
        said = None
        while under_way := await self._rebuild_under_way(partitions):
            if under_way != said:
                log.warning("snapshotter paused: %s", under_way)
                said = under_way
            await asyncio.sleep(REBUILD_POLL_S)
        if said is not None:
            log.info("snapshotter resuming: the rebuild it waited for ended")
        return said is not None

    async def _rebuild_under_way(self, partitions: Collection[int]) -> str | None:
        """What this instance waits for, as its WARNING says it; None: nothing."""
        store = self.snapshotter.store
        if await store.rebuilding():
            return (
                "PostgreSQL is being rebuilt from the log (backfill ... --reset); it follows"
                " from the rebuilt positions once that ends"
            )
        jobs = await store.letters_jobs(self.snapshotter.topic, partitions)
        if not jobs:
            return None
        # Each job as it stands: folded by the run that began it, or by a later run finishing
        # it; else interrupted (the backfills' lock alone, held by another run, said the jobs
        # it had not reached yet were "rebuilding").
        folded = await jobs_folded(store.pool, jobs)
        idle = [group for group in jobs if group not in folded]
        unrecorded = await store.unrecorded(idle) if idle else set()
        running = bool(idle) and await backfill_running(store.pool)
        said = []
        for kind, wording in _JOB_STATES:
            groups = [g for g in jobs if _job_state(g, folded, unrecorded, running) == kind]
            if groups:
                named = ", ".join(f"{group} on partitions {jobs[group]}" for group in groups)
                said.append(f"a backfill snapshotter --letters/--since job ({named}) {wording}")
        ends = "that ends" if len(said) == 1 else "those end"
        return f"{'; '.join(said)}; this snapshotter goes on from its positions once {ends}"

    async def report_lag(self) -> None:
        """Every `LAG_INTERVAL_S`: the log's end less the committed position of each partition
        owned. Needs the log only: while PostgreSQL is down it rises from the last position
        committed (a partition whose position was never read is not reported). Each measurement
        sets `snapshotter_lag_measured_at_seconds`: the lag keeps its last value while the log
        cannot be read, and that time stops, which is what an alert can see."""
        snapshotter, topic, outage = self.snapshotter, self.snapshotter.topic, Outage()
        while True:
            if self._restarts.failures and snapshotter.positions != self._failed_at:
                self._committed_again()  # told here: the next failure may be far off
            if self._owned:
                try:
                    ends = await snapshotter.log.end_offsets(topic)
                except Exception as exc:  # measured again next time; never ends the loop
                    outage.failed(log, "snapshotter lag not measured: %r", exc)
                else:
                    outage.over()
                    for p in self._owned:  # as owned now: revoked ones are not set again
                        if (position := snapshotter.positions.get(p)) is not None:
                            lag = max(ends.get(p, 0) - position, 0)
                            snapshotter.metrics.lag.labels(topic, str(p)).set(lag)
                    snapshotter.metrics.lag_measured.set_to_current_time()
            await asyncio.sleep(LAG_INTERVAL_S)
