"""Envelope codec: every event type round-trips; everything else is one typed error."""

import json
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schemas
from schemas import EVENT_TYPES, EventDecodeError, decode_record, encode_event, new_event
from schemas.envelope import HEADER_NAMES, Event, raw_headers
from schemas.events import LetterCreated, VersionSaved
from tests.schemas.strategies import envelopes, letter_ids, payload_for

quick = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("type_", sorted(EVENT_TYPES))
@quick
@given(data=st.data())
def test_every_event_type_round_trips(type_: str, data: st.DataObject) -> None:
    spec = EVENT_TYPES[type_]
    event = Event(data.draw(letter_ids), data.draw(envelopes(type_)), data.draw(payload_for(spec)))
    key, value, headers = encode_event(event)
    assert [name for name, _ in headers] == list(HEADER_NAMES)
    decoded = decode_record(key, value, headers)
    assert decoded == event
    assert decoded.topic == spec.topic


def test_new_event_takes_type_and_current_version_from_the_model() -> None:
    event = new_event("L1", VersionSaved(label="draft"), firm="F", user="U")
    decoded = decode_record(*encode_event(event))
    assert decoded.type == "version.saved"
    assert decoded.envelope == replace(event.envelope, v=EVENT_TYPES["version.saved"].version)
    assert decoded.payload == VersionSaved(label="draft")


def test_raw_payloads_need_an_explicit_type() -> None:
    with pytest.raises(ValueError, match="explicit type"):
        new_event("L1", b"\x00\x00", firm="F", user="U")


def good_record() -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    payload = LetterCreated(letter_id="L1", firm_id="F", title="T", created_by="U")
    return encode_event(new_event("L1", payload, firm="F", user="U"))


def with_header(name: str, raw: bytes | None) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    key, value, headers = good_record()
    kept = [(n, v) for n, v in headers if n != name]
    return key, value, kept if raw is None else [*kept, (name, raw)]


BAD_RECORDS = {
    "unknown type": with_header("type", b"letter.exploded"),
    "non-UTF-8 header": with_header("user", b"\xff\xfe"),
    "version too new": with_header("v", b"2"),
    "version zero": with_header("v", b"0"),
    "version not a number": with_header("v", b"one"),
    "ts not a number": with_header("ts", b"yesterday"),
    "non-UTF-8 key": (b"\xff", *good_record()[1:]),
    "empty key": (b"", *good_record()[1:]),
    "missing key": (None, *good_record()[1:]),
    "key too long": (b"k" * 257, *good_record()[1:]),
    "bad JSON": (good_record()[0], b"{not json", good_record()[2]),
    "non-UTF-8 JSON": (good_record()[0], b"\xff\xfe", good_record()[2]),
    "JSON of the wrong shape": (
        good_record()[0],
        json.dumps({"title": 1}).encode(),
        good_record()[2],
    ),
    "JSON value missing": (good_record()[0], None, good_record()[2]),
    "no headers": (good_record()[0], good_record()[1], []),
} | {f"missing header {name}": with_header(name, None) for name in HEADER_NAMES}


@pytest.mark.parametrize("record", BAD_RECORDS.values(), ids=BAD_RECORDS.keys())
def test_anything_but_an_event_raises_event_decode_error(record: tuple) -> None:
    with pytest.raises(EventDecodeError):
        decode_record(*record)


def test_event_decode_error_is_the_exported_one() -> None:
    assert schemas.EventDecodeError is EventDecodeError
    assert issubclass(EventDecodeError, ValueError)


@quick
@given(
    key=st.binary(max_size=20),
    value=st.binary(max_size=50),
    headers=st.lists(st.tuples(st.sampled_from([*HEADER_NAMES, "x"]), st.binary(max_size=20))),
)
def test_arbitrary_bytes_decode_or_raise_event_decode_error(
    key: bytes, value: bytes, headers: list[tuple[str, bytes]]
) -> None:
    try:
        event = decode_record(key, value, headers)
    except EventDecodeError:
        return
    assert event.type in EVENT_TYPES  # whatever decodes is a real event


@pytest.mark.parametrize("letter_id", ["", "k" * 257])
def test_encoding_refuses_a_letter_id_decoding_would_reject(letter_id: str) -> None:
    with pytest.raises(ValueError, match="letter id"):
        encode_event(new_event(letter_id, VersionSaved(), firm="F", user="U"))


def test_raw_headers_decode_like_an_encoded_event() -> None:
    headers = raw_headers("letter-1", "doc.update", firm="f", user="u", conn="c", gw="g")
    event = decode_record(b"letter-1", b"\x00\x00", headers)
    built = new_event(
        "letter-1", b"\x00\x00", firm="f", user="u", conn="c", gw="g", type="doc.update"
    )
    assert [name for name, _ in headers] == [name for name, _ in encode_event(built)[2]]
    assert (event.type, event.envelope.v, event.envelope.firm, event.envelope.user) == (
        "doc.update",
        1,
        "f",
        "u",
    )
    assert (event.envelope.conn, event.envelope.gw, event.payload) == ("c", "g", b"\x00\x00")
    with pytest.raises(TypeError):
        raw_headers("letter-1", "letter.created", firm="f", user="u")
