"""REST: create, list and read letters (health, readiness and metrics: gateway/api/health.py).

A create appends `letter.created` and the initial content (a `doc.update` into the fragment
TipTap edits) in one append, and answers only once both are durable: from then on every
instance finds the letter in the log (read-your-writes). The content's bytes come out of the
user's budget of update bytes, as any update's: the letters topic is kept forever. 503: the log
refused the create (nothing logged); 504: it did not confirm in time, and the letter may still
appear (gateway/live/confirmed.py): the caller looks (GET /v1/letters) before creating it again.
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, NoReturn

import asyncpg
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field, field_validator

from eventlog.errors import LogError
from eventlog.records import Entry
from gateway import listing, restored
from gateway.access import LetterMeta
from gateway.api import idempotency
from gateway.api.anonymous import VERIFIED
from gateway.api.names import ONE_LINE, problem
from gateway.api.responses import (
    AUTHENTICATED,
    errors,
    log_unavailable_error,
    retry_after,
    too_many_requests,
)
from gateway.auth import Claims, bearer_token
from gateway.content import PARAGRAPH_BYTES, initial_update, plain_text
from gateway.context import Context
from gateway.errors import AuthError
from gateway.live.buckets import user_key
from gateway.live.confirmed import UNCONFIRMED, Unconfirmed, append_confirmed
from gateway.service import Gateway
from schemas import pages
from schemas.envelope import INITIAL_HEADER, INITIAL_VALUE
from schemas.events import LetterCreated, Topic
from schemas.ids import uuid7

router = APIRouter()


MAX_TITLE = 500  # characters, as the event schema allows
# Initial content of more than this (at least 2,000 lines, or 64 KiB) is built in a thread of
# its own: one, so that a user's many creates queue there, not in the loop's default executor.
_BUILD_INLINE_BYTES = 64 << 10
_BUILDER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="steno-content")
BUILDING = "other letters' content is being built: try again"
BUILD_RETRY_S = 5


class CreateLetter(BaseModel):
    firm_id: str = Field(min_length=1, max_length=128)
    # The pattern is checked below, to answer with a message rather than the pattern itself.
    title: str = Field(min_length=1, max_length=MAX_TITLE, json_schema_extra={"pattern": ONE_LINE})
    # Optional: absent and null are both no content.
    content: str | None = Field(default="", max_length=1_000_000)

    @field_validator("title")
    @classmethod
    def _one_line(cls, title: str) -> str:
        why = problem(title)  # as a version's label (api/versions.py) and a section
        if why is not None:
            raise ValueError(f"1 to {MAX_TITLE} characters: {why}")
        return title

    @field_validator("content")
    @classmethod
    def _lines(cls, content: str | None) -> str:
        # One paragraph per line: a Windows or old Mac line break is one break, not a "\r"
        # kept inside a paragraph. Every break starts a paragraph, a final one too (an empty
        # last one): GET's `content` ("\n" between paragraphs) then gives back what was sent.
        return (content or "").replace("\r\n", "\n").replace("\r", "\n")


class LetterCreatedOut(BaseModel):
    letter_id: str
    firm_id: str
    title: str


class LetterOut(LetterCreatedOut):
    content: str


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def claims_of(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Claims:
    """The caller's verified token, within their budget of requests (`rest_requests_*`)."""
    verified = getattr(request.state, VERIFIED, None)  # a write: RefuseAnonymousWrites did it
    host = request.client.host if request.client else None
    return await bearer_claims(gateway_of(request).ctx, authorization, verified, host)


async def bearer_claims(
    ctx: Context, authorization: str | None, verified: Claims | None = None, host: str | None = None
) -> Claims:
    """The claims of an `Authorization: Bearer` header within the user's budget; else 401/429.
    `verified`: the header's claims, when already verified for this request. Why a token was
    refused is logged (with `host`) and counted, not answered (gateway/auth_refusals.py)."""
    try:
        claims = verified or await ctx.verifier.verify(bearer_token(authorization))
    except AuthError as exc:
        ctx.metrics.refuse("unauthorized")
        ctx.verifier.refusals.note(ctx.metrics, exc, "REST", host)
        raise HTTPException(401, "unauthorized", {"WWW-Authenticate": "Bearer"}) from exc
    wait = admit(ctx, claims)
    if wait is not None:
        raise too_many_requests(wait)
    return claims


def admit(ctx: Context, claims: Claims) -> float | None:
    """Within the user's budget of REST requests (None), or the seconds until they may retry."""
    wait = ctx.budget(ctx.rest_requests, claims)
    if wait is not None:
        ctx.metrics.refuse("rest_rate_limited")
    return wait


