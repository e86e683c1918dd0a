"""`Idempotency-Key` on `POST /v1/letters`: a create retried (after a 504, a dropped connection)
makes one letter, as with Stripe's API.

The key, scoped to the caller (firm and user: user ids are unique only within a firm), is
claimed in Redis by one script, with the request's hash and the id of the letter the claimer
will create (`schemas.keys.idempotency_key`, for `idempotency_ttl_s`). Only the claimer
appends: two requests with one key never both write (an earlier attempt derived the letter id
from the key, and two concurrent bodies merged into one letter nobody wrote). The claim then
follows the create:
- logged: `done`; the same request again answers the same 201, with `Idempotent-Replayed`;
- refused by the log, or stopped before the append (413, 429): released, nothing was written;
- not confirmed in time (504) or cut off mid-append: `unconfirmed`, its letter id kept; the
  same request again answers 201 once that letter is known (gateway.access), else 409; released
  if the append ends refused by the log after all.
While the first is in flight a repeat gets 409 with Retry-After; the key with another request
422. Without Redis the guarantee cannot be given: 503, nothing appended.

A claim is `pending` for at most `append_timeout_s` + `PENDING_SLACK_S` (its TTL until it is
settled): its claimer answers within the append timeout, so one pending longer lost its claimer
(a crash mid-create), or was never answered to anyone (the claim reached Redis after the claimer
gave up on it with a 503); the key is free again once it lapses, where it would otherwise answer
409 for `idempotency_ttl_s`. A settling that Redis fails is tried again each second while the
claim lasts: lapsed after its letter was created, the key would let a repeat make a second one
(so a Redis outage longer than that, right after a create, can still).

A Redis that lost its claims (FLUSHALL, a restore without them) gets the settled ones back from
the log: `letter.created` carries the claim's scoped hash (sha256 of its key: the caller's key
stays out of the log) and the request's hash, and `backfill locks` writes each claim whose record
time + `idempotency_ttl_s` is still ahead as `done` under `idempotency:<scoped hash>` (RESTORE,
never over an existing key). A claim is looked for under its own key, then under that one: the
restore never touches a key a gateway claims, so it cannot race a pending claim (one made after
the loss shadows the restored one, and answers as it settles). Until the restore runs, a repeat
would make a second letter: so while Redis lacks the restored marker (`schemas.keys.RESTORED`,
set by that restore; a wipe removes it, a restart from an older snapshot makes it name another
Redis process: as missing) a keyed create answers 503 with Retry-After, unless the
log holds no record yet (a fresh deployment: nothing to restore, the marker is set then:
gateway/restored.py). Creates without a key need no claim and go through.

`POST /v1/letters/{id}/updates` takes the header with the same meaning (`begin_update`), in the
same key space (a key used for a create and then for an update is 422): a Yjs update retried
to another gateway while the first waits for the log is not logged twice (the room's trim,
`Room.new_part`, only sees what its own instance has folded). The claim holds the hash of the
letter id and the body (sha256) and that letter's id, which with the body's size is the whole
answer. Logged (or nothing to log): `done`, the same request again answers 200 with
`Idempotent-Replayed`; refused before the room took it: released; taken by the room but not
confirmed in the log (503 after the wait, a request cancelled mid-wait): left pending, so a
repeat answers 409 until it lapses (the instance's rescue appends it meanwhile:
gateway/live/rescue.py) and then goes through, trimmed to nothing if the letter has it. Its
pending claim lasts the write's own bound, twice the append timeout, plus the slack. These
claims are not in the log and a Redis that loses them does not get them back (no marker gate):
a repeat then goes through, and is logged again only if the letter still lacks it there. A
repeated Yjs update changes no document (a CRDT), only the record would be doubled.

A new comment thread and a reply take it too (`begin_unlogged` with a `Gate`, same key
space), their claim holding the ids the server made for the comment (`Claim.answer`), which a
repeat answers; one not confirmed in time is `unconfirmed` as a create's, and a repeat looks
for its comment, else writes it anew (`Ticket.retake`): gateway/collab/idempotent_comments.py.
Their events carry the claim as `letter.created` does, and the same restore writes it back
(with the comment's ids), behind the same marker gate.
"""

