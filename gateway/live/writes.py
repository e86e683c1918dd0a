"""Yjs updates written over REST (`POST /v1/letters/{id}/updates`): a backend's edit, a drafted
paragraph say, takes the way a WebSocket update takes. The pre-parser checks it against the
letter, the document's cap, the user's budgets of update bytes and of item splits' cost, and the
client-id ownership apply
(a backend may not write under an editor's Yjs client id), the room applies it and hands it to
the peers here at once (other instances hear it through the log), and the request is answered
once the update is in the log, as a sender's echo is. It is checked as a sync step 2 is (a
backend posts Y.encodeStateAsUpdate, which carries what its Y.Doc holds pending) and trimmed
as a WebSocket update is (`Room.new_part`): only what the letter lacks is logged, so a repeated
request is answered as the first was, with no new record.
"""

import asyncio
import time
from typing import Any

from gateway import inbound
from gateway.auth import Claims
from gateway.context import Context
from gateway.errors import FORBIDDEN, LOG_UNAVAILABLE, RATE_LIMITED, TOO_LARGE, Refused
from gateway.live.buckets import TokenBucket, user_key
from gateway.live.ownership import check_count, new_clients
from gateway.live.room import Room
from gateway.preparse import UpdateInfo
from schemas.ids import uuid7
from schemas.settings import Settings

EMPTY_UPDATE = b"\x00\x00"  # no structs, no deletions: the only update that is free


class OverBudget(Refused):
    """Over the user's budget of update bytes or of item splits' cost; `detail` says which."""

    def __init__(
        self,
        wait_s: float,
        reason: str = "update_bytes_rate_limited",
        detail: str = "update bytes over budget",
    ) -> None:
        super().__init__(RATE_LIMITED, reason)
        self.wait_s, self.detail = wait_s, detail


class Unlogged(Refused):
    """Taken by the room but not confirmed in the log in time (4503): it may land still (the
    instance's rescue appends it again: gateway/live/rescue.py), unlike any other refusal."""


class Writer:
    """The room's `Peer` for one request: not among its connections; its echo is the answer."""

    events = False
    hocuspocus_sync = False  # it sends updates only

    def __init__(self, claims: Claims) -> None:
        self.id, self.claims, self.joined_at = uuid7(), claims, time.monotonic()
        # Its doc.update records name it: a backend never joins, and the projector names the
        # paragraphs it writes in `recent:<id>` from this (else "Someone" on editors' pages).
        self.author = claims.name
        self.client_ids: set[int] = set()
        self.logged: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def send(self, data: bytes, kind: str, frame: bytes | None = None) -> None:
        pass  # nothing but the echo is sent to a writer

    def send_update(self, update: bytes, frame: bytes | None = None) -> None:
        pass  # a writer is not among the room's connections: nobody's updates reach it

    def acknowledge(self, update: bytes, frame: bytes | None = None) -> None:
        if not self.logged.done():
            self.logged.set_result(None)

    def close(self, code: int, reason: str) -> None:
        if not self.logged.done():
            self.logged.set_exception(Refused(code, reason))

    async def renew_with(self, token: str) -> str | None:
        return "no_session"  # a request lasts as long as its own token's check


async def write_update(ctx: Context, room: Room, claims: Claims, update: bytes) -> None:
    """Apply `update` to the (loaded) room as `claims`; return once it is in the log. Refused
    otherwise: 4400 / 4413 for what the pre-parser or pycrdt refuse, 4403 for a read-only
    role or another user's client id, OverBudget, 4503 when the log does not take it or is
    behind (more than `append_buffer_bytes` waiting: gateway/live/intake.py); Unlogged once the
    room took it. Refused before the room took it, it costs nothing: the budgets `admit_update`
    charged before the owners were known are given back."""
    if not claims.can_edit:
        raise Refused(FORBIDDEN, "read_only")
    if ctx.intake.full:  # the log is behind: senders here are not read now, nor is this
        raise Refused(LOG_UNAVAILABLE, "log_behind")
    info = _checked(ctx, room, update)
    if info.is_empty:  # `00 00`, or only deletions of clocks the letter lacks (what a Y.Doc
        # loaded from `state` holds pending, posted back with nothing drafted): nothing logged,
        # but checking those cost the loop as much as new ones did: charged as sent.
        if update != EMPTY_UPDATE:
            with ctx.update_bytes.held(user_key(claims)) as budget:
                charge_bytes(budget, len(update))
        return
    writer = Writer(claims)
    with ctx.update_bytes.held(user_key(claims)) as budget:
        clients, unknown = admit_update(room, claims, budget, writer.client_ids, info, len(update))
    try:
        part = await _owned_part(room, claims, update, info, unknown, clients)
        if part is None:  # the letter has all of it: answered as the request that brought it
            await room.letters.flush()  # is, once that is in the log (it may be on its way still)
            if room.failed:
                raise Refused(LOG_UNAVAILABLE, "log_unavailable")
            return
        # Trimmed, it writes under the same new ids still (Room._receive_update): `clients` holds.
        new, new_info, clients = part
        room.accept_update(writer, new, new_info, True, clients, update)  # the owners again
    except BaseException:  # refused (or the request gone) before the room took it: no cost
        refund_update(ctx, claims, info, len(update))
        raise
    gone: asyncio.Future[Any] = asyncio.ensure_future(room.closed.wait())  # a failed append
    waits: list[asyncio.Future[Any]] = [writer.logged, gone]
    timeout = write_wait_s(ctx.settings)
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if not writer.logged.done():
        raise Unlogged(LOG_UNAVAILABLE, "log_unavailable")
    writer.logged.result()