GatewayDep = Annotated[Gateway, Depends(gateway_of)]
ClaimsDep = Annotated[Claims, Depends(claims_of)]


def charge_update_bytes(ctx: Context, claims: Claims, size: int) -> None:
    """Take `size` bytes from the user's budget of update bytes (service tokens too, as for
    their updates: gateway/live/writes.py); else 429 with Retry-After."""
    with ctx.update_bytes.held(user_key(claims)) as budget:
        # Content may be larger than the burst (up to max_document_bytes): a full budget takes
        # it, into debt, rather than refusing it for ever.
        wait = budget.wait_s(min(size, budget.burst))
        if wait == 0:
            budget.reserve(size)
            return
    ctx.metrics.refuse("update_bytes_rate_limited")
    raise HTTPException(429, "update bytes over budget", retry_after(wait))


@router.post(
    "/v1/letters",
    status_code=201,
    responses={**errors(*AUTHENTICATED, 400, 413, 503, 504), **idempotency.RESPONSES},
)
async def create_letter(
    body: CreateLetter,
    gateway: GatewayDep,
    claims: ClaimsDep,
    response: Response,
    idempotency_key: idempotency.KeyHeader = None,
) -> LetterCreatedOut:
    """201 once the letter is in the log; 504 when the log did not confirm it in time. With an
    `Idempotency-Key`, the same request again answers the same letter (api/idempotency.py)."""
    if not (
        claims.role == "service" or (claims.role == "editor" and claims.firm_id == body.firm_id)
    ):
        gateway.ctx.metrics.refuse("forbidden")
        raise HTTPException(403, "forbidden")
    ctx = gateway.ctx
    content = body.content or ""  # None only to the type checker: the model makes it ""
    # What the content takes in the update at least: refused unbuilt past the size limit (10 MiB
    # of newlines would be millions of paragraphs to build first).
    least = (content.count("\n") + 1) * PARAGRAPH_BYTES + len(content) if content else 0
    if least > ctx.settings.max_document_bytes:
        _too_large(ctx)
    ticket, topic = None, ctx.settings.topic(Topic.LETTERS)
    if idempotency_key is not None:
        claimed = await idempotency.begin(
            gateway.access, ctx.redis, claims, idempotency_key, body.model_dump(),
            ctx.settings.idempotency_ttl_s, ctx.settings.append_timeout_s, ctx.log, topic,
            ctx.wake_restore,
        )  # fmt: skip
        if isinstance(claimed, str):  # made by the same request before: nothing to append
            response.headers[idempotency.REPLAYED] = "true"
            return LetterCreatedOut(letter_id=claimed, firm_id=body.firm_id, title=body.title)
        ticket = claimed
    elif ctx.redis is not None:  # a fresh deployment's first letter: the marker before it
        await restored.keep(ctx.redis, ctx.log, topic, ctx.wake_restore)
    letter_id = ticket.letter_id if ticket else uuid7()
    out = LetterCreatedOut(letter_id=letter_id, firm_id=body.firm_id, title=body.title)
    created = LetterCreated(
        letter_id=letter_id,
        firm_id=body.firm_id,
        title=body.title,
        created_by=claims.sub,
        creator_name=claims.name,
        idempotency=ticket.logged() if ticket else None,  # a wiped Redis gets the claim back
    )
    meta = LetterMeta(letter_id, body.firm_id, body.title)
    timeout_s = ctx.settings.append_timeout_s
    try:
        async with idempotency.settling(ticket):  # a 413 or 429 below releases the claim
            update = await _built(ctx, claims, content, least)
            entries = [_initial(ctx.entry(letter_id, created, firm=body.firm_id, user=claims.sub))]
            if update:
                entries.append(
                    _initial(  # named as a REST write is: the audit's initial row
                        ctx.entry(
                            letter_id,
                            update,
                            firm=body.firm_id,
                            user=claims.sub,
                            type="doc.update",
                            name=claims.name,
                        )
                    )
                )
            # Landing after a 504, this instance knows it at once.
            await append_confirmed(
                ctx.log, topic, letter_id.encode(), entries, timeout_s,
                lambda _: gateway.access.remember(meta),
                ticket.release_later if ticket else None, metrics=ctx.metrics,
            )  # fmt: skip
    except Unconfirmed as exc:
        raise HTTPException(504, UNCONFIRMED) from exc
    except LogError as exc:
        raise log_unavailable_error() from exc
    gateway.access.remember(meta)
    return out


def _initial(entry: Entry) -> Entry:
    """A record of a creation, marked so (INITIAL_HEADER): the snapshotter takes the update so
    marked for the letter's content, and no update of a letter so created for it."""
    return Entry(entry.value, [*entry.headers, (INITIAL_HEADER, INITIAL_VALUE)])


