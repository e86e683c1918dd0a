"""The y-websocket endpoint `/v1/{room}`: handshake checks, then one Connection in one Room.

Refusals before accept are HTTP responses (ASGI websocket denial): 401 for tokens, 403 for
letters of other firms or unknown letters alike, 403 for a foreign Origin (CSWSH), 429 over a
connection limit or the user's handshake budget (with Retry-After), 503 while draining or
while the log cannot be read (gateway/api/admission.py).
"""

from fastapi import APIRouter, WebSocket
from starlette.responses import PlainTextResponse

from gateway.api.admission import Denied, admit
from gateway.api.responses import retry_after
from gateway.service import Gateway

router = APIRouter()


async def deny(ws: WebSocket, gateway: Gateway, denied: Denied) -> None:
    gateway.ctx.metrics.refuse(denied.reason)
    headers = retry_after(denied.retry_after_s) if denied.retry_after_s else None
    response = PlainTextResponse(denied.reason, status_code=denied.status, headers=headers)
    await ws.send_denial_response(response)


def origin_allowed(ws: WebSocket, gateway: Gateway) -> bool:
    allowed = gateway.ctx.settings.allowed_origins
    return not allowed or ws.headers.get("origin") in allowed


@router.websocket("/v1/{room}")
async def collaborate(ws: WebSocket, room: str) -> None:
    gateway: Gateway = ws.app.state.gateway
    if gateway.draining:
        return await deny(ws, gateway, Denied(503, "draining"))
    if not origin_allowed(ws, gateway):
        return await deny(ws, gateway, Denied(403, "origin_not_allowed"))
    params = ws.query_params
    host = ws.client.host if ws.client else None
    admitted = await admit(gateway, params.get("token"), room, params.get("letterId"), host)
    if isinstance(admitted, Denied):
        return await deny(ws, gateway, admitted)
    claims, meta = admitted.claims, admitted.meta
    try:
        await gateway.serve(ws, claims, meta, events=params.get("events") == "1")
    finally:
        gateway.rooms.release(claims, meta.letter_id)
