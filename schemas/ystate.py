"""A letter's saved Yjs state (`ydoc:*` in Redis, `letter_version.ydoc_state`, a replay between
chunks) is the document's update plus whatever of the updates applied to it is still pending.

Yrs keeps the structs and deletions of an update whose dependencies it has not seen yet in a
pending set, and `Doc.get_update()` leaves them out. A state saved between an update and the one
it depends on would lose the later update for good, so the document would depend on where
batches, chunks and restarts fall. A saved state carries them instead: loading it applies them
again, and they stay pending until the missing update arrives, as they would in memory.
"""

from collections.abc import Iterable
from typing import Any

from pycrdt import Decoder, Doc, Encoder, get_update, merge_updates

from schemas.quarantine import PASSTHROUGH


def undecodable(state: bytes) -> str | None:
    """Why pycrdt refuses a saved state (a projection gone wrong: a corrupt or tampered row);
    None if it takes it. Readers skip such a state and start from an earlier one or the log."""
    try:
        Doc().apply_update(state)
    except PASSTHROUGH:
        raise
    except BaseException as exc:  # its ValueError, or a pyo3 panic on stranger bytes
        return str(exc) or type(exc).__name__
    return None


def pending_parts(doc: Doc[Any], applied: Iterable[bytes]) -> list[bytes]:
    """What `doc` holds pending of `applied` (updates applied to it): per update that has any,
    its structs beyond `doc`'s state vector and its delete set.

    A struct at or past the vector was applied but not integrated, so it is pending; a deleted
    range reaching past the vector names items the document does not have yet, so yrs keeps it
    pending too (deletions of known items are already in `doc`'s own delete set)."""
    vector = doc.get_state()
    clocks: dict[int, int] | None = None
    found = []
    for update in applied:
        rest = get_update(update, vector)  # its structs past `vector`, and its whole delete set
        if rest[0]:  # a struct section: the first varuint counts them
            found.append(rest)
        elif len(rest) > 2:  # `00 00` is nothing at all; else a delete set to compare
            clocks = decode_vector(vector) if clocks is None else clocks
            if _deletes_beyond(rest, clocks):
                found.append(rest)
    return found


def with_pending(state: bytes, parts: list[bytes]) -> bytes:
    """`state` (a document's `get_update()`) carrying `parts` (its `pending_parts`)."""
    return merge_updates(state, *parts) if parts else state


def _deletes_beyond(update: bytes, clocks: dict[int, int]) -> bool:
    """Whether a struct-less v1 update deletes a range reaching past `clocks`."""
    decoder = Decoder(update)
    decoder.read_var_uint()  # its struct count: 0
    for _ in range(decoder.read_var_uint()):
        client, ranges = decoder.read_var_uint(), decoder.read_var_uint()
        known = clocks.get(client, 0)
        for _ in range(ranges):
            clock, length = decoder.read_var_uint(), decoder.read_var_uint()
            if clock + length > known:
                return True
    return False


def decode_vector(vector: bytes) -> dict[int, int]:
    """A Yjs state vector: client id -> the next clock it has."""
    decoder = Decoder(vector)
    return {
        decoder.read_var_uint(): decoder.read_var_uint() for _ in range(decoder.read_var_uint())
    }


def encode_vector(clocks: dict[int, int]) -> bytes:
    encoder = Encoder()
    encoder.write_var_uint(len(clocks))
    for client, clock in clocks.items():
        encoder.write_var_uint(client)
        encoder.write_var_uint(clock)
    return encoder.to_bytes()


def newlines(units: bytes, start: int, end: int) -> int:
    """Newlines in UTF-16 units [start, end) of `units` (a Y.Text body as UTF-16-LE bytes; a
    surrogate pair may be cut: it is decoded as two lone halves, neither a newline). The
    projector's and the snapshotter's line counts of a Y.Text body."""
    return units[2 * start : 2 * end].decode("utf-16-le", "surrogatepass").count("\n")