async def _built(ctx: Context, claims: Claims, content: str, least: int) -> bytes:
    """The content's update (b"" for none). The build costs ~12 us a line whatever becomes of
    it, so `least` (what the update takes at least) is charged to the user's update bytes
    before it, the rest once built (admitted: into debt if need be); a large one is built in
    the builder's thread, the loop serving the others meanwhile. 413 past the letter's size,
    429 over the budget."""
    if not content:
        return b""
    charge_update_bytes(ctx, claims, least)
    if least > _BUILD_INLINE_BYTES:
        # Within the append's time, as a keyed create's pending claim lapses after it plus its
        # slack: queued behind others' builds for longer, a retry would make a second letter.
        building = asyncio.get_running_loop().run_in_executor(
            _BUILDER, initial_update, content, ctx.settings.doc_field
        )
        try:
            update = await asyncio.wait_for(building, ctx.settings.append_timeout_s)
        except TimeoutError:
            raise HTTPException(503, BUILDING, retry_after(BUILD_RETRY_S)) from None
    else:
        update = initial_update(content, ctx.settings.doc_field)
    if len(update) > ctx.settings.max_document_bytes:
        _too_large(ctx)
    if len(update) > least:  # the rest, into debt if need be: the request was admitted
        with ctx.update_bytes.held(user_key(claims)) as budget:
            budget.reserve(len(update) - least)
    return update


def _too_large(ctx: Context) -> NoReturn:
    ctx.metrics.refuse("document_too_large")
    raise HTTPException(413, "content exceeds the letter size limit")


class LetterListOut(BaseModel):
    letters: list[LetterCreatedOut]


LIST_PAGE, LIST_PAGE_MAX = 100, 1000  # letters a list page holds by default, at most


@router.get(
    "/v1/letters",
    responses={
        200: {
            "description": "a page of the firm's letters, newest first",
            "headers": pages.NEXT_PAGE_HEADERS,
        },
        **errors(*AUTHENTICATED, 503),  # 422: a bad limit, or a malformed cursor
    },
)
async def list_letters(
    request: Request,
    response: Response,
    gateway: GatewayDep,
    claims: ClaimsDep,
    limit: int = Query(LIST_PAGE, ge=1, le=LIST_PAGE_MAX),
    after: Annotated[str | None, Query(description="X-Next-Cursor of the page before")] = None,
) -> LetterListOut:
    """The caller's firm's letters, newest first, in pages named as history's are (a service
    token has no firm to list)."""
    try:
        cursor = None if after is None else listing.Cursor.decode(after)
    except listing.BadCursor as exc:
        raise HTTPException(422, f"invalid request: query.after: {exc}") from exc
    try:
        found, following = await gateway.access.list_firm(claims.firm_id, limit, cursor)
    except asyncpg.UndefinedTableError:  # a lost database made again, empty
        raise HTTPException(
            503,
            "letter list unavailable: PostgreSQL lacks the snapshotter's tables: if it was"
            " never migrated, run `steno-collab migrate`, and the snapshotter rebuilds them from"
            " the log; a table dropped from a migrated one is not made again by it: rebuild the"
            " database from the log (`steno-collab verify` names how)",
            {"Retry-After": "30"},
        ) from None
    except (OSError, asyncpg.PostgresError) as exc:  # PostgreSQL down or not migrated yet
        raise HTTPException(503, f"letter list unavailable: {exc.__class__.__name__}") from None
    if following is not None:
        response.headers.update(pages.next_page(request.url, following.encode(), limit))
    return LetterListOut(
        letters=[
            LetterCreatedOut(letter_id=m.letter_id, firm_id=m.firm_id, title=m.title) for m in found
        ]
    )


async def reachable(gateway: Gateway, claims: Claims, letter_id: str) -> LetterMeta:
    """The letter, if the caller may reach it; else 403 (unknown letters alike)."""
    meta = await gateway.access.lookup(letter_id)
    if meta is None or not gateway.may_reach(claims, meta):
        gateway.ctx.metrics.refuse("forbidden")
        raise HTTPException(403, "forbidden")
    return meta


@router.get("/v1/letters/{letter_id}", responses=errors(*AUTHENTICATED, 503))
async def read_letter(letter_id: str, gateway: GatewayDep, claims: ClaimsDep) -> LetterOut:
    meta = await reachable(gateway, claims, letter_id)
    text = plain_text(await gateway.document(letter_id), gateway.ctx.settings.doc_field)
    return LetterOut(letter_id=letter_id, firm_id=meta.firm_id, title=meta.title, content=text)
