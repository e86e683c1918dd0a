"""Connections of dead gateways: the `session.left` the projector logs for them.

A gateway that dies (kill -9, OOM, host loss) never logs `session.left` for its connections.
The projector's sweep notices the death (README "Operations": stale connections) and appends
those events itself, built from its connection records, so every consumer of the log (the
snapshotter's session-end versions, the audit, other gateways' collaborators) hears of it.
"""

from collections.abc import Iterable

from eventlog import Entry
from projector.state import LetterState
from schemas import Event, SessionLeft, UserRef, encode_event, new_event

GONE = "gateway gone"  # the reason, followed by the dead gateway's id


def left_events(state: LetterState, conns: Iterable[str], *, gw: str, now_ms: int) -> list[Event]:
    """The `session.left` of each of `conns` (connections of `state`), as their gateway would
    have logged it: user (name and colour as they joined), role (records stored before it was
    kept have none: ""), duration since `connectedAt`. The envelope's `gw` is `gw`, the
    appender; the dead gateway is named in the reason."""
    events = []
    for conn in sorted(conns):
        record = state.connections[conn]
        user = record["userId"]
        named = state.users.get(user, {})
        payload = SessionLeft(
            conn_id=conn,
            user=UserRef(id=user, name=named.get("name", ""), color=named.get("color", "")),
            role=record.get("role", ""),
            reason=f"{GONE}: {record['gateway']}"[:200],
            duration_ms=max(now_ms - int(record["connectedAt"]), 0),
        )
        firm = state.meta.get("firm_id") or record["firmId"]
        events.append(new_event(state.letter_id, payload, firm=firm, user=user, conn=conn, gw=gw))
    return events


def left_entries(state: LetterState, conns: Iterable[str], *, gw: str, now_ms: int) -> list[Entry]:
    """`left_events` as log entries of the letters topic (the key is the letter id)."""
    entries = []
    for event in left_events(state, conns, gw=gw, now_ms=now_ms):
        _key, value, headers = encode_event(event)
        entries.append(Entry(value, headers))
    return entries
