"""Redis keys one service writes and another reads (DESIGN.md "Keys"): the contract, here once.

The projector is the only writer of a letter's live state; the gateway and the tools read it.
Key strings are deployed data: changing one strands what Redis holds under the old name.
Keys one service keeps to itself stay with it (`projector:*` in projector/store.py, the
gateway's section locks and client-id owners in gateway/).
"""

from urllib.parse import quote


def ydoc_key(letter_id: str) -> str:
    """A letter's full Yjs state, `ydoc:<letterId>` (the projector writes; the gateway loads
    a cold letter from it, `verify` compares it)."""
    return f"ydoc:{letter_id}"


def ydoc_offset_key(letter_id: str) -> str:
    """`ydoc:<letterId>:offset`: the log position folded into `ydoc_key`, written with it in
    one transaction (the projector writes; the gateway reads it with the state, and to see
    how far the projector has come)."""
    return f"{ydoc_key(letter_id)}:offset"


def projector_position_key(topic: str, partition: int) -> str:
    """`projector:pos:<topic>:<partition>`: the next offset the projector folds, written with
    the state it covers (the projector writes; the gateway reads it to know whether Redis has
    folded a letter's partition to the log's end: gateway/collab/cold.py `settled`)."""
    return f"projector:pos:{topic}:{partition}"


def meta_key(letter_id: str) -> str:
    """`letter:<letterId>:meta` hash: firm, title, creator (the projector writes; the gateway's
    access checks read)."""
    return f"letter:{letter_id}:meta"


def connections_key(letter_id: str) -> str:
    """`letter:<letterId>:connections` set of connection ids (the projector writes; the
    backfill reads it to find a letter's `connection_key`s, the gateway's lock sweep to find
    where a lock's holder is connected)."""
    return f"letter:{letter_id}:connections"


def connection_key(conn_id: str) -> str:
    """`connection:<connId>` hash: who is connected where (the projector writes; the gateway's
    lock sweep reads its `userId` and `gateway`)."""
    return f"connection:{conn_id}"


def presence_key(letter_id: str) -> str:
    """`presence:<letterId>` hash: user id -> JSON (the projector writes; the gateway reads it
    for who is here and whether a lock holder is still present)."""
    return f"presence:{letter_id}"


def comments_key(letter_id: str) -> str:
    """`comments:<letterId>`: the letter's threads as JSON (the projector writes; the gateway
    reads them to check and answer comment messages)."""
    return f"comments:{letter_id}"


def recent_key(letter_id: str) -> str:
    """`recent:<letterId>` hash: paragraph -> who edited it last (the projector writes; the
    gateway's `section.edited` follows it)."""
    return f"recent:{letter_id}"


# The heartbeat's TTL and period: the projector dates a dead gateway's last beat by the key's
# lapse less the TTL (projector/stale.py).
ALIVE_TTL_S, ALIVE_EVERY_S = 30, 10.0


def alive_key(gateway_id: str) -> str:
    """`gateway:<gatewayId>:alive`, a gateway's heartbeat (the gateway writes it with a TTL;
    the projector reaps the connections of a gateway whose key is gone; the lock sweep counts
    their users away from the moment it is gone: gateway/collab/lock_scripts.py)."""
    return f"gateway:{gateway_id}:alive"


def attending_key(letter_id: str) -> str:
    """`attending:<letterId>` zset: the users each gateway has connected to the letter, member
    `["<userId>", "<gatewayId>"]` scored with the Redis time (ms) its vouch lapses (each gateway
    writes its own: gateway/live/attendance.py; the lock sweep reads it without the projector)."""
    return f"attending:{letter_id}"


_NOTES = "notifications"


def notes_key(firm_id: str, user_id: str) -> str:
    """A user's notifications (the projector writes, the gateway reads and marks):
    `notifications:<firmId>:<userId>`, each percent-encoded: ids are any text, and neither part
    then holds a ':' (firm "a:b" user "c" and firm "a" user "b:c" keep keys apart)."""
    return f"{_NOTES}:{quote(firm_id, safe='')}:{quote(user_id, safe='')}"


def idempotency_key(firm_id: str, user_id: str, key: str) -> str:
    """`idempotency:<firmId>:<userId>:<key>`: a create's claim of its `Idempotency-Key` (the
    gateway writes and reads it on every instance: gateway/api/idempotency.py), each part
    percent-encoded as in `notes_key`. Not live state: a backfill's wipe must spare it, or a
    create retried after a rebuild would make a second letter."""
    return f"idempotency:{quote(firm_id, safe='')}:{quote(user_id, safe='')}:{quote(key, safe='')}"


def restored_idempotency_key(scoped: str) -> str:
    """`idempotency:<scoped hash>`: a settled claim `backfill locks` restored from the log
    (`letter.created`'s `idempotency`, the sha256 of the claim's `idempotency_key`); the gateway
    looks for a claim there after its own key. One part after the prefix where a claim's own
    key has three (each percent-encoded): the two never meet, and a wipe that spares
    `idempotency:*` spares both."""
    return f"idempotency:{scoped}"


RESTORED = "locks-restored"
"""Present: this Redis holds the section locks and `Idempotency-Key` claims the log says it
should. Written by the restore of every letter once it finished (`backfill locks`, or the one
a gateway runs by itself on finding it missing: steno_collab/lock_restore.py), or by a gateway
that finds it missing while the log holds no record (a fresh deployment); a wipe removes it.
Read by the gateway's lock grants (lock_scripts.ACQUIRE) and keyed creates (api/idempotency.py),
which answer 503 while it is missing: gateway/restored.py. No wipe pattern below matches it."""

RESTORING = "locks-restoring"
"""The lease of the one restore of every letter running (`backfill locks`, or a gateway's
automatic one: steno_collab/lock_restore.py): a random token, SET NX with a TTL renewed while
the run lasts, deleted by its holder at the end (tools/lease.py). Written and read by those
runs only; a wipe takes it, and the run that held it then sets no `RESTORED`."""


# Match patterns of every live-state key above the projector writes (a backfill's wipe): each
# key function given "*". `ydoc:*` covers the offsets, `notifications:*` the hashes' indexes.
LIVE_STATE_PATTERNS = (
    ydoc_key("*"),
    meta_key("*"),
    connections_key("*"),
    presence_key("*"),
    connection_key("*"),
    comments_key("*"),
    recent_key("*"),
    f"{_NOTES}:*",
)
