"""Rebuilds under way, so that a half-rebuilt projection is never taken for a whole one: marker
rows in PostgreSQL's `consumer_positions`, written by the backfill tools
(tools/backfill_snapshotter.py), and marker keys in Redis, written by the projector's reset and
its replays (tools/backfill_projector.py, projector/store.py); read by whoever serves them."""

import hashlib
from collections.abc import Iterable
from typing import Any, Protocol

from schemas.events import SNAPSHOTTER_GROUP

# The group of the tools' marker rows (no consumer reads or writes positions under it).
MARKER_GROUP = "tools.backfill"
# (topic, partition) of the marker of a reset rebuild of the snapshotter's tables: written in
# the transaction that empties them, deleted once the rebuild has folded the whole log. While
# it is there, `letter_version` and `collaboration` hold only part of every letter's history.
SNAPSHOTTER_RESET = ("snapshotter-reset", 0)
# Prefix of the consumer group of a rebuild of chosen letters (`backfill snapshotter --letters`):
# it deletes their rows, then folds their partitions from the log's start under that group, so
# the `snapshotter` group's position does not bound where a letter missing from `letters` begins:
# the lowest of its and these groups' positions does (gateway/live/loader.py `COVERAGE`). The
# rows' deletion commits with the group's first positions (tools/backfill_snapshotter.py); while
# they are there, the snapshotter service commits nothing on their partitions (its store). The
# group's letters are in `letters_jobs` (not in versions before 2026-12-07), written and deleted
# with its positions: the next letters run finishes an interrupted job from them.
LETTERS_JOBS = f"{MARKER_GROUP}.letters."
# The session advisory lock every `backfill snapshotter` run holds while it runs, of letters or
# of the whole log (snapshotter/migrate.py holds 0x5715_0C01): gone with the run's connection,
# so a marker left with nobody holding it is an interrupted run's.
SNAPSHOTTER_LOCK = 0x5715_0B0F
# The first key of the session advisory lock (two-key form, the second `job_key`) a run holds
# while it folds one letters job, taken before it marks the job and let go after it deletes
# the job's positions: BEGUN by the run that began the job, FINISHING by a later run finishing
# an interrupted one. The service's pause says which (snapshotter/service.py): the backfills'
# lock alone does not tell the job folded from one that waits (found by a reviewer: a job being
# finished by a whole run was said to be "rebuilding" as if its own run were).
JOB_BEGUN, JOB_FINISHING = 0x5715_0B10, 0x5715_0B11
# pg_locks lists advisory locks of every database of the server: only this one's count.
_HERE = "database = (SELECT oid FROM pg_database WHERE datname = current_database())"


async def backfill_running(db: "Database") -> bool:
    """Whether a `backfill snapshotter` run holds its lock now (one query on pg_locks)."""
    found = await db.fetchval(
        "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = 0"
        f" AND objid = $1::bigint::oid AND objsubid = 1 AND granted AND {_HERE}",
        SNAPSHOTTER_LOCK,
    )
    return found is not None


def job_key(group: str) -> int:
    """The second key of a letters job's lock: its group (a hash already) as a positive int4."""
    return int(hashlib.sha1(group.encode()).hexdigest()[:8], 16) & 0x7FFF_FFFF


async def jobs_folded(db: "Database", groups: Iterable[str]) -> dict[str, str]:
    """Of the letters jobs `groups`, those a run folds now: group -> "begun" (by the run that
    began it: JOB_BEGUN) or "finishing" (by a later run: JOB_FINISHING); one query on pg_locks."""
    keys = {job_key(group): group for group in groups}
    rows = await db.fetch(
        "SELECT classid::bigint AS kind, objid::bigint AS job FROM pg_locks"
        " WHERE locktype = 'advisory' AND objsubid = 2 AND granted"
        " AND classid::bigint = ANY($1::bigint[]) AND objid::bigint = ANY($2::bigint[])"
        f" AND {_HERE}",
        [JOB_BEGUN, JOB_FINISHING],
        list(keys),
    )
    kinds = {JOB_BEGUN: "begun", JOB_FINISHING: "finishing"}
    return {keys[row["job"]]: kinds[row["kind"]] for row in rows}


class Database(Protocol):
    """An asyncpg pool or connection."""

    async def fetchval(self, query: str, *args: Any) -> Any: ...

    async def fetch(self, query: str, *args: Any) -> Any: ...


async def snapshotter_position(db: Database, topic: str, partition: int) -> int | None:
    """The snapshotter's committed position in `topic`/`partition` (the next offset it folds),
    None before its first commit there."""
    position: int | None = await db.fetchval(
        "SELECT next_offset FROM consumer_positions WHERE consumer_group = $1 AND topic = $2"
        " AND partition = $3",
        SNAPSHOTTER_GROUP,
        topic,
        partition,
    )
    return position


async def snapshotter_rebuilding(db: Database, topic: str, partition: int) -> bool:
    """Whether the snapshotter's rows of a letter in `topic`/`partition` may be part of its
    history: a reset rebuild is under way (or was interrupted), or a rebuild of chosen letters
    with one on that partition (which ones, its group does not say); the service's commits
    there wait for it (snapshotter/store.py). One query on a table of a few rows per consumer
    group."""
    found = await db.fetchval(
        "SELECT 1 FROM consumer_positions WHERE consumer_group = $1 AND topic = $2"
        " AND partition = $3 OR starts_with(consumer_group, $4) AND topic = $5"
        " AND partition = $6 LIMIT 1",
        MARKER_GROUP,
        *SNAPSHOTTER_RESET,
        LETTERS_JOBS,
        topic,
        partition,
    )
    return found is not None


# -- the projector's keys in Redis ----------------------------------------------------------------
# The marker of a reset rebuild of them (`backfill projector --reset`, tools/backfill_projector.py):
# set before the wipe, deleted once the rebuild has folded the whole log. While it is there, the
# comments, notifications and documents in Redis hold part of the history, or none of it.
PROJECTOR_RESET = "backfill:projector:reset"  # "wiping" | "rebuilding"
# The lease of the one whole-log rebuild of the projector's keys running (`backfill projector`
# without `--letters`, tools/backfill.py; tools/lease.py): "host pid machine random", so that a
# rerun on the machine of a run that died takes it at once. Not under a wipe's patterns.
PROJECTOR_RUN = "backfill:projector:run"
# Partitions of the letters topic the projector is replaying from their start (a wipe: FLUSHALL,
# its positions deleted, a reset): a hash, field `replay_field` -> the offset the replay must
# reach (the partition's end when it began). Set by the commit of the replay's first batch,
# deleted by the commit that reaches it, whichever instance or backfill writes it
# (projector/store.py), so the state a commit writes and this hash always agree. Under the
# projector's prefix: a wipe takes it with the positions it qualifies.
PROJECTOR_REPLAYS = "projector:replays"


def replay_field(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"
