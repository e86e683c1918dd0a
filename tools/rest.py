"""REST for auditors: history, replay, versions and diff of a letter (role auditor or service).

Mounted by the app shell next to the gateway's own routes, with the gateway's token check:
`app.include_router(auditor_router(settings, log, redis, pg, authenticate))`. Firm-scoped like
everything else: a letter of another firm, or one that does not exist, is 403 (no existence
leak).
Bad instants, offsets and unknown versions are 4xx with a message; so is a replay before the
letter's first record (404, naming its creation: an empty 200 would pass for an emptied letter)
and a history window whose `until` is before its `since` (400). Instants answered are
`tools.timefmt.iso`'s, whatever their source (log record times, PostgreSQL timestamps).

History comes in pages (`limit`, default 1000, at most 10000) in the order of its entries,
oldest first or, with `order=desc`, newest first; a page followed by more names the next one in
`Link: <...>; rel="next"` (RFC 8288) and, for clients that only want the token, `X-Next-Cursor`
(pass it back as `after`, with the same `order`). The body stays a bare list of entries.

While a reset rebuild of the snapshotter's tables is under way (`schemas.rebuilds`), or one of
chosen letters on the letter's partition, what they hold may be part of its versions and
history: the routes that read them answer 503 "history is being rebuilt" with Retry-After
instead, whatever part they found. A version found is served (the rebuild writes it as the
service did); replay folds the log past the nearest one. PostgreSQL down, or not answering
within the gateway pool's bound (schemas/bounded_pg.py), is 503 naming it, not a hung request;
so is a database without the snapshotter's tables (lost and made again: "run migrate").
A database the snapshotter has not folded the letter into yet (new, or rebuilt by the service
itself, no marker) holds none of its history: history is then folded from the log, as without
PostgreSQL, and versions answer 503 "not rebuilt yet", never an empty list passed off as whole.
A letter it has folded whose creation row is gone from the audit trail (truncated by hand) has
its history answer 503 naming the rebuild, not what rows are left; so do its versions when
`letter_version` lacks one its saved working state counts (removed by hand): the list, and a
version asked for, alone or as an end of a diff, rather than 404.
One it has folded has the rows of its records past the snapshotter's position folded on the spot
on top of its audit trail (tools/history.py): a snapshotter behind hides no recent event.
"""

import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from eventlog import Log
from gateway.access import Access
from gateway.api.responses import AUTHENTICATED, ErrorOut, errors
from gateway.auth import Claims
from schemas import pages
from schemas.rebuilds import snapshotter_rebuilding
from schemas.settings import Settings
from snapshotter import read
from tools import diff as diffs
from tools import history as histories
from tools.lost_rows import AUDIT_LOST, VERSIONS_LOST
from tools.render import render, replay_headers
from tools.replay import Cut, LetterNotFound, NotYetCreated, replay_existing
from tools.sources import Sources
from tools.timefmt import BadInstant, iso_of, parse_instant

AUDITORS = frozenset({"auditor", "service"})
HISTORY_PAGE = 1000
HISTORY_PAGE_MAX = 10_000
REBUILD_RETRY_S = 30  # a rebuild folds the whole log: minutes, not seconds
# A letter the snapshotter has not folded yet: a rebuilt database (minutes), or one created a
# moment ago that the live snapshotter commits within its lag (well under a second: the web
# client asks again after it, so a new letter's history panel does not wait long).
NOT_REACHED_RETRY_S = 1
# Diffs at once per gateway process (a long letter's takes a core for about a second); one
# waiting past DIFF_WAIT_S is 503 with Retry-After, a user's second while the first is still
# waiting or running 429 (tools.diff.Slots).
DIFF_SLOTS = 1
DIFF_WAIT_S = 10.0
DIFF_RETRY_S = 5
REBUILDING = (
    "history is being rebuilt from the log (backfill snapshotter): the versions and history"
    " stored so far may be incomplete"
)
NOT_REACHED = (
    "the snapshotter has not reached this letter in PostgreSQL yet (a database being rebuilt from"
    " the log, or a letter created a moment ago): its versions are not there yet"
)
NOT_FOLDED = (
    "the snapshotter has not folded this letter's latest records yet: a version among them is"
    " not in PostgreSQL yet"
)
MISSING_TABLES = (
    "PostgreSQL lacks the snapshotter's tables ({reason}): if it was never migrated, run"
    " `steno-collab migrate`, and the snapshotter rebuilds them from the log; a table dropped"
    " from a migrated one is not made again by it: rebuild the database from the log"
    ' (`steno-collab verify` names how; README "Rebuilding and auditing")'
)
MEDIA = {"text": "text/plain; charset=utf-8", "html": "text/html; charset=utf-8"}


