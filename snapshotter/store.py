"""The snapshotter's writes to PostgreSQL: one transaction per batch holding its rows, the
letters' working states saved with it AND the consumer position, so a batch is applied
exactly once.

The position update is a compare-and-set on the position this instance started the batch
from: if another instance (after a rebalance, or a zombie) moved it, or a reset rebuild
(`backfill snapshotter --reset`) deleted it, the transaction rolls back with
`StalePositionError` instead of writing a second copy of the rows. The service's store yields to
a reset rebuild and to a rebuild of chosen letters (`backfill snapshotter --letters/--since`,
`yield_to_rebuild`): while a reset is marked under way it commits nothing, while a letters job is
marked on a partition nothing of that partition.
"""

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

import asyncpg

from schemas import pg_quiet
from schemas.events import Payload
from schemas.rebuilds import LETTERS_JOBS, MARKER_GROUP, SNAPSHOTTER_RESET, snapshotter_rebuilding
from snapshotter import pgtext, quarantine
from snapshotter.fold import BatchOutput, CommentOp, StateRow
from snapshotter.state import LetterState

AUDIT_COLUMNS = (
    "id",
    "letter_id",
    "user_id",
    "change_type",
    "change_data",
    "timestamp",
    "log_topic",
    "log_partition",
    "log_offset",
)


class StalePositionError(Exception):
    """The stored position moved under us: another consumer owns the partition now, or a
    reset rebuild deleted it."""


class RebuildUnderWay(StalePositionError):
    """A reset rebuild of the snapshotter's tables owns the positions until it ends, or a
    rebuild of chosen letters owns the partition's position (it folds up to it)."""


