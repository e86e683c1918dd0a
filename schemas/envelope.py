"""The record envelope and the codec between events and log records.

A record's key is the letter id; its headers carry the envelope (`type`, `v`, `id`, `firm`,
`user`, `conn`, `gw`, `ts`, and an optional `name`); its value is raw Yjs bytes or a JSON
payload model.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from schemas.events import EVENT_TYPES, MODEL_TYPES, Payload, Topic
from schemas.ids import uuid7

Headers = Sequence[tuple[str, bytes]]
HEADER_NAMES = ("type", "v", "id", "firm", "user", "conn", "gw", "ts")
# Optional: the writer's display name on a `doc.update` of a writer who need not have joined the
# letter (a REST write: gateway/live/writes.py), whom no `session.joined` names. Absent
# elsewhere (older records, WebSocket updates: a join names their user).
NAME_HEADER = "name"
# Optional, value "1": on the records of a letter's creation (POST /v1/letters appends
# `letter.created` and, given content, its `doc.update`). The `doc.update` carrying it is the
# content the letter was created with; `letter.created` carrying it says its content, if any, is
# so marked: any other update is someone's edit. Absent in records logged before 8 December 2026
# (the snapshotter then takes the letter's next update for the content when its event id was
# made within 5 s of the creation's: snapshotter/fold.py).
INITIAL_HEADER = "initial"
INITIAL_VALUE = b"1"  # its one value: another is no mark
MAX_KEY_BYTES = 256


class EventDecodeError(ValueError):
    """A record that is not a valid event: unknown type, bad headers or a bad payload."""


@dataclass(frozen=True, slots=True)
class Envelope:
    type: str
    firm: str
    user: str
    conn: str = ""
    gw: str = ""
    id: str = field(default_factory=uuid7)
    ts: int = field(default_factory=lambda: time.time_ns() // 1_000_000)
    v: int = 0  # 0 = the current version of `type`
    name: str = ""  # NAME_HEADER, "" when absent

    def headers(self) -> list[tuple[str, bytes]]:
        v = self.v or EVENT_TYPES[self.type].version
        found = _headers(self.type, v, self.id, self.firm, self.user, self.conn, self.gw, self.ts)
        if self.name:
            found.append((NAME_HEADER, self.name.encode()))
        return found


def _headers(
    type: str, v: int, id: str, firm: str, user: str, conn: str, gw: str, ts: int
) -> list[tuple[str, bytes]]:
    # Spelled out in HEADER_NAMES order rather than zipped: this runs once per logged event.
    return [
        ("type", type.encode()),
        ("v", str(v).encode()),
        ("id", id.encode()),
        ("firm", firm.encode()),
        ("user", user.encode()),
        ("conn", conn.encode()),
        ("gw", gw.encode()),
        ("ts", str(ts).encode()),
    ]


@dataclass(frozen=True, slots=True)
class Event:
    """One decoded event: the letter it belongs to, its envelope and its payload."""

    letter_id: str
    envelope: Envelope
    payload: Payload | bytes

    @property
    def type(self) -> str:
        return self.envelope.type

    @property
    def topic(self) -> Topic:
        return EVENT_TYPES[self.envelope.type].topic


def new_event(
    letter_id: str,
    payload: Payload | bytes,
    *,
    firm: str,
    user: str,
    conn: str = "",
    gw: str = "",
    type: str | None = None,
) -> Event:
    """Build an event; the type comes from the payload model unless it is raw bytes."""
    if type is None:
        if isinstance(payload, bytes):
            raise ValueError("raw byte payloads need an explicit type")
        type = MODEL_TYPES[payload.__class__].type
    envelope = Envelope(type=type, firm=firm, user=user, conn=conn, gw=gw)
    return Event(letter_id, envelope, payload)


def encode_event(event: Event) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) for the log."""
    spec = EVENT_TYPES.get(event.envelope.type)
    if spec is None:
        raise EventDecodeError(f"unknown event type {event.envelope.type!r}")
    if spec.model is None:
        if not isinstance(event.payload, bytes):
            raise TypeError(f"{spec.type} carries raw bytes")
        value = event.payload
    else:
        if not isinstance(event.payload, spec.model):
            raise TypeError(f"{spec.type} carries {spec.model.__name__}")
        value = event.payload.model_dump_json().encode()
    key = event.letter_id.encode()
    if not key or len(key) > MAX_KEY_BYTES:  # decode_record would refuse such a record
        raise ValueError(f"letter id must be 1..{MAX_KEY_BYTES} UTF-8 bytes")
    return key, value, event.envelope.headers()