def _documented(description: str, kind: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": kind}}


# The cut a replay answered, beside any format's body (tools.render.replay_headers).
REPLAY_HEADERS = {
    "Replay-Partition": _documented("the letter's partition", "integer"),
    "Replay-Position": _documented("the next offset folded in (records below it)", "integer"),
    "Replay-As-Of": _documented(
        "the record time of the letter's last event folded (absent: none)", "string"
    ),
    "Replay-Base-Version": _documented(
        "the saved version the replay started from (absent: the log alone)", "integer"
    ),
    "Replay-Note": _documented(
        "present when `at` is later than the replay, or `offset` past the log's end: not final",
        "string",
    ),
}

# A rendered letter is what its editors wrote, opened in the app's own origin: no script,
# no loads but its own `data:` images, no sniffing another type (tools/html_export.py also drops
# links that could run code). Inline styles are the letter's alignment and colours, whose values
# the export keeps only of a plain shape (no `url(`).
RENDERED = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"
    ),
    "X-Content-Type-Options": "nosniff",
}


TEXT = {"schema": {"type": "string"}}


# `/replay`'s JSON, for the OpenAPI document only: the route sends tools.render.to_json's
# bytes (as the CLI's `replay --format json`); tests/gateway/test_openapi_shapes.py checks both.
class ReplayOut(BaseModel):
    """The letter as it was at the instant or offset asked (now, by default)."""

    model_config = ConfigDict(extra="forbid")
    letter_id: str
    partition: int
    position: int = Field(description="next offset of the partition folded in")
    as_of: str | None = Field(description="time of the letter's last event folded")
    base_version: int | None = Field(description="the version the replay started from")
    updates_replayed: int
    content: str = Field(description="plain text, blocks separated by newlines")
    document: dict[str, Any] = Field(description='ProseMirror\'s JSON: {"type": "doc", ...}')


# PostgreSQL refused, not answering (schemas.bounded_pg.PostgresNotAnswering is a TimeoutError),
# starting up, or a connection of it lost mid-query.
PG_DOWN = (TimeoutError, ConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError)


