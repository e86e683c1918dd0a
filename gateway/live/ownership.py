"""Who owns which Yjs client id on a letter: the first user to write structs under it.

A client that writes under another user's client id corrupts that user's text for good (their
later structs at the same clocks are dropped as duplicates), so struct blocks with NEW clocks
under an id owned by another user are refused (4403). Ownership is by user, not connection: a
reloaded y-websocket provider keeps its doc and clientID across reconnects. Each connection may
introduce at most `MAX_IDS_PER_CONNECTION` ids (one per tab; a few for undo-manager reloads).

Durable record: the Redis hash `clientid:<letterId>` (client id -> user id, HSETNX, TTL 24 h
refreshed on each claim), shared by every gateway instance and surviving a restart. Redis is
asked once per (letter, id) that this instance has not seen yet, before the frame is applied;
without Redis (single-instance dev) ownership lives in memory only. Details: docs/security.md.
"""

import asyncio
import logging
from typing import Any

from gateway.errors import FORBIDDEN, TOO_LARGE, Refused
from gateway.preparse import DocShape, UpdateInfo

log = logging.getLogger(__name__)
MAX_IDS_PER_CONNECTION = 4
OWNER_TTL_S = 24 * 3600
REDIS_TIMEOUT_S = 2.0  # only the claiming connection waits; the room never does


def new_clients(info: UpdateInfo, shape: DocShape) -> list[int]:
    """Client ids under which the update writes clocks the letter does not know yet."""
    return [client for client, _, end in info.blocks if end > shape.known_clock(client)]


class Ownership:
    """One letter's owners: an in-memory cache of the Redis hash (or the record itself)."""

    def __init__(self, letter_id: str, redis: Any = None) -> None:
        self._key = f"clientid:{letter_id}"
        self._redis = redis
        self._owners: dict[int, str] = {}

    def unknown(self, clients: list[int]) -> list[int]:
        return [client for client in clients if client not in self._owners]

    async def resolve(self, clients: list[int], user: str) -> None:
        """Claim `clients` for `user` in Redis where unclaimed; learn the owners of the rest."""
        if self._redis is None or not clients:
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            for client in clients:
                pipe.hsetnx(self._key, str(client), user)
                pipe.hget(self._key, str(client))
            pipe.expire(self._key, OWNER_TTL_S)
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                replies = await pipe.execute()
        except Exception as exc:  # Redis down or slow: fall back to this instance's memory
            log.warning("client id ownership unavailable for %s: %r", self._key, exc)
            return
        for client, owner in zip(clients, replies[1::2], strict=False):
            if owner is not None:
                self._owners.setdefault(client, owner.decode())

    def foreign(self, user: str, clients: list[int]) -> list[int]:
        """Those of `clients` another user owns."""
        return [client for client in clients if self._owners.get(client, user) != user]

    def claim(self, user: str, clients: list[int]) -> None:
        """Record `user` as the owner of those of `clients` nobody owns yet."""
        for client in clients:
            self._owners.setdefault(client, user)

    def check(self, user: str, used: set[int], clients: list[int]) -> None:
        """Refuse (4403 / 4413) unless `user` may write under every id of `clients`; then claim
        them. `used` is the set of ids this connection has written under; it grows here."""
        if used.issuperset(clients):  # the usual case: ids this connection already owns
            return
        check_count(used, clients)
        if self.foreign(user, clients):
            raise Refused(FORBIDDEN, "client_id_not_owned")
        self.claim(user, clients)
        used.update(clients)


def check_count(used: set[int], clients: list[int]) -> None:
    """At most MAX_IDS_PER_CONNECTION ids per connection, checked before asking Redis."""
    # issuperset first: no set built per update for ids the connection already uses.
    if not used.issuperset(clients) and len(used.union(clients)) > MAX_IDS_PER_CONNECTION:
        raise Refused(TOO_LARGE, "too_many_client_ids")