def ms_to_datetime(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def _json(value: Any) -> str:
    return json.dumps(pgtext.stored(value), sort_keys=True, separators=(",", ":"))


class Store:
    def __init__(self, pool: asyncpg.Pool, *, yield_to_rebuild: bool = False) -> None:
        self.pool = pool
        # The service's store: a reset rebuild's marker, or a letters job's on the partition,
        # refuses its commits (RebuildUnderWay). The rebuilds' own store
        # (tools/backfill_snapshotter.py) has it off.
        self.yield_to_rebuild = yield_to_rebuild

    @classmethod
    async def open(cls, dsn: str, *, yield_to_rebuild: bool = False) -> "Store":
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        return cls(pg_quiet.watch(pool, dsn), yield_to_rebuild=yield_to_rebuild)

    async def rebuilding(self) -> bool:
        """Whether a reset rebuild is marked under way (or was interrupted)."""
        return await _rebuild_marked(self.pool)

    async def letters_jobs(self, topic: str, partitions: Iterable[int]) -> dict[str, list[int]]:
        """The rebuilds of chosen letters marked on `partitions` of `topic` (under way, or
        interrupted): consumer group -> its partitions among those."""
        rows = await self.pool.fetch(
            "SELECT consumer_group, partition FROM consumer_positions"
            " WHERE starts_with(consumer_group, $1) AND topic = $2 AND partition = ANY($3::int[])"
            " ORDER BY 1, 2",
            LETTERS_JOBS,
            topic,
            list(partitions),
        )
        jobs: dict[str, list[int]] = {}
        for row in rows:
            jobs.setdefault(row["consumer_group"], []).append(row["partition"])
        return jobs

    async def unrecorded(self, groups: Iterable[str]) -> set[str]:
        """Those of the letters jobs `groups` whose letters are not in `letters_jobs`: marked by
        a version before it, so no other run knows them (tools/backfill_snapshotter.py)."""
        rows = await self.pool.fetch(
            "SELECT g FROM unnest($1::text[]) AS g"
            " WHERE NOT EXISTS (SELECT 1 FROM letters_jobs WHERE consumer_group = g)",
            list(groups),
        )
        return {row["g"] for row in rows}

    async def close(self) -> None:
        await pg_quiet.forget(self.pool)
        await self.pool.close()

    async def positions(self, group: str, topic: str) -> dict[int, int]:
        rows = await self.pool.fetch(
            "SELECT partition, next_offset FROM consumer_positions"
            " WHERE consumer_group = $1 AND topic = $2",
            group,
            topic,
        )
        return {row["partition"]: row["next_offset"] for row in rows}

    async def load_states(
        self, letter_ids: Iterable[str], *, field_name: str, window_ms: int, committed: int = 0
    ) -> list[LetterState]:
        """The letters' saved states; `unsaved_from` says where those lagging records committed
        since start. A row from before `covers` was saved is taken to cover `committed`."""
        rows = await self.pool.fetch(
            "SELECT s.letter_id, log_topic, log_partition, ydoc_state, state,"
            " u.since FROM snapshotter_letter_state s"
            " LEFT JOIN snapshotter_unsaved u USING (letter_id)"
            " WHERE s.letter_id = ANY($1::text[])",
            list(letter_ids),
        )
        states = []
        for r in rows:
            state = LetterState.restore(
                r["letter_id"],
                r["log_topic"],
                r["log_partition"],
                r["ydoc_state"],
                json.loads(r["state"]),
                field_name=field_name,
                window_ms=window_ms,
                unsaved_from=r["since"],
                committed=committed,
            )
            states.append(state)
        return states

    async def lagging(self, topic: str, partition: int) -> list[str]:
        """The letters of `topic`/`partition` listed in `snapshotter_unsaved`, those lagging
        from the earliest offset first."""
        rows = await self.pool.fetch(
            "SELECT letter_id FROM snapshotter_unsaved u JOIN snapshotter_letter_state s"
            " USING (letter_id) WHERE s.log_topic = $1 AND s.log_partition = $2"
            " ORDER BY u.since, letter_id",
            topic,
            partition,
        )
        return [row["letter_id"] for row in rows]

    async def quarantined(self, topic: str, partition: int, start: int, end: int) -> set[int]:
        """Offsets in [start, end) the snapshotter quarantined (skipped) when folding them."""
        rows = await self.pool.fetch(
            "SELECT log_offset FROM quarantine WHERE consumer = $1 AND log_topic = $2"
            " AND log_partition = $3 AND log_offset >= $4 AND log_offset < $5",
            quarantine.CONSUMER,
            topic,
            partition,
            start,
            end,
        )
        return {row["log_offset"] for row in rows}

    async def commit(
        self,
        group: str,
        topic: str,
        partition: int,
        expected: int | None,
        next_offset: int,
        out: BatchOutput,
    ) -> None:
        """Write `out` and move the position from `expected` (None: the partition has no
        stored position yet) to `next_offset`, or raise StalePositionError, writing nothing."""
        async with self.pool.acquire() as conn, conn.transaction():
            await _advance(conn, group, topic, partition, expected, next_offset)
            if self.yield_to_rebuild and await snapshotter_rebuilding(conn, topic, partition):
                # After the position's row lock: a reset or a letters job (which lock the table
                # first) either committed before, and is seen here, or waits for this
                # transaction to end: a letters job's read of the position once marked is final.
                raise RebuildUnderWay(f"{group} {topic}/{partition}: a rebuild is under way")
            await _write_letters(conn, out)
            await _write_versions(conn, out)
            await _write_audit(conn, out)
            for op in out.comments:
                await write_comment(conn, op)
            await _write_states(conn, out.states)
            await _mark_unsaved(conn, out.lagging, out.current)


async def _advance(
    conn: asyncpg.Connection,
    group: str,
    topic: str,
    partition: int,
    expected: int | None,
    new: int,
) -> None:
    if expected is None:  # the first commit: no other may have made the row meanwhile
        inserted = await conn.fetchval(
            "INSERT INTO consumer_positions (consumer_group, topic, partition, next_offset)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
            group,
            topic,
            partition,
            new,
        )
        if inserted is None:
            raise StalePositionError(f"{group} {topic}/{partition}: position stored meanwhile")
        return
    status = await conn.execute(
        "UPDATE consumer_positions SET next_offset = $5 WHERE consumer_group = $1"
        " AND topic = $2 AND partition = $3 AND next_offset = $4",
        group,
        topic,
        partition,
        expected,
        new,
    )
    # No row is stale too: a reset deleted it under us. Creating it again at our position would
    # start the rebuild of that partition there, its earlier records never rebuilt.
    if status != "UPDATE 1":
        raise StalePositionError(f"{group} {topic}/{partition}: position is no longer {expected}")


async def _rebuild_marked(db: asyncpg.Pool | asyncpg.Connection) -> bool:
    found = await db.fetchval(
        "SELECT 1 FROM consumer_positions WHERE consumer_group = $1 AND topic = $2"
        " AND partition = $3",
        MARKER_GROUP,
        *SNAPSHOTTER_RESET,
    )
    return found is not None


async def _write_letters(conn: asyncpg.Connection, out: BatchOutput) -> None:
    if not out.letters:
        return
    await conn.executemany(
        "INSERT INTO letters (letter_id, firm_id, title, created_by, created_at, log_topic,"
        " log_partition, log_offset) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (letter_id) DO NOTHING",
        pgtext.rows(
            (
                r.letter_id,
                r.firm_id,
                r.title,
                r.created_by,
                ms_to_datetime(r.created_ms),
                r.position.topic,
                r.position.partition,
                r.position.offset,
            )
            for r in out.letters
        ),
    )


async def _write_versions(conn: asyncpg.Connection, out: BatchOutput) -> None:
    if not out.versions:
        return
    await conn.executemany(
        "INSERT INTO letter_version (letter_id, version_number, content, document, ydoc_state,"
        " log_topic, log_partition, log_offset, change_data, created_at)"
        " VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9::jsonb, $10)",
        pgtext.rows(
            (
                v.letter_id,
                v.number,
                v.content,
                pgtext.jsonb(v.document_json),
                v.ydoc_state,
                v.position.topic,
                v.position.partition,
                v.position.offset,
                _json(v.change_data),
                ms_to_datetime(v.created_ms),
            )
            for v in out.versions
        ),
    )


async def _write_audit(conn: asyncpg.Connection, out: BatchOutput) -> None:
    if not out.audit:
        return
    records = pgtext.rows(
        (
            a.id,
            a.letter_id,
            a.user_id,
            a.change_type,
            _json(a.change_data),
            ms_to_datetime(a.timestamp_ms),
            a.position.topic,
            a.position.partition,
            a.position.offset,
        )
        for a in out.audit
    )
    await conn.copy_records_to_table("collaboration", records=records, columns=AUDIT_COLUMNS)


async def _write_states(conn: asyncpg.Connection, states: Iterable[StateRow]) -> None:
    rows = pgtext.rows(
        (s.letter_id, s.topic, s.partition, s.ydoc_state, pgtext.jsonb(s.state_json))
        for s in states
    )
    if not rows:
        return
    await conn.executemany(
        "INSERT INTO snapshotter_letter_state (letter_id, log_topic, log_partition, ydoc_state,"
        " state) VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (letter_id) DO UPDATE"
        " SET ydoc_state = EXCLUDED.ydoc_state, state = EXCLUDED.state",
        rows,
    )


async def _mark_unsaved(
    conn: asyncpg.Connection, lagging: dict[str, int], current: set[str]
) -> None:
    if lagging:  # mostly listed already, from the same offset: then nothing is written
        await conn.execute(
            "INSERT INTO snapshotter_unsaved (letter_id, since)"
            " SELECT * FROM unnest($1::text[], $2::bigint[]) ON CONFLICT (letter_id)"
            " DO UPDATE SET since = EXCLUDED.since"
            " WHERE snapshotter_unsaved.since <> EXCLUDED.since",
            list(lagging),
            list(lagging.values()),
        )
    if current:
        await conn.execute(
            "DELETE FROM snapshotter_unsaved WHERE letter_id = ANY($1::text[])", sorted(current)
        )


# Comment events: unknown threads/comments are ignored (0 rows), never a crash; every UPDATE
# is scoped to the event's letter so one letter's events cannot touch another's comments.
# In log order, the rule the projector's fold follows too (README "Comments", "Races"): a
# thread is live while one of its comments is not deleted; once gone, replies, resolves and
# reopens to it are void (its tombstone rows stay as they were); an edit or delete of a deleted
# comment is void; a `comment.created` of a live thread is void, of a gone one starts it anew.
_LIVE = (
    "EXISTS (SELECT 1 FROM comments WHERE thread_id = {0} AND letter_id = {1}"
    " AND deleted_at IS NULL)"
)
_INSERT_THREAD = (
    "INSERT INTO comment_threads (thread_id, letter_id, anchor, status, created_by, created_at,"
    " updated_at) VALUES ($1, $2, $3::jsonb, 'open', $4, $5, $5) ON CONFLICT (thread_id) DO"
    " UPDATE SET anchor = EXCLUDED.anchor, status = 'open', created_by = EXCLUDED.created_by,"
    " created_at = EXCLUDED.created_at, resolved_by = NULL, resolved_at = NULL,"
    " updated_at = EXCLUDED.updated_at WHERE comment_threads.letter_id = EXCLUDED.letter_id"
    " AND NOT " + _LIVE.format("EXCLUDED.thread_id", "EXCLUDED.letter_id")
)
_COMMENT_VALUES = (
    "INSERT INTO comments (comment_id, thread_id, letter_id, author_id, body, mentions,"
    " created_at) SELECT $1, $2, $3, $4, $5, $6::jsonb, $7 WHERE "
)
_INSERT_FIRST = (  # into the thread its `comment.created` just started
    _COMMENT_VALUES + "EXISTS (SELECT 1 FROM comment_threads WHERE thread_id = $2 AND"
    " letter_id = $3) AND NOT " + _LIVE.format("$2", "$3") + " ON CONFLICT DO NOTHING"
)
_INSERT_REPLY = _COMMENT_VALUES + _LIVE.format("$2", "$3") + " ON CONFLICT DO NOTHING"
_TOUCH_THREAD = (
    "UPDATE comment_threads SET updated_at = $3 WHERE thread_id = $1 AND letter_id = $2 AND "
    + _LIVE.format("$1", "$2")
)
_EDIT_COMMENT = (
    "UPDATE comments SET body = $4, mentions = $5::jsonb, edited_at = $6"
    " WHERE comment_id = $1 AND thread_id = $2 AND letter_id = $3 AND deleted_at IS NULL"
)
_DELETE_COMMENT = (
    "UPDATE comments SET deleted_at = $4, deleted_by = $5"
    " WHERE comment_id = $1 AND thread_id = $2 AND letter_id = $3 AND deleted_at IS NULL"
)
_SET_STATUS = (
    "UPDATE comment_threads SET status = $3, resolved_by = $4, resolved_at = $5, updated_at = $6"
    " WHERE thread_id = $1 AND letter_id = $2 AND " + _LIVE.format("$1", "$2")
)

Statement = tuple[str, tuple[Any, ...]]


async def write_comment(conn: asyncpg.Connection, op: CommentOp) -> None:
    """One comment change into the materialised tables, as the snapshotter writes it (verify
    rebuilds them with it: tools/verify.py)."""
    letter_id, user, ts_ms, payload = op.values
    for sql, args in _comment_statements(op.kind, letter_id, user, ms_to_datetime(ts_ms), payload):
        await conn.execute(sql, *pgtext.row(args))


def _comment_statements(
    kind: str, letter: str, user: str, at: dt.datetime, payload: Payload
) -> list[Statement]:
    d = payload.model_dump(mode="json")
    thread = d["thread_id"]
    if kind in ("comment.created", "comment.replied"):
        comment = (d["comment_id"], thread, letter, user, d["body"], _json(d["mentions"]), at)
        if kind == "comment.created":
            thread_row = (thread, letter, _json(d["anchor"]), user, at)
            return [(_INSERT_THREAD, thread_row), (_INSERT_FIRST, comment)]
        return [(_TOUCH_THREAD, (thread, letter, at)), (_INSERT_REPLY, comment)]
    if kind == "comment.edited":
        args = (d["comment_id"], thread, letter, d["body"], _json(d["mentions"]), at)
        return [(_EDIT_COMMENT, args)]
    if kind == "comment.deleted":
        return [(_DELETE_COMMENT, (d["comment_id"], thread, letter, at, user))]
    if kind == "comment.resolved":
        return [(_SET_STATUS, (thread, letter, "resolved", user, at, at))]
    return [(_SET_STATUS, (thread, letter, "open", None, None, at))]