import asyncio
import hashlib
import json
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Annotated, Any

from fastapi import Header, HTTPException
from redis.exceptions import RedisError

from eventlog.errors import LogError
from eventlog.records import Log
from gateway import restored
from gateway.access import NEGATIVE_TTL_S, Access
from gateway.api.responses import (
    WHY,
    ErrorOut,
    log_unavailable_error,
    redis_unavailable_error,
    retry_after,
)
from gateway.auth import Claims
from gateway.redis_lua import NOW
from schemas.events import CreateKey
from schemas.ids import uuid7
from schemas.keys import RESTORED, idempotency_key, restored_idempotency_key

log = logging.getLogger(__name__)
HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
VALID = re.compile(r"[!-~]{1,255}")  # visible ASCII
INVALID = f"invalid {HEADER} header: 1 to 255 visible ASCII characters"
IN_PROGRESS = f"a request with this {HEADER} is still in progress"
REUSED = f"{HEADER} reused with a different request"
PENDING, UNCONFIRMED, DONE = "pending", "unconfirmed", "done"
PENDING_SLACK_S = 30.0  # a pending claim lapses this long after its claimer's append timeout
SETTLE_RETRY_S = 1.0  # a settling Redis failed is tried again this often while the claim lasts
_background: set["asyncio.Task[None]"] = set()  # late releases and settlings, kept alive

# KEYS: claim, its restored twin; ARGV: value, ttl_s. The claim held already (its own, else one
# restored from the log), or nil once this one is set. An update's (no marker: not restored).
CLAIM_UPDATE = """
local held = redis.call('GET', KEYS[1]) or redis.call('GET', KEYS[2])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
"""
# A create's: CLAIM_UPDATE once the marker (KEYS[3]) names this Redis process, else 0 (Redis
# lost its claims, or came back from an older snapshot: gateway/restored.py).
CLAIM = restored.MARKED + "\nif not marked(KEYS[3]) then return 0 end\n" + CLAIM_UPDATE
# KEYS: claim; ARGV: the value it must still hold, its new value ('' deletes it), ttl_s.
SWAP = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1])
else redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end
return 1
"""
# KEYS: claim; ARGV: the value it must hold, ttl_s. A pending claim still its request's, its
# life renewed (or set again if it lapsed and nobody took it): 1; another request's: 0.
RENEW = """
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""
# A settled claim from the log (module docstring). KEYS: restored claim; ARGV: value, deadline
# (ms: record time + ttl). What is left of its TTL (ms) once set; 0: there already; -1: lapsed.
RESTORE = (
    NOW
    + """
local left = tonumber(ARGV[2]) - now_ms()
if left <= 0 then return -1 end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', left) then return 0 end
return left
"""
)

KEY_SCHEMA = {"minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"}
KeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        description="Makes a retried create safe: the same request with the same key (per user,"
        " for `STENO_IDEMPOTENCY_TTL_S`) answers the first one's letter, never a second.",
        json_schema_extra=KEY_SCHEMA,
    ),
]
UpdateKeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        description="Makes a retried update safe: the same update to the same letter with the"
        " same key (per user, for `STENO_IDEMPOTENCY_TTL_S`), on any instance, is logged once.",
        json_schema_extra=KEY_SCHEMA,
    ),
]


