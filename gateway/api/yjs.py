"""REST for backends that speak Yjs: a letter's state as a Yjs update, and Yjs updates written
as the caller, live editors seeing them at once (gateway/live/writes.py).

    GET  /v1/letters/{id}/state[?state_vector=<base64url>]  -> application/octet-stream
    POST /v1/letters/{id}/updates  (application/octet-stream: one Yjs update, v1)
                                   [Idempotency-Key: a retry on any instance logs it once]

A backend that drafts a paragraph applies it to its own Y.Doc loaded from `state`, and posts
`Y.encodeStateAsUpdate(doc, stateVectorBefore)`, or any update its Y.Doc emitted. `state`
carries what the letter's document holds pending (an update logged before the one it builds
on), as a sync step 2 does (gateway/live/room.py): the backend's Y.Doc holds it pending too, and
integrates it when the missing update arrives, instead of lacking it for good.
"""

import base64
import binascii

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel

from gateway import inbound, outgoing
from gateway.access import LetterMeta
from gateway.api import idempotency
from gateway.api.responses import AUTHENTICATED, errors, log_unavailable_error, retry_after
from gateway.api.rest import ClaimsDep, GatewayDep, reachable
from gateway.auth import Claims
from gateway.errors import FORBIDDEN, LOG_UNAVAILABLE, MALFORMED, TOO_LARGE, Refused
from gateway.live.writes import OverBudget, Unlogged, write_wait_s
from gateway.service import Gateway

router = APIRouter()
BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
# Close codes of a refused update (gateway/errors.py) as HTTP statuses.
STATUS = {MALFORMED: 422, FORBIDDEN: 403, TOO_LARGE: 413}


class UpdateOut(BaseModel):
    letter_id: str
    bytes: int  # of the update, now in the log


@router.get(
    "/v1/letters/{letter_id}/state",
    response_class=Response,
    responses={**errors(*AUTHENTICATED, 431, 503), 200: {"content": BINARY, "description": "Yjs"}},
)
async def read_state(
    letter_id: str,
    gateway: GatewayDep,
    claims: ClaimsDep,
    # 16 KiB of base64url keeps the request line under the 64 KiB head limit (431 above it,
    # gateway/api/waiting.py): the vector of a letter written under ~1,000 Yjs client ids.
    # Beyond, ask for the whole state.
    state_vector: str | None = Query(
        None,
        max_length=16 << 10,
        pattern=r"^[A-Za-z0-9_-]*={0,2}$",
        description="base64url, padded or not",
    ),
) -> Response:
    """The letter's document as one Yjs update, or only what a Y.Doc at `state_vector`
    (`Y.encodeStateVector`, base64url) lacks."""
    await reachable(gateway, claims, letter_id)
    vector = b""
    if state_vector is not None:
        try:
            bare = state_vector.rstrip("=")  # Python's and most encoders pad; JS's do not
            vector = base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
            inbound.decode(outgoing.sync_step1(vector), gateway.ctx.limits)  # checked, as a peer's
        except (binascii.Error, ValueError, Refused):
            raise HTTPException(422, "invalid request: state_vector") from None
    return Response(await gateway.state(letter_id, vector), media_type="application/octet-stream")


@router.post(
    "/v1/letters/{letter_id}/updates",
    responses={**errors(*AUTHENTICATED, 413, 503), **idempotency.responses(200)},
    openapi_extra={"requestBody": {"required": True, "content": BINARY}},
)
async def write_update(
    letter_id: str,
    request: Request,
    gateway: GatewayDep,
    claims: ClaimsDep,
    response: Response,
    idempotency_key: idempotency.UpdateKeyHeader = None,
) -> UpdateOut:
    """Apply one Yjs update to the letter as the caller (an editor of its firm, or a service);
    answered once it is in the log. Checked as an editor's update is: 422 for what is not a
    well-formed update of this letter, 413 above max_message_bytes or the document's cap, 403
    for a Yjs client id another user writes under, 429 over the caller's bytes budget. With an
    `Idempotency-Key`, the same request again, on any instance, is logged once
    (api/idempotency.py `begin_update`)."""
    meta = await reachable(gateway, claims, letter_id)
    update = await request.body()
    answer = UpdateOut(letter_id=letter_id, bytes=len(update))
    ctx, ticket = gateway.ctx, None
    if idempotency_key is not None:
        ticket = await idempotency.begin_update(
            ctx.redis, claims, idempotency_key, letter_id, update,
            ctx.settings.idempotency_ttl_s, write_wait_s(ctx.settings),
        )  # fmt: skip
        if ticket is None:  # logged by the same request before
            response.headers[idempotency.REPLAYED] = "true"
            return answer
    try:
        # Refused before the room took it: released; Unlogged: pending until it lapses.
        async with idempotency.settling(ticket, unknown=None):
            await _write(gateway, meta, claims, update)
    except Unlogged as exc:
        ctx.metrics.refuse(exc.reason)
        raise log_unavailable_error(exc.reason.replace("_", " ")) from None
    return answer


async def _write(gateway: Gateway, meta: LetterMeta, claims: Claims, update: bytes) -> None:
    """`gateway.write_update`, its refusals as HTTP statuses (but Unlogged: the caller's)."""
    try:
        await gateway.write_update(meta, claims, update)
    except Unlogged:
        raise
    except OverBudget as exc:
        gateway.ctx.metrics.refuse(exc.reason)
        raise HTTPException(429, exc.detail, retry_after(exc.wait_s)) from None
    except Refused as exc:
        gateway.ctx.metrics.refuse(exc.reason)
        detail = exc.reason.replace("_", " ")
        if exc.code == LOG_UNAVAILABLE:  # down or behind: come back
            raise log_unavailable_error(detail) from None
        raise HTTPException(STATUS.get(exc.code, 422), detail) from None
