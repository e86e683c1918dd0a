"""The projector's Redis: the only module that talks to it.

Each batch is ONE Lua script call: it checks that the stored consumer positions of the batch's
partitions are still the ones this instance read (compare-and-set), and only then writes every
touched letter's keys and the new positions. Redis runs a script atomically, so a kill -9, a
FLUSHALL or a second instance can never leave state without its position or a position without
its state: positions are data (DESIGN.md "Guarantees"). Key names: README "Operations".
"""

import functools
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from projector.awareness import presence
from projector.notes import USER_NOTES_LIMIT, note_views
from projector.state import Json, LetterState
from schemas.keys import (
    alive_key,
    comments_key,
    connection_key,
    connections_key,
    meta_key,
    presence_key,
    projector_position_key,
    recent_key,
    ydoc_key,
    ydoc_offset_key,
)
from schemas.quarantine import QUARANTINE_KEY
from schemas.rebuilds import PROJECTOR_REPLAYS, replay_field
from schemas.stores import raise_if_cancelled

TP = tuple[str, int]  # (topic, partition)
P = ParamSpec("P")
T = TypeVar("T")
HSET_CHUNK = 200  # field/value pairs per HSET: Lua's unpack() has a stack limit

# ARGV: n, then n expected positions ("" = absent), n new positions, then commands as
# (name, argc, args...); two commands are the script's own. CAPNOTES (hash, index, limit) keeps
# the `limit` newest fields of a user's notifications hash by their index's scores (creation
# times), so one user's hash stays bounded whatever the number of letters that mention them.
# UPDNOTE (hash, index, field, value, ttl) rewrites a note the hash still holds (read, edited)
# and refreshes the hash's retention; a note the cap or the retention dropped stays dropped.
# REPLAY (hash, field, target, position) keeps a partition's replay marker (schemas/rebuilds.py
# `PROJECTOR_REPLAYS`): raised to `target` ("": none) and deleted once `position` reaches it
# ("": a partition outside the fence, whose letters keys the commit writes: raised only).
# KEYS: the n position keys, then optionally a lease's key (its holder's token is then ARGV[2 + 2n],
# before the commands): nothing is written unless the key holds the token (a rebuild that lost
# its lease, tools/lease.py). Returns 0, -1 (the lease not held), or the actual positions.
_COMMIT = """
local function capnotes(hash, index, limit)
  local over = redis.call('ZCARD', index) - tonumber(limit)
  if over <= 0 then return end
  for _, field in ipairs(redis.call('ZRANGE', index, 0, over - 1)) do
    redis.call('HDEL', hash, field)
  end
  redis.call('ZREMRANGEBYRANK', index, 0, over - 1)
end
local function replay(hash, field, target, position)
  local held = tonumber(redis.call('HGET', hash, field) or '-1')
  if target ~= '' and tonumber(target) > held then
    held = tonumber(target)
    redis.call('HSET', hash, field, target)
  end
  if held >= 0 and position ~= '' and tonumber(position) >= held then
    redis.call('HDEL', hash, field)
  end
end
local function updnote(hash, index, field, value, ttl)
  local current = redis.call('HGET', hash, field)
  if not current or current == value then return end
  redis.call('HSET', hash, field, value)
  redis.call('PEXPIRE', hash, ttl)
  redis.call('PEXPIRE', index, ttl)
end
local n = tonumber(ARGV[1])
local j = 2 + 2 * n
if #KEYS > n then
  if redis.call('GET', KEYS[n + 1]) ~= ARGV[j] then return -1 end
  j = j + 1
end
local actual, ok = {}, true
for i = 1, n do
  local cur = redis.call('GET', KEYS[i]) or ''
  actual[i] = cur
  if cur ~= ARGV[1 + i] then ok = false end
end
if not ok then return actual end
for i = 1, n do redis.call('SET', KEYS[i], ARGV[1 + n + i]) end
while j <= #ARGV do
  local argc = tonumber(ARGV[j + 1])
  if ARGV[j] == 'CAPNOTES' then
    capnotes(ARGV[j + 2], ARGV[j + 3], ARGV[j + 4])
  elseif ARGV[j] == 'REPLAY' then
    replay(ARGV[j + 2], ARGV[j + 3], ARGV[j + 4], ARGV[j + 5])
  elseif ARGV[j] == 'UPDNOTE' then
    updnote(ARGV[j + 2], ARGV[j + 3], ARGV[j + 4], ARGV[j + 5], ARGV[j + 6])
  else
    redis.call(ARGV[j], unpack(ARGV, j + 2, j + 1 + argc))
  end
  j = j + 2 + argc
end
return 0
"""