def responses(success: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI: what a keyed request adds to a route answering `success`."""
    return {
        success: {
            "headers": {
                REPLAYED: {
                    "description": f"`true`: the answer of an earlier request with this {HEADER}",
                    "schema": {"type": "string", "enum": ["true"]},
                }
            }
        },
        400: {"model": ErrorOut, "description": f"{WHY[400]}; or a malformed {HEADER}"},
        409: {
            "model": ErrorOut,
            "description": f"a request with this {HEADER} is still in progress (or its outcome"
            " is not known yet): come back after `Retry-After`",
            "headers": {"Retry-After": {"schema": {"type": "string"}}},
        },
        422: {"model": ErrorOut, "description": f"{WHY[422]}; or {REUSED}"},
    }


RESPONSES = responses(201)


@dataclass(frozen=True, slots=True)
class Claim:
    request: str  # the request's hash
    letter_id: str
    state: str
    # A new comment's answer, the ids the server made for it (gateway/collab/idempotent_comments.py)
    answer: dict[str, str] | None = None
    # A comment's: the answers of its earlier attempts left unconfirmed (504s), any of which may
    # land yet; when it was settled unconfirmed (ms since the epoch, the settling gateway's clock)
    tried: list[dict[str, str]] | None = None
    settled_ms: int | None = None

    def encode(self) -> bytes:
        # Without the fields a claim does not use, as before they existed: a create's claim is
        # read by gateways that do not know them.
        fields = {k: v for k, v in asdict(self).items() if v is not None}
        return json.dumps(fields, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, held: bytes) -> "Claim":
        """A claim as Redis holds it; fields a later gateway added are left out."""
        return cls(**{k: v for k, v in json.loads(held).items() if k in _CLAIM_FIELDS})


_CLAIM_FIELDS = frozenset(f.name for f in fields(Claim))


@dataclass(slots=True)
class Ticket:
    """A claim this request holds: the letter it creates, and the claim to settle by how the
    create ends (`claim`: as Redis holds it, for the compare-and-swap)."""

    redis: Any
    key: str
    claim: Claim
    ttl_s: int
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def letter_id(self) -> str:
        return self.claim.letter_id

    def logged(self) -> CreateKey:
        """What `letter.created` carries of the claim, for a restore."""
        return CreateKey(key=scoped_hash(self.key), request=self.claim.request)

    async def settle(self, state: str) -> None:
        """Settle the claim as `state` (`put`)."""
        await self.put(replace(self.claim, state=state))

    async def put(self, settled: Claim) -> None:
        """The claim replaced by `settled` if it is still the one this request holds; if Redis
        fails, again in the background while the pending claim lasts: lapsed, it would let a
        repeat of a created letter make another."""
        swapped = await self._swap(settled.encode())
        if swapped is None:
            _run_in_background(self._settle_later(settled))
        elif swapped:
            self.claim = settled

    async def _settle_later(self, settled: Claim) -> None:
        deadline = time.monotonic() + PENDING_SLACK_S
        while time.monotonic() < deadline:
            await asyncio.sleep(SETTLE_RETRY_S)
            swapped = await self._swap(settled.encode())
            if swapped is not None:
                if swapped:
                    self.claim = settled
                return
        log.error(
            "idempotency claim %s could not be settled (Redis unreachable): it lapses, and a"
            " repeat of its request may create a second letter",
            self.key,
        )

    async def release(self) -> None:
        await self._swap(b"")

    async def renew(self, ttl_s: int) -> bool:
        """Whether the pending claim is still this request's, its life renewed: a request slower
        than it (a letter rebuilt for its checks) must not write once a repeat took the lapsed
        key and wrote too. Redis failing: RedisError."""
        async with self._lock:
            kept = await self.redis.eval(RENEW, 1, self.key, self.claim.encode(), ttl_s)
        return bool(kept)

    async def retake(self, mine: Claim, pending_ttl_s: int) -> bool:
        """A comment's claim left `unconfirmed`, its comment not stored: taken as `mine`, pending,
        by a repeat that writes the comment anew (gateway/collab/idempotent_comments.py); whether
        it was, no other repeat having taken it first. Redis failing: RedisError."""
        async with self._lock:
            done = await self.redis.eval(
                SWAP, 1, self.key, self.claim.encode(), mine.encode(), pending_ttl_s
            )
        if done:
            self.claim = mine
        return bool(done)

    def release_later(self, refused: BaseException) -> None:
        """The append of a 504 ended refused by the log after all: nothing was written, the
        key is free again (after the claim's settling, which the lock orders)."""
        log.info(
            "idempotency claim %s released: its late append was refused: %r", self.key, refused
        )
        _run_in_background(self.release())

    async def _swap(self, value: bytes) -> bool | None:
        """Compare-and-swap the claim: whether it still held `claim`, None if Redis failed."""
        async with self._lock:
            try:
                done = await self.redis.eval(
                    SWAP, 1, self.key, self.claim.encode(), value, self.ttl_s
                )
            except RedisError as exc:
                log.warning("idempotency claim %s was not settled: %r", self.key, exc)
                return None
        return bool(done)


def _run_in_background(work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(work)
    _background.add(task)
    task.add_done_callback(_background.discard)


def scoped_hash(key: str) -> str:
    """sha256 of a claim's Redis key (the caller's firm, user and key): the key is not read back
    from it, though a guessable one ("order-7") can be found by trying, as with any hash."""
    return hashlib.sha256(key.encode()).hexdigest()


async def restore(
    redis: Any,
    logged: CreateKey,
    letter_id: str,
    deadline_ms: int,
    answer: dict[str, str] | None = None,
) -> int:
    """Write a logged claim back, settled (a comment's with its `answer`), unless its key
    exists: RESTORE's answer."""
    value = Claim(logged.request, letter_id, DONE, answer).encode()
    key = restored_idempotency_key(logged.key)
    return int(await redis.eval(RESTORE, 1, key, value, deadline_ms))


def update_digest(letter_id: str, update: bytes) -> str:
    """sha256 of an update request: its letter's id and its body (a create's is JSON: none
    collides with it)."""
    return hashlib.sha256(b"%s\n%s" % (letter_id.encode(), update)).hexdigest()


def digest(claims: Claims, body: dict[str, Any]) -> str:
    """sha256 of the parsed body and the caller's firm as canonical JSON: the same request
    however its JSON was spelled (key order, spaces, a default written out)."""
    request = {"firm": claims.firm_id, "body": body}
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def begin(
    access: Access,
    redis: Any,
    claims: Claims,
    header: str,
    body: dict[str, Any],
    ttl_s: int,
    append_timeout_s: float,
    log_: Log,
    topic: str,
    wake: Callable[[], None],
) -> Ticket | str:
    """Claim `header` for this request: a Ticket (create the letter it names), or the id of the
    letter the same request made before (answer it again); else 400, 409, 422 or 503 (also
    while Redis lacks the claims the log holds: `log_`'s `topic` tells a fresh deployment, and
    `wake` starts their restore: gateway/restored.py `gated`)."""
    key = _key(redis, claims, header)
    mine = Claim(digest(claims, body), uuid7(), PENDING)
    held = await _claim(redis, key, mine, pending_ttl_s(append_timeout_s), Gate(log_, topic, wake))
    found = _found(held, mine)
    if found is None:
        return Ticket(redis, key, mine, ttl_s)
    if found.state == DONE:
        return found.letter_id
    unconfirmed = found.state == UNCONFIRMED
    try:
        landed = unconfirmed and await access.lookup(found.letter_id) is not None
    except LogError:  # a stalled log: the first may land still, as for a letter not found yet
        landed = False
    if landed:
        await Ticket(redis, key, found, ttl_s).settle(DONE)
        return found.letter_id
    # A miss is remembered NEGATIVE_TTL_S: sooner, the letter would not be found anyway.
    raise HTTPException(409, IN_PROGRESS, retry_after(NEGATIVE_TTL_S if unconfirmed else 1))


async def begin_update(
    redis: Any, claims: Claims, header: str, letter_id: str, update: bytes, ttl_s: int,
    answer_within_s: float,
) -> Ticket | None:  # fmt: skip
    """Claim `header` for this update of `letter_id`: a Ticket (write it, settle by how that
    ends: `settling(ticket, unknown=None)`), or None: the same request was logged before (answer
    it again). Else 400, 409 (in flight), 422 (the key with another request) or 503 (no
    Redis). `answer_within_s`: how long the write takes at most (its pending claim's life)."""
    mine = Claim(update_digest(letter_id, update), letter_id, PENDING)
    claimed = await begin_unlogged(redis, claims, header, mine, ttl_s, answer_within_s)
    return claimed if isinstance(claimed, Ticket) else None


async def begin_unlogged(
    redis: Any, claims: Claims, header: str, mine: Claim, ttl_s: int, answer_within_s: float,
    unsettled: bool = False, gate: "Gate | None" = None,
) -> Ticket | Claim:  # fmt: skip
    """Claim `header` for `mine`, a request whose claim a create's claim checks do not cover: a
    Ticket, or the claim the same request settled `done` before (answer it again). Else 400,
    409 (in flight), 422 (the key with another request) or 503 (no Redis). `unsettled`: a claim
    of the same request still pending or unconfirmed is a Ticket holding it too, not 409 (a
    comment's: its caller looks for the comment it made). `gate`: the log keeps the claim (a
    comment's), so a Redis that lost it answers 503 until the restore, as for a create; without
    it (an update's, not restored) no marker is looked at."""
    key = _key(redis, claims, header)
    held = await _claim(redis, key, mine, pending_ttl_s(answer_within_s), gate)
    found = _found(held, mine)
    if found is None:
        return Ticket(redis, key, mine, ttl_s)
    if found.state == DONE:
        return found
    if unsettled:
        return Ticket(redis, key, found, ttl_s)
    raise HTTPException(409, IN_PROGRESS, retry_after(1))


@dataclass(frozen=True, slots=True)
class Gate:
    """Where a claim the log keeps is restored from after a wipe (`restored.gated`): the log,
    its letters topic, and the gateway's `Context.wake_restore`."""

    log: Log
    topic: str
    wake: Callable[[], None]


async def _claim(redis: Any, key: str, mine: Claim, ttl_s: int, gate: Gate | None) -> Any:
    """CLAIM (with `gate`) or CLAIM_UPDATE's answer for `mine` at `key`; 503 if Redis or the
    log fails, or while Redis lacks the claims the log holds (`gate`)."""
    keys = (key, restored_idempotency_key(scoped_hash(key)))
    try:
        if gate is None:
            return await redis.eval(CLAIM_UPDATE, len(keys), *keys, mine.encode(), ttl_s)
        marked = (*keys, RESTORED)
        return await restored.gated(
            redis, gate.log, gate.topic, CLAIM, marked, mine.encode(), ttl_s, wake=gate.wake
        )
    except RedisError as exc:
        raise redis_unavailable_error() from exc
    except LogError as exc:
        raise log_unavailable_error() from exc
    except restored.Unrestored:
        raise HTTPException(503, restored.UNRESTORED, restored.refusal_headers()) from None


def _key(redis: Any, claims: Claims, header: str) -> str:
    """The claim's Redis key for `header`, checked: 400 if malformed, 503 without Redis."""
    if not VALID.fullmatch(header):
        raise HTTPException(400, INVALID)
    if redis is None:
        raise HTTPException(503, f"{HEADER} needs Redis, which this gateway runs without")
    return idempotency_key(claims.firm_id, claims.sub, header)


def pending_ttl_s(answer_within_s: float) -> int:
    return math.ceil(answer_within_s + PENDING_SLACK_S)


def _found(held: bytes | None, mine: Claim) -> Claim | None:
    """The claim another request holds (None: `mine` is set); 422 if it is another request's."""
    if held is None:
        return None
    found = Claim.decode(held)
    if found.request != mine.request:
        raise HTTPException(422, REUSED)
    return found


@asynccontextmanager
async def settling(ticket: Ticket | None, unknown: str | None = UNCONFIRMED) -> AsyncIterator[None]:
    """Settle `ticket`'s claim by how the write inside ends (no ticket: nothing to do). An
    outcome not known (504, cancelled mid-append, unforeseen) settles as `unknown`: a create's
    UNCONFIRMED (a repeat looks for its letter); None leaves the claim pending until it lapses
    (an update: a repeat then goes through, trimmed to nothing if the letter has it)."""
    if ticket is None:
        yield
        return
    try:
        yield
    except (LogError, HTTPException):  # the log refused it, or it stopped before the append
        await ticket.release()
        raise
    except BaseException:  # the write may land
        if unknown is not None:
            await ticket.settle(unknown)
        raise
    await ticket.settle(DONE)