def raw_headers(
    letter_id: str,
    type: str,
    *,
    firm: str,
    user: str,
    conn: str = "",
    gw: str = "",
    name: str = "",
) -> list[tuple[str, bytes]]:
    """The headers encode_event(new_event(...)) gives a raw-bytes event, without the objects
    (`name`: NAME_HEADER, left out when empty).

    The gateway logs every Yjs and awareness update this way: building the Event and Envelope
    dataclasses per update was a visible share of its CPU under load.
    """
    spec = EVENT_TYPES.get(type)
    if spec is None:
        raise EventDecodeError(f"unknown event type {type!r}")
    if spec.model is not None:
        raise TypeError(f"{spec.type} carries {spec.model.__name__}")
    key_len = len(letter_id.encode())
    if not key_len or key_len > MAX_KEY_BYTES:  # decode_record would refuse such a record
        raise ValueError(f"letter id must be 1..{MAX_KEY_BYTES} UTF-8 bytes")
    event_id = uuid7()  # the same order as Envelope's defaults: id, then ts
    ts = time.time_ns() // 1_000_000
    found = _headers(type, spec.version, event_id, firm, user, conn, gw, ts)
    if name:
        found.append((NAME_HEADER, name.encode()))
    return found


def decode_record(key: bytes | None, value: bytes | None, headers: Headers) -> Event:
    """The event in a log record; raises EventDecodeError for anything that is not one."""
    # Every consumer runs this once per record (a backfill: 100k+ per second), hence one dict
    # and eight direct lookups rather than decoding every header in a comprehension.
    found = dict(headers)
    try:
        letter_id = (key or b"").decode()
        type_, id_, firm, user, conn, gw = (
            found["type"].decode(),
            found["id"].decode(),
            found["firm"].decode(),
            found["user"].decode(),
            found["conn"].decode(),
            found["gw"].decode(),
        )
        v, ts = int(found["v"]), int(found["ts"])
        # Optional, and only a name: bytes that are not UTF-8 do not cost the record its event.
        writer = found[NAME_HEADER].decode(errors="replace") if NAME_HEADER in found else ""
    except KeyError:
        missing = [name for name in HEADER_NAMES if name not in found]
        raise EventDecodeError(f"missing envelope headers: {', '.join(missing)}") from None
    except UnicodeDecodeError as exc:
        raise EventDecodeError(f"non-UTF-8 key or header: {exc}") from None
    except ValueError:
        raise EventDecodeError("envelope headers v and ts must be integers") from None
    if not letter_id or len(key or b"") > MAX_KEY_BYTES:
        raise EventDecodeError("record key (letter id) is missing or too long")
    spec = EVENT_TYPES.get(type_)
    if spec is None:
        raise EventDecodeError(f"unknown event type {type_!r}")
    if v > spec.version or v < 1:
        raise EventDecodeError(f"{spec.type} schema version {v} is not supported")
    envelope = Envelope(spec.type, firm, user, conn, gw, id_, ts, v, writer)
    payload: Payload | bytes
    if spec.model is None:
        payload = value or b""
    else:
        try:
            payload = spec.model.model_validate_json(value or b"")
        except ValidationError as exc:
            raise EventDecodeError(f"bad {spec.type} payload: {exc.errors()[:3]}") from None
    return Event(letter_id, envelope, payload)
