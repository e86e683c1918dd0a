"""REST: save a named version of a letter.

    POST /v1/letters/{id}/versions  {"label": "..."}

Appends `version.saved` to the letter's partition; the snapshotter writes it as a `named`
letter_version holding the letter up to that record (snapshotter/versions.py), so the answer
(202) comes once the event is in the log, before the version is in PostgreSQL. It is appended
only once every edit this instance accepted for the letter before the request is in the log
(its room's queue, and what a failed append left to the letter's rescue), waiting up to
`append_timeout_s` for them; else 503 `log behind` with Retry-After, nothing appended.
"""

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field, field_validator

from eventlog.errors import LogError
from gateway.api.names import ONE_LINE, problem
from gateway.api.responses import AUTHENTICATED, errors, log_unavailable_error, retry_after
from gateway.api.rest import ClaimsDep, GatewayDep, reachable
from gateway.live.confirmed import UNCONFIRMED, Unconfirmed, append_confirmed
from schemas.events import Topic, VersionSaved

router = APIRouter()

MAX_LABEL = 200  # characters, as the event schema allows


class SaveVersion(BaseModel):
    # The pattern is checked below, to answer with a message rather than the pattern itself.
    label: str = Field(min_length=1, max_length=MAX_LABEL, json_schema_extra={"pattern": ONE_LINE})

    @field_validator("label")
    @classmethod
    def _one_line(cls, label: str) -> str:
        why = problem(label)
        if why is not None:
            raise ValueError(why)
        return label


class VersionSavedOut(BaseModel):
    letter_id: str
    label: str
    offset: int  # of the `version.saved` record: the version holds the letter's records up to it


@router.post(
    "/v1/letters/{letter_id}/versions",
    status_code=202,
    responses=errors(*AUTHENTICATED, 400, 413, 503, 504),  # 400, 413: a body not JSON, too large
)
async def save_version(
    letter_id: str, body: SaveVersion, gateway: GatewayDep, claims: ClaimsDep
) -> VersionSavedOut:
    """Save the letter as it is now under `label` (an editor of its firm, or a service);
    answered once the request is in the log, after the edits this instance accepted before it.
    503 with Retry-After while the log is behind or those edits are not in it yet, 503 when it
    refused the request; 504 when it did not confirm it in time: the version may
    still be saved, so a client looks (GET .../versions) before it saves again."""
    meta = await reachable(gateway, claims, letter_id)
    ctx = gateway.ctx
    if not claims.can_edit:
        ctx.metrics.refuse("read_only")
        raise HTTPException(403, f"role {claims.role} cannot save versions")
    if ctx.intake.full:  # what waits for the log would hold this request up (and the flush)
        ctx.metrics.refuse("log_behind")
        raise HTTPException(503, "log behind", retry_after(1.0))
    # The version holds the edits this instance accepted before it, those a failed append
    # left to the letter's rescue too: cut before them, it would miss what the user saw.
    if not await gateway.rooms.logged(letter_id, ctx.settings.append_timeout_s):
        ctx.metrics.refuse("log_behind")
        raise HTTPException(503, "log behind", retry_after(1.0))
    label = body.label
    entry = ctx.entry(letter_id, VersionSaved(label=label), firm=meta.firm_id, user=claims.sub)
    topic, timeout_s = ctx.settings.topic(Topic.LETTERS), ctx.settings.append_timeout_s
    try:
        offsets = await append_confirmed(
            ctx.log, topic, letter_id.encode(), [entry], timeout_s, metrics=ctx.metrics
        )
    except Unconfirmed as exc:  # GET .../versions tells whether it was saved
        raise HTTPException(504, UNCONFIRMED) from exc
    except LogError as exc:
        raise log_unavailable_error() from exc
    return VersionSavedOut(letter_id=letter_id, label=label, offset=offsets[-1])
