"""Outbound y-protocol frames: one protocol message per frame, built with pycrdt's helpers."""

import json
from collections.abc import Iterable
from typing import Any

from pycrdt import Encoder, create_awareness_message, create_update_message, write_var_uint
from pydantic import BaseModel

from gateway.wire import hocuspocus as hp

MSG_AUTH = 2  # y-protocols/auth: [2, 0 = permission denied, varstring reason]
MSG_APP = 100  # our reserved type: a varstring of JSON, only for clients that asked (&events=1)
_PERMISSION_DENIED = 0


def update(data: bytes) -> bytes:
    return create_update_message(data)


def awareness(data: bytes) -> bytes:
    return create_awareness_message(data)


def sync_step1(state_vector: bytes) -> bytes:
    return bytes([0, 0]) + write_var_uint(len(state_vector)) + state_vector


def sync_step2(data: bytes) -> bytes:
    return bytes([0, 1]) + write_var_uint(len(data)) + data


def permission_denied(reason: str) -> bytes:
    """y-websocket logs the reason and keeps the connection."""
    encoder = Encoder()
    encoder.write_var_uint(MSG_AUTH)
    encoder.write_var_uint(_PERMISSION_DENIED)
    _write_string(encoder, reason)
    return encoder.to_bytes()


# A keyed comment's claim hashes restore claims from the log: not for collaborators.
NOT_RELAYED = {"idempotency"}


def app_body(type_: str, payload: BaseModel, user: str) -> dict[str, Any]:
    """The app message for an event of ours or from the tail: the same shape (Room.apply_remote)."""
    return {"type": type_, "by": user, **payload.model_dump(mode="json", exclude=NOT_RELAYED)}


WRITER = "doc.writer"


def writer_body(
    user: dict[str, str], blocks: Iterable[tuple[int, int, int]]
) -> dict[str, Any] | None:
    """Who wrote under the Yjs client ids of a REST write's `blocks` (`user`: as presence stamps
    it): no awareness state names such a writer, and the pages' edit highlights read it from
    this. None when the write carries no structs (deletions only: nothing to highlight)."""
    clients = sorted({client for client, _, _ in blocks})
    if not clients:
        return None
    return {"type": WRITER, "by": user["id"], "user": user, "clients": clients}


def app_message(body: dict[str, Any]) -> bytes:
    encoder = Encoder()
    encoder.write_var_uint(MSG_APP)
    _write_string(encoder, json.dumps(body, separators=(",", ":")))
    return encoder.to_bytes()


# -- the Hocuspocus framing (gateway/wire/hocuspocus.py) -------------------------------------

HP_PING = bytes([hp.PING])
HP_APPLIED = bytes([hp.SYNC_STATUS, 1])  # a sync status: a varInt, 1 or 0 in one byte
HP_NOT_APPLIED = bytes([hp.SYNC_STATUS, 0])
HP_TOKEN_REQUEST = bytes([hp.AUTH, hp.AUTH_TOKEN])  # the provider answers with its token


def hp_address(address: bytes) -> bytes:
    """The prefix of every message to a document (its address as the provider sent it)."""
    return write_var_uint(len(address)) + address


def hp_authenticated(read_only: bool) -> bytes:
    return bytes([hp.AUTH, hp.AUTH_OK]) + _string(b"readonly" if read_only else b"read-write")


def hp_permission_denied(reason: str) -> bytes:
    return bytes([hp.AUTH, hp.AUTH_DENIED]) + _string(reason.encode())


def hp_close(reason: str) -> bytes:
    return bytes([hp.CLOSE]) + _string(reason.encode())


def _string(data: bytes) -> bytes:
    return write_var_uint(len(data)) + data


def _write_string(encoder: Encoder, text: str) -> None:
    # Encoder.write_var_string writes len(str) (characters), not the UTF-8 byte length.
    data = text.encode()
    encoder.write_var_uint(len(data))
    encoder.stream.append(data)