def _cancellable(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Re-raise a cancellation redis-py swallowed during the call (schemas.stores)."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            result = await method(*args, **kwargs)
        except RedisError:
            raise_if_cancelled()
            raise
        raise_if_cancelled()
        return result

    return call


# The projector's own keys (positions, fold state), all under one prefix: a wipe matches it.
OWN_KEYS = "projector:*"


position_key = projector_position_key


def letter_key(letter_id: str) -> str:
    return f"projector:letter:{letter_id}"


def known_key(partition: int) -> str:
    """Every letter ever folded in a partition (no TTL): tells an expired letter, to reload,
    from a new one. About 50 bytes per letter; gone with the positions in a wipe."""
    return f"projector:known:{partition}"


def live_key(partition: int) -> str:
    """Letters of a partition that have connections (for the stale-gateway sweep)."""
    return f"projector:live:{partition}"


@dataclass(frozen=True, slots=True)
class Views:
    """What a letter's public keys hold; comparing them writes only what changed."""

    meta: dict[str, str]
    presence: dict[str, str]
    recent: dict[str, str]
    comments: str
    connections: dict[str, Json]
    notes: dict[str, str]


def views(state: LetterState) -> Views:
    threads = sorted(state.comments.values(), key=lambda t: (t["created_at"], t["thread_id"]))
    return Views(
        meta=dict(state.meta),
        presence={uid: _json(p) for uid, p in presence(state).items()},
        recent={k: _json(v) for k, v in state.recent.items()},
        comments=_json(threads),
        connections={c: dict(f) for c, f in state.connections.items()},
        notes=note_views(state),
    )


@dataclass(frozen=True, slots=True)
class Write:
    """A letter to write: its views as loaded from Redis (None: unknown, write them all) and
    its folded state. With `before` None, `notified` names the notifications (`Views.notes`
    keys) Redis may hold for the letter all the same: its users' hashes outlive its keys, so
    those no longer in `after` are deleted, and those still there only updated (a reloaded
    letter: its notes before the batch)."""

    before: Views | None
    after: LetterState
    partition: int
    notified: frozenset[str] = frozenset()


class LeaseNotHeld(RuntimeError):
    """A commit fenced on a lease (`Store.commit(lease=...)`) found its key holding another
    token, or none: nothing was written."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"lease {key} not held: nothing written")


class Store:
    def __init__(self, redis: Redis, ttl_ms: int, notes_ttl_ms: int) -> None:
        """`ttl_ms`: a letter's keys; `notes_ttl_ms`: users' notifications hashes, which hold
        notes of letters whose own keys may have expired long since."""
        self.redis, self._ttl, self._notes_ttl = redis, str(ttl_ms), str(notes_ttl_ms)
        self._commit = redis.register_script(_COMMIT)

    @_cancellable
    async def positions(self, tps: Sequence[TP]) -> dict[TP, int | None]:
        values = await self.redis.mget([position_key(t, p) for t, p in tps]) if tps else []
        return {tp: None if v is None else int(v) for tp, v in zip(tps, values, strict=True)}

    @_cancellable
    async def load(self, letter_ids: Iterable[str]) -> dict[str, LetterState | None]:
        ids = list(letter_ids)
        if not ids:
            return {}
        keys = [k for lid in ids for k in (ydoc_key(lid), letter_key(lid))]
        values = await self.redis.mget(keys)
        found: dict[str, LetterState | None] = {}
        for i, letter_id in enumerate(ids):
            doc, rest = values[2 * i], values[2 * i + 1]
            found[letter_id] = None if doc is None or rest is None else _state(doc, rest)  # type: ignore[arg-type]
        return found

    @_cancellable
    async def commit(
        self,
        fence: Mapping[TP, tuple[int | None, int]],
        writes: Sequence[Write],
        replays: Mapping[TP, int] | None = None,
        marked: Iterable[TP] = (),
        *,
        lease: tuple[str, str] | None = None,
    ) -> dict[TP, int | None] | None:
        """Write `writes` and move each position from fence[tp][0] to fence[tp][1], atomically;
        None on success, else the positions actually stored (nothing was written).

        Replay markers (`PROJECTOR_REPLAYS`, letters partitions only): `replays` are the
        partitions this writer replays from their start, with the offset the replay must reach,
        in the fence or not (a presence-only batch writes a letter's keys without its letters
        position: raised only); their marker is set with the state, so that no reader takes a
        partial state for the whole one. `marked`: partitions of the fence whose marker this
        commit deletes once its position reaches the target, whichever writer set it (another
        instance may finish a replay it adopted).

        `lease`: (key, token) of a lease (tools/lease.py) this writer must still hold, checked
        in the same script: `LeaseNotHeld` if not, nothing written (a rebuild's; the live
        projector passes none and pays nothing for it)."""
        tps = list(fence)
        argv: list[str | bytes] = [str(len(tps))]
        argv += ["" if fence[tp][0] is None else str(fence[tp][0]) for tp in tps]
        argv += [str(fence[tp][1]) for tp in tps]
        if lease is not None:
            argv.append(lease[1])
        replays = replays or {}
        for tp in dict.fromkeys([*(tp for tp in marked if tp in fence), *replays]):
            target = replays.get(tp)
            position = str(fence[tp][1]) if tp in fence else ""  # "": raise only
            argv += _cmd(
                "REPLAY",
                PROJECTOR_REPLAYS,
                replay_field(*tp),
                "" if target is None else str(target),
                position,
            )
        for write in writes:
            argv += self._letter_commands(write)
        keys = [position_key(t, p) for t, p in tps]
        if lease is not None:
            keys.append(lease[0])
        result = await self._commit(keys=keys, args=argv)
        if result == 0:
            return None
        if result == -1:
            assert lease is not None
            raise LeaseNotHeld(lease[0])
        return {tp: int(v) if v else None for tp, v in zip(tps, result, strict=True)}

    @_cancellable
    async def quarantine(self, entries: Mapping[str, str]) -> None:
        """Record quarantined records (`QUARANTINE_KEY`: position -> entry), before the position
        moves past them."""
        mapping: dict[Any, Any] = dict(entries)  # redis-py's Mapping type is invariant
        await self.redis.hset(QUARANTINE_KEY, mapping=mapping)

    @_cancellable
    async def known(self, partition_of: Mapping[str, int]) -> set[str]:
        """Which of these letters were folded before (see `known_key`)."""
        by_partition: dict[int, list[str]] = {}
        for lid, p in partition_of.items():
            by_partition.setdefault(p, []).append(lid)
        found = set()
        for p, lids in by_partition.items():
            flags = await self.redis.smismember(known_key(p), lids)
            found |= {lid for lid, flag in zip(lids, flags, strict=True) if flag}
        return found

    @_cancellable
    async def live_letters(self, partition: int) -> set[str]:
        members = await self.redis.smembers(live_key(partition))
        return {m.decode() if isinstance(m, bytes) else m for m in members}

    @_cancellable
    async def forget_live(self, partition_of: Mapping[str, int]) -> None:
        """Drop expired letters from the live sets."""
        for lid, p in partition_of.items():
            await self.redis.srem(live_key(p), lid)

    @_cancellable
    async def alive_gateways(self, gateways: Sequence[str]) -> set[str]:
        """Gateways whose heartbeat key `gateway:<id>:alive` exists."""
        if not gateways:
            return set()
        values = await self.redis.mget([alive_key(gw) for gw in gateways])
        return {gw for gw, v in zip(gateways, values, strict=True) if v is not None}

    def _letter_commands(self, write: Write) -> list[str | bytes]:
        s, lid, ttl = write.after, write.after.letter_id, self._ttl
        old, new = write.before, views(write.after)
        out: list[str | bytes] = []
        out += _cmd("SET", ydoc_key(lid), s.doc, "PX", ttl)
        out += _cmd("SET", ydoc_offset_key(lid), str(s.letters_offset), "PX", ttl)
        out += _cmd("SET", letter_key(lid), s.rest_json(), "PX", ttl)
        if old is None:
            out += _cmd("SADD", known_key(write.partition), lid)
        out += self._hash(meta_key(lid), old.meta if old else None, new.meta)
        out += self._hash(presence_key(lid), old.presence if old else None, new.presence)
        out += self._hash(recent_key(lid), old.recent if old else None, new.recent)
        if old is None or old.comments != new.comments:
            out += _cmd("SET", comments_key(lid), new.comments, "PX", ttl)
        else:
            out += _cmd("PEXPIRE", comments_key(lid), ttl)
        out += self._notes(old.notes if old else None, new.notes, write.notified)
        return out + self._connections(
            lid, old.connections if old else None, new.connections, write
        )

    def _connections(
        self, lid: str, old: dict[str, Json] | None, new: dict[str, Json], write: Write
    ) -> list[str | bytes]:
        out: list[str | bytes] = []
        for conn in (old or {}).keys() - new.keys():
            out += _cmd("DEL", connection_key(conn))
        for conn, fields in new.items():
            known = old is not None and old.get(conn) == fields
            out += self._hash(connection_key(conn), fields if known else None, fields)
        key = connections_key(lid)
        if old is not None and old.keys() == new.keys():
            return out + (_cmd("PEXPIRE", key, self._ttl) if new else [])
        out += _cmd("DEL", key)
        if new:
            out += _cmd("SADD", key, *sorted(new))
            out += _cmd("PEXPIRE", key, self._ttl)
            return out + _cmd("SADD", live_key(write.partition), lid)
        return out + _cmd("SREM", live_key(write.partition), lid)

    def _notes(
        self, old: Mapping[str, str] | None, new: Mapping[str, str], notified: frozenset[str]
    ) -> list[str | bytes]:
        """Each firm user's hash `notifications:<firmId>:<userId>` (`notes_key`), field
        `<letterId>:<commentId>`, with its index `<hash>:order` (field -> creation time) that
        caps it at USER_NOTES_LIMIT. The notes before the batch are `old`'s, or, `old` None (a
        reloaded letter), those `notified` names (values unknown). A new note is added, then the
        hash capped; one that was there before is only rewritten where the hash still holds it
        (UPDNOTE), so neither a reload nor a later read or edit brings back a note the cap or
        the hash's retention dropped. Both keys expire `notes_ttl_ms` after their last change."""
        before = notified if old is None else old.keys()
        out: list[str | bytes] = []
        for key in sorted(before - new.keys()):
            hash_, field = key.split("\n", 1)
            out += _cmd("HDEL", hash_, field)
            out += _cmd("ZREM", f"{hash_}:order", field)
        added: set[str] = set()
        for key, value in sorted(new.items()):
            hash_, field = key.split("\n", 1)
            if key not in before:
                created = str(json.loads(value)["created_at"])
                out += _cmd("HSET", hash_, field, value)
                out += _cmd("ZADD", f"{hash_}:order", created, field)
                added.add(hash_)
            elif old is None or old[key] != value:
                out += _cmd("UPDNOTE", hash_, f"{hash_}:order", field, value, self._notes_ttl)
        for hash_ in sorted(added):
            out += _cmd("CAPNOTES", hash_, f"{hash_}:order", str(USER_NOTES_LIMIT))
            out += _cmd("PEXPIRE", hash_, self._notes_ttl)
            out += _cmd("PEXPIRE", f"{hash_}:order", self._notes_ttl)
        return out

    def _hash(
        self, key: str, old: Mapping[str, str] | None, new: Mapping[str, str]
    ) -> list[str | bytes]:
        """Rewrite a hash when it changed; otherwise only refresh its TTL."""
        if old is not None and old == new:
            return _cmd("PEXPIRE", key, self._ttl) if new else []
        out = _cmd("DEL", key)
        pairs = [x for kv in sorted(new.items()) for x in kv]
        for i in range(0, len(pairs), 2 * HSET_CHUNK):
            out += _cmd("HSET", key, *pairs[i : i + 2 * HSET_CHUNK])
        if pairs:
            out += _cmd("PEXPIRE", key, self._ttl)
        return out


def _cmd(name: str, *args: str | bytes) -> list[str | bytes]:
    return [name, str(len(args)), *args]


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _state(doc: bytes, rest: bytes) -> LetterState:
    return LetterState.from_stored(doc, rest)