class _PostgresDownIs503(APIRoute):
    """A route whose read of PostgreSQL failed for want of the server answers 503 naming it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except PG_DOWN as exc:
                reason = str(exc) or exc.__class__.__name__
                raise HTTPException(503, f"PostgreSQL is unavailable: {reason}") from None
            except asyncpg.UndefinedTableError as exc:  # a lost database made again, empty
                detail = MISSING_TABLES.format(reason=exc)
                raise HTTPException(503, detail, {"Retry-After": str(REBUILD_RETRY_S)}) from None

        return guarded


def auditor_router(
    settings: Settings,
    log: Log,
    redis: Any,
    pg: Any,
    authenticate: Callable[[str | None], Awaitable[Claims]],
) -> APIRouter:
    """The auditor endpoints over `log` (and `pg`, an asyncpg pool, for versions and history).
    `authenticate(authorization header)`: the app's token check (its keys, its request budget),
    raising HTTPException."""
    router = APIRouter(
        prefix="/v1/letters/{letter_id}",
        tags=["auditors"],
        responses=errors(*AUTHENTICATED, 400, 404, 503),
        route_class=_PostgresDownIs503,
    )
    access = Access(settings, log, redis, pg)
    src = Sources(settings, log, None, pg)
    log_only = Sources(settings, log)  # history of a letter PostgreSQL does not hold yet

    async def auditor(
        request: Request, letter_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> str:
        claims = await authenticate(authorization)
        meta = await access.lookup(letter_id)
        if claims.role not in AUDITORS or meta is None or not _same_firm(claims, meta.firm_id):
            raise HTTPException(403, "forbidden")
        request.state.claims = claims  # who asks (the diff route's one-at-a-time rule)
        return letter_id

    Letter = Annotated[str, Depends(auditor)]

    @router.get(
        "/history",
        responses={
            200: {
                "description": "a page of entries, oldest first (newest with order=desc)",
                "headers": pages.NEXT_PAGE_HEADERS,
            },
            422: {"model": ErrorOut, "description": "a bad limit or order, or a malformed cursor"},
        },
    )
    async def history(
        request: Request,
        response: Response,
        letter_id: Letter,
        since: str | None = None,
        until: str | None = None,
        limit: Annotated[int, Query(ge=1, le=HISTORY_PAGE_MAX)] = HISTORY_PAGE,
        after: Annotated[str | None, Query(description="X-Next-Cursor of the page before")] = None,
        order: Annotated[
            histories.Order,
            Query(description="asc: oldest first; desc: newest first (a cursor fits either)"),
        ] = "asc",
    ) -> list[dict[str, Any]]:
        try:
            cursor = None if after is None else histories.Cursor.decode(after)
        except histories.BadCursor as exc:
            # Worded as the app words FastAPI's own 422s (gateway.api.responses).
            raise HTTPException(422, f"invalid request: query.after: {exc}") from exc
        # Asked before the read: a letter found then has its rows up to its creation at least.
        reached = await _reached(src.pg, letter_id)
        source = src if reached else log_only
        try:
            entries, following = await histories.page(
                source,
                letter_id,
                _instant(since, True),
                _instant(until, True),
                cursor,
                limit,
                order,
            )
        except histories.Backwards as exc:
            raise HTTPException(400, exc.phrased("since", "until")) from exc
        # Asked before the rebuild marker (`_whole`), which names a rebuild emptying the rows.
        wiped = (
            source is src
            and src.pg is not None
            and not await read.has_creation_row(src.pg, letter_id)
        )
        await _whole(src, letter_id)  # (no PostgreSQL: the page was folded from the log, whole)
        if wiped:
            raise HTTPException(
                503, AUDIT_LOST.format(letter_id), {"Retry-After": str(REBUILD_RETRY_S)}
            )
        if following is not None:
            response.headers.update(pages.next_page(request.url, following.encode(), limit))
        return [e.to_json() for e in entries]

    @router.get(
        "/replay",
        responses={
            200: {
                "model": ReplayOut,
                "description": "the letter as it was: JSON, or rendered (`format`)",
                "content": {"text/plain": TEXT, "text/html": TEXT},
                "headers": REPLAY_HEADERS,
            }
        },
    )
    async def replay_letter(
        letter_id: Letter,
        at: str | None = None,
        offset: Annotated[int | None, Query(ge=0)] = None,
        format: Annotated[str, Query(pattern="^(text|html|json)$")] = "json",
    ) -> Response:
        if at is not None and offset is not None:
            raise HTTPException(400, "give at or offset, not both")
        cut = Cut(offset=offset, at_ms=_instant(at))
        began = time.time_ns() // 1_000_000  # before the log's end is read: see tools.render.ahead
        try:
            replayed = await replay_existing(src, letter_id, cut)
        except LetterNotFound as exc:
            raise HTTPException(403, "forbidden") from exc
        except NotYetCreated as exc:  # only for a letter of the caller's firm (`auditor` above)
            raise HTTPException(404, str(exc)) from exc
        named = replay_headers(replayed, cut, began)
        if format == "json":
            return Response(render(replayed, "json"), media_type="application/json", headers=named)
        return Response(
            render(replayed, format), media_type=MEDIA[format], headers={**RENDERED, **named}
        )

    @router.get("/versions")
    async def versions(letter_id: Letter) -> list[dict[str, Any]]:
        if not await _reached(_pg(src), letter_id):  # 503 whatever the tables hold: not read
            await _whole(src, letter_id, reached=False)
        # Before the list: every version the state counts is committed by then.
        counted = await read.versions_counted(src.pg, letter_id)
        rows = await read.list_versions(src.pg, letter_id)
        await _whole(src, letter_id)
        if sum(1 for n, _, _ in rows if n <= counted) < counted:
            raise _versions_lost(counted, letter_id)
        return [
            {"version_number": n, "created_at": iso_of(at), "change_data": data}
            for n, at, data in rows
        ]

    @router.get("/versions/{number}")
    async def version(letter_id: Letter, number: int) -> dict[str, Any]:
        reached = await _reached(_pg(src), letter_id)
        found = await read.version(src.pg, letter_id, number)
        counted = await _look_again(src, letter_id, number, reached) if found is None else None
        if counted is not None:
            found = await read.version(src.pg, letter_id, number)
            if found is None:  # committed, yet not there
                _lost(counted, letter_id, number)
        if found is None:
            raise HTTPException(404, f"letter {letter_id} has no version {number}")
        return {
            "version_number": found.version_number,
            "created_at": iso_of(found.created_at),
            "content": found.content,
            "document": found.document,
            "change_data": found.change_data,
            "log_position": found.log_offset,
        }

    diff_slots = diffs.Slots(DIFF_SLOTS, DIFF_WAIT_S)

    @router.get("/diff")
    async def diff(
        request: Request,
        letter_id: Letter,
        start: Annotated[str, Query(alias="from")],
        end: Annotated[str, Query(alias="to")],
    ) -> dict[str, Any]:
        who = f"{request.state.claims.firm_id}/{request.state.claims.sub}"

        async def run() -> diffs.Diff:
            a = await diffs.resolve_point(src, letter_id, start)
            b = await diffs.resolve_point(src, letter_id, end)
            return await diff_slots.run(lambda: diffs.diff(src, letter_id, a, b), who)

        try:
            # A version not found may be one not rebuilt, or not folded, yet (503), or one the
            # snapshotter committed since it was looked for: then again (each end once at most).
            for tries_left in range(2, -1, -1):
                try:
                    result = await run()
                    break
                except diffs.NoVersion as exc:
                    reached = await _reached(src.pg, letter_id)
                    counted = await _look_again(src, letter_id, exc.number, reached)
                    if counted is None:
                        raise
                    if not tries_left:  # committed, yet not there
                        _lost(counted, letter_id, exc.number)
                        raise
        except diffs.YoursUnderWay as exc:
            raise HTTPException(429, str(exc), {"Retry-After": str(DIFF_RETRY_S)}) from exc
        except diffs.Busy as exc:
            raise HTTPException(503, str(exc), {"Retry-After": str(DIFF_RETRY_S)}) from exc
        except diffs.Backwards as exc:
            raise HTTPException(400, exc.phrased(f"from={start}", f"to={end}")) from exc
        except NotYetCreated as exc:  # `from` before the letter: as `/replay` answers it
            raise HTTPException(404, str(exc)) from exc
        except diffs.NoVersion as exc:
            raise HTTPException(404, str(exc)) from exc
        except diffs.BadRange as exc:
            raise HTTPException(400, str(exc)) from exc
        except BadInstant as exc:
            raise HTTPException(400, str(exc)) from exc
        return result.to_json()  # as the CLI's `diff --json`

    return router


def _same_firm(claims: Claims, firm_id: str) -> bool:
    return claims.role == "service" or claims.firm_id == firm_id


def _instant(text: str | None, bound: bool = False) -> int | None:
    if text is None:
        return None
    try:
        return parse_instant(text, bound)
    except BadInstant as exc:
        raise HTTPException(400, str(exc)) from exc


def _pg(src: Sources) -> Any:
    if src.pg is None:
        raise HTTPException(503, "versions need PostgreSQL, which this gateway is not given")
    return src.pg


async def _reached(pg: Any, letter_id: str) -> bool:
    """Whether PostgreSQL holds the letter (without PostgreSQL nothing is to be waited for)."""
    return pg is None or await read.has_letter(pg, letter_id)


def _versions_lost(counted: int, letter_id: str) -> HTTPException:
    return HTTPException(
        503, VERSIONS_LOST.format(counted, letter_id), {"Retry-After": str(REBUILD_RETRY_S)}
    )


def _lost(counted: int, letter_id: str, number: int) -> None:
    """For a version `number` not found where it was committed (`counted` from `_folded`): 503
    naming the rebuild if the letter's saved working state counts it (its row was removed by
    hand)."""
    if 1 <= number <= counted:  # (0 is below every `latest`: looked for again, never a version)
        raise _versions_lost(counted, letter_id)


async def _look_again(src: Sources, letter_id: str, number: int, reached: bool) -> int | None:
    """For a version `number` just not found: 503 while the letter's rows are rebuilt or not
    reached (`_whole`), while it may be among the records not folded, or when its saved working
    state counts it (`_folded`); if PostgreSQL holds it now (look again), the versions the state
    counts (for `_lost`); None if the letter has no such version (404)."""
    await _whole(src, letter_id, reached)
    return await _folded(src, letter_id, number)


async def _folded(src: Sources, letter_id: str, number: int) -> int | None:
    """For a version `number` just not found: 503 while it may be among the letter's records
    the snapshotter has not folded (history, folded past the snapshotter, may name it already:
    a 404 would read as final): each cuts at most one version after PostgreSQL's latest. 503
    naming the rebuild when the letter's saved working state counts it (`read.versions_counted`)
    and PostgreSQL's latest is below it: removed by hand. If PostgreSQL holds it now (committed
    since it was looked for: look again), the versions the state counts; None: 404."""
    if src.pg is None:
        return None
    # The count first: the versions it counts are committed by then, so a latest below one of
    # them is rows removed, not a commit between the reads. Then the records not folded: a
    # commit between those two reads only raises `latest` (read the other way round, a version
    # committed in between fell between them: 404).
    counted = await read.versions_counted(src.pg, letter_id)
    unfolded = await histories.unfolded(src, letter_id)
    found = await read.latest_version(src.pg, letter_id)
    latest = 0 if found is None else found.version_number  # numbers run 1, 2, ... without gaps
    if number <= latest:
        # The state is saved in each version's transaction: it counts `latest` by now, if not
        # when read (a commit in between). `_lost` decides on it as on a count read anew.
        return max(counted, latest)
    if number <= counted:
        raise _versions_lost(counted, letter_id)
    if number <= latest + unfolded:
        raise HTTPException(503, NOT_FOLDED, {"Retry-After": str(NOT_REACHED_RETRY_S)})
    return None


async def _whole(src: Sources, letter_id: str, reached: bool = True) -> None:
    """503 while a rebuild of the letter's rows in the snapshotter's tables is under way, or
    (`reached` False, asked before the read) while the snapshotter has not folded the letter's
    creation yet. The marker is asked after the read: a read that saw the rows emptied or
    part-filled ended after the marker was written with the emptying, so it sees the marker,
    unless the whole rebuild ended meanwhile."""
    if src.pg is None:
        return
    partition = src.partition_of(letter_id)
    if await snapshotter_rebuilding(src.pg, src.letters_topic, partition):
        raise HTTPException(503, REBUILDING, {"Retry-After": str(REBUILD_RETRY_S)})
    if not reached:
        raise HTTPException(503, NOT_REACHED, {"Retry-After": str(NOT_REACHED_RETRY_S)})