async def _owned_part(
    room: Room,
    claims: Claims,
    update: bytes,
    info: UpdateInfo,
    unknown: list[int],
    clients: list[int],
) -> tuple[bytes, UpdateInfo, list[int]] | None:
    """What of `update` the letter lacks (None: nothing), once the owners of its `unknown`
    client ids are known (asked of Redis: the letter may change meanwhile), with its ids."""
    if unknown:
        await room.owners.resolve(unknown, claims.sub)
        if room.failed or room.closing:
            raise Refused(LOG_UNAVAILABLE, "log_unavailable")
        info = _checked(room.ctx, room, update)
        clients = new_clients(info, room.shape)
    part = room.new_part(update, info)
    return None if part is None else (*part, clients)


def refund_update(ctx: Context, claims: Claims, info: UpdateInfo, size: int) -> None:
    """Give back what `admit_update` charged for an update refused after all (its ids' owner
    unknown or another user, the room failed, the request gone): a refusal costs nothing."""
    with ctx.update_bytes.held(user_key(claims)) as budget:
        budget.refund(size)
    if info.split_cost:
        ctx.split_cost.refund(user_key(claims), info.split_cost)


def write_wait_s(settings: Settings) -> float:
    """How long a REST write waits for the log at most: a stuck append fails the room (its
    connections closed, the write answered 503) within the append timeout, before this."""
    return settings.append_timeout_s * 2


def admit_update(
    room: Room, claims: Claims, budget: TokenBucket, used: set[int], info: UpdateInfo, size: int
) -> tuple[list[int], list[int]]:
    """What an update passes before the room takes it, a REST write's and a WebSocket sync
    update's alike (gateway/live/connection.py): the size the log was seen to refuse (4413:
    Context.learn_refused), the user's budget of item splits' cost (an OverBudget of its own
    reason; only for an update that costs any) and their `budget` of update bytes (OverBudget;
    `size`, which the caller may have reduced: `charged`),
    then the Yjs client ids it writes under first, at most
    MAX_IDS_PER_CONNECTION with those its writer `used`. Those ids, and the ones among them
    whose owner this instance does not know yet: ask Redis before the room takes the update
    (gateway/live/ownership.py)."""
    ceiling = room.ctx.update_ceiling
    if ceiling is not None and size > ceiling:  # it would fail the letter for everyone (4503)
        raise Refused(TOO_LARGE, "update_over_log_limit")
    clients = new_clients(info, room.shape)
    check_count(used, clients)
    # Both budgets asked before either is taken from: a refused update costs neither.
    _within(budget, size)
    if info.split_cost:  # typing and pasting cost 0: the lookup is for the few that cut items
        over = room.ctx.split_cost.charge(user_key(claims), info.split_cost)
        if over is not None:
            raise OverBudget(over, "split_cost_rate_limited", "item splits' cost over budget")
    budget.reserve(size)  # there now: wait_s said so, and only this task runs meanwhile
    return clients, room.owners.unknown(clients)


def charge_bytes(budget: TokenBucket, size: int) -> None:
    """Charge `size` bytes to a user's `budget` of update bytes, as `admit_update` does, for an
    update checked but not taken (nothing logged, or dropped): OverBudget, nothing taken, if
    over it."""
    _within(budget, size)
    budget.reserve(size)


def _within(budget: TokenBucket, size: int) -> None:
    wait = budget.wait_s(size)
    if wait > 0:
        raise OverBudget(wait)


def charged(info: UpdateInfo, size: int, letter_spans: int) -> int:
    """The bytes a connection's first sync step 2 (the answer to the greeting's step 1) of
    `size` bytes is charged: all but the bytes of its deletions the letter has made (every
    reconnect's step 2 repeats the letter's delete set), and of no more of them than the letter
    has ranges (`letter_spans`: a genuine step 2 repeats each once; one deleted range listed
    200,000 times went free, ~0.4 s of the loop a connection). Every other update is charged
    as sent, later step 2s and REST writes included: checking repeated deletions costs the loop
    as much as new ones (250,000 ranges: ~0.24 s), and the budget bounds it. Deletions of
    clocks nobody has (pending) are left out of `info.update` too, but charged: free, a new
    connection a second each sending 200,000 of them kept the loop busy for nothing."""
    free = info.repeated_bytes
    if info.repeated > letter_spans:
        free = free * letter_spans // info.repeated
    return size - free


def _checked(ctx: Context, room: Room, update: bytes) -> UpdateInfo:
    """The pre-parser's view of `update` against the letter, as a WebSocket sync step 2's."""
    return inbound.step2_body(update, ctx.limits, room.shape)
