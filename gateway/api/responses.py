"""The one error body every REST route answers with, `{"detail": "<message>"}`, and its place
in the OpenAPI document (`errors(...)` per route), so that generated clients know every answer.

Errors are written as ASCII JSON. A request body may hold a lone surrogate ("\\ud800" is valid
JSON, but not Unicode), and errors repeat what they refuse: Starlette's JSONResponse writes
UTF-8, which cannot encode it, so the refusal itself failed with a 500.
"""

import json
import math
from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.routing import Match


class ErrorOut(BaseModel):
    model_config = ConfigDict(extra="allow")  # some add what the client needs (a lock's holder)
    detail: str


WHY = {
    400: "a parameter that names nothing valid (an instant, a range), or a path not UTF-8",
    401: "no token, or one that is malformed, badly signed or expired",
    403: "not the caller's role, or a letter of another firm or none at all (no existence leak)",
    404: "no such comment, thread or version",
    409: "in conflict with the current state (a letter full of comments, a lock held by another)",
    413: "the request body (max_request_bytes) or a comment body is too large",
    422: "invalid request (a field missing or wrong, a body that is not JSON): which, and why",
    431: "the request line and headers above 64 KiB (a long query parameter)",
    429: "over the caller's request budget; `Retry-After` says when to come back",
    503: "the log, Redis or PostgreSQL is not available, or refused a write: nothing was done",
    504: "the log did not confirm the write in time: it may still take effect; check first",
}


# When to come back (whole seconds): always on a 429, on a 503 when the wait is known.
_RETRY_AFTER = {
    429: {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}},
    503: {
        "Retry-After": {"description": "seconds to wait, when known", "schema": {"type": "string"}},
        # gateway/restored.py: what a client acts on, rather than the detail's operator text.
        "Steno-Unavailable": {
            "description": "`restoring` when Redis lost its section locks and create claims and"
            " the gateways are restoring them from the log (come back after `Retry-After`);"
            " absent on other 503s",
            "schema": {"type": "string", "enum": ["restoring"]},
        },
    },
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route that may answer with these errors."""
    return {
        code: {"model": ErrorOut, "description": WHY[code]}
        | ({"headers": _RETRY_AFTER[code]} if code in _RETRY_AFTER else {})
        for code in codes
    }


def json_error(code: int) -> dict[str, Any]:
    """The `responses` entry of an error on a route whose own answer is not JSON (FastAPI puts a
    `model` under the route's media type): the error body is JSON all the same."""
    schema = ErrorOut.model_json_schema()
    return {"description": WHY[code], "content": {"application/json": {"schema": schema}}}


AUTHENTICATED = (401, 403, 422, 429)  # every route behind a token (422: its parameters)


class ErrorResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode()


def retry_after(wait_s: float) -> dict[str, str]:
    """When to come back: whole seconds, at least one."""
    return {"Retry-After": str(max(1, math.ceil(wait_s)))}


def too_many_requests(wait_s: float) -> HTTPException:
    return HTTPException(429, "too many requests", retry_after(wait_s))


LOG_RETRY_S = 1.0  # a 503 of the log (down, or behind): when to come back
LOG_UNAVAILABLE = "log unavailable"


def log_unavailable_error(detail: str = LOG_UNAVAILABLE) -> HTTPException:
    """503 for a route that needed the log: come back in LOG_RETRY_S. Mostly nothing was
    written; a REST update taken but not confirmed in time may land still (`Unlogged`: the
    instance's rescue appends it), which a retry repeats harmlessly."""
    return HTTPException(503, detail, retry_after(LOG_RETRY_S))


async def log_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Any route that needed the log while it could not be reached (finding or loading a
    letter, appending): 503, as documented, rather than a 500."""
    return ErrorResponse(
        {"detail": LOG_UNAVAILABLE}, status_code=503, headers=retry_after(LOG_RETRY_S)
    )


REDIS_RETRY_S = 5
REDIS_UNAVAILABLE = "redis unavailable"


def redis_unavailable_error() -> HTTPException:
    """503 for a route that needed Redis while it could not be reached, as `redis_unavailable`
    answers one that raised."""
    return HTTPException(503, REDIS_UNAVAILABLE, retry_after(REDIS_RETRY_S))


async def redis_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Any route that needed Redis (presence, comments, locks, notifications) while it could
    not be reached: 503 with `Retry-After` (it comes back), rather than a 500 with a traceback
    in the log. Without Redis configured those routes answer 503 with none: waiting won't help."""
    return ErrorResponse(
        {"detail": REDIS_UNAVAILABLE}, status_code=503, headers=retry_after(REDIS_RETRY_S)
    )


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


async def method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    """405 with every method the path has in `Allow`: Starlette names only those of the first
    route whose path matched (PUT /v1/letters said `Allow: POST`, and GET is there too)."""
    routes = request.app.router.routes  # asked as the router asks them, method by method
    allowed = [
        method
        for method in METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL
               for route in routes)
    ]  # fmt: skip
    headers = {"Allow": ", ".join(allowed)} if allowed else None
    return ErrorResponse({"detail": "Method Not Allowed"}, status_code=405, headers=headers)


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's validation errors in the same shape as every other error: the first one."""
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return ErrorResponse({"detail": f"invalid request: {where}: {first['msg']}"}, status_code=422)
