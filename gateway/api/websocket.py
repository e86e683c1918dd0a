"""The y-websocket endpoint `/v1/{room}`: handshake checks, then one Connection in one Room.

Refusals before accept are HTTP responses (ASGI websocket denial): 401 for tokens, 403 for
letters of other firms or unknown letters alike, 403 for a foreign Origin (CSWSH), 429 over a
connection limit or the user's handshake budget (with Retry-After), 503 while draining or
while the log cannot be read.
"""

import logging

from fastapi import APIRouter, WebSocket
from starlette.responses import PlainTextResponse

from eventlog.errors import LogError
from gateway.api.responses import retry_after
from gateway.errors import AuthError
from gateway.service import Gateway

log = logging.getLogger(__name__)
router = APIRouter()


async def _deny(
    ws: WebSocket, gateway: Gateway, status: int, reason: str, retry_after_s: float = 0
) -> None:
    gateway.ctx.metrics.refuse(reason)
    headers = retry_after(retry_after_s) if retry_after_s else None
    await ws.send_denial_response(PlainTextResponse(reason, status_code=status, headers=headers))


def letter_id_of(room: str) -> str:
    return room.removeprefix("letter-")


@router.websocket("/v1/{room}")
async def collaborate(ws: WebSocket, room: str) -> None:
    gateway: Gateway = ws.app.state.gateway
    if gateway.draining:
        return await _deny(ws, gateway, 503, "draining")
    allowed = gateway.ctx.settings.allowed_origins
    if allowed and ws.headers.get("origin") not in allowed:
        return await _deny(ws, gateway, 403, "origin_not_allowed")
    try:
        claims = await gateway.ctx.verifier.verify(ws.query_params.get("token"))
    except AuthError as exc:
        log.info("handshake refused: %s", exc)
        return await _deny(ws, gateway, 401, "unauthorized")
    wait = gateway.ctx.budget(gateway.ctx.handshakes, claims)
    if wait is not None:  # each handshake logs two session events, kept forever
        return await _deny(ws, gateway, 429, "handshake_rate_limited", wait)
    letter_id = letter_id_of(room)
    if ws.query_params.get("letterId", letter_id) != letter_id:
        return await _deny(ws, gateway, 400, "letter_id_mismatch")
    try:
        meta = await gateway.access.lookup(letter_id)
    except LogError:  # an unknown letter is looked for in the log
        return await _deny(ws, gateway, 503, "log_unavailable")
    if meta is None or not gateway.may_reach(claims, meta):
        return await _deny(ws, gateway, 403, "forbidden")
    refused = gateway.rooms.admit(claims, letter_id)
    if refused is not None:
        return await _deny(ws, gateway, 429, refused)
    try:
        await gateway.serve(ws, claims, meta, events=ws.query_params.get("events") == "1")
    finally:
        gateway.rooms.release(claims, letter_id)
