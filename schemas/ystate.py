"""A letter's saved Yjs state (`ydoc:*` in Redis, `letter_version.ydoc_state`, a replay between
chunks) is the document's update plus whatever of the updates applied to it is still pending.

Yrs keeps the structs and deletions of an update whose dependencies it has not seen yet in a
pending set, and `Doc.get_update()` leaves them out. A state saved between an update and the one
it depends on would lose the later update for good, so the document would depend on where
batches, chunks and restarts fall. A saved state carries them instead: loading it applies them
again, and they stay pending until the missing update arrives, as they would in memory.
"""

from collections.abc import Callable, Iterable
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
            clocks = _clocks(vector) if clocks is None else clocks
            if _deletes_beyond(rest, clocks):
                found.append(rest)
    return found


# The state vector `pending_parts` decoded last, with its clocks: decoding one of a letter of
# thousands of Yjs clients takes ~1 ms in Python, once per deletion the snapshotter applies,
# and deletions come in runs (a held backspace, a cut) that leave the vector as it was.
_last: tuple[bytes, dict[int, int]] = (b"", {})


def _clocks(vector: bytes) -> dict[int, int]:
    """`decode_vector(vector)`, the last one kept (callers only read it)."""
    global _last
    seen, clocks = _last
    if seen != vector:
        clocks = decode_vector(vector)
        _last = (vector, clocks)  # one assignment: a reader in another thread sees a pair
    return clocks


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


# What pycrdt raises for bytes it refuses: ValueError when it cannot decode them, RuntimeError
# when yrs cannot integrate them (its own error). Not a pyo3 PanicException: yrs broke, so its
# document is not to be trusted (the consumers' quarantine folds again from a saved state).
REFUSED = (ValueError, RuntimeError)


def split_pending(state: bytes) -> tuple[bytes, list[bytes]]:
    """A saved state (ours: it loads) as what is integrated and its pending parts, one per
    client plus one for deletions of unknown items, so that a part which cannot apply with the
    others (a bad record past the gateway) can be left out alone (`parts_to_keep`)."""
    doc: Doc[Any] = Doc()
    doc.apply_update(state)
    integrated, pending = doc.get_update(), pending_parts(doc, [state])
    if not pending:
        return integrated, []
    whole = merge_updates(*pending)
    clients = _struct_clients(whole)
    # Past every clock: a diff against it keeps no struct of that client (and every deletion).
    past = {client: _PAST for client in clients}
    deletions = get_update(whole, encode_vector(past))  # no structs (`00`) + the delete set
    parts = [deletions]
    for client in clients:
        part = get_update(whole, encode_vector({**past, client: 0}))
        # Its structs, then the same delete set (yrs encodes it alike: client ids hash to
        # themselves), which is its own part: cut, an empty one (`00`) instead.
        if part.endswith(deletions[1:]):
            part = part[: len(part) - len(deletions) + 1] + b"\x00"
        parts.append(part)
    return integrated, [part for part in parts if part != b"\x00\x00"]


def _struct_clients(update: bytes) -> list[int]:
    """The clients with structs in `update`. `get_state(update)` names only those whose
    structs start at clock 0, which pending ones rarely do; the struct section is read a group
    at a time instead: the first group's client, then the update without that client's structs
    (reading past a group would mean decoding every struct of it)."""
    clients: list[int] = []
    rest = update
    while True:
        decoder = Decoder(rest)
        if not decoder.read_var_uint():  # no struct group left
            return clients
        decoder.read_var_uint()  # the group's struct count
        client = decoder.read_var_uint()
        if client in clients:  # its structs not left out (never seen): no endless loop
            return clients
        clients.append(client)
        rest = get_update(update, encode_vector({client: _PAST for client in clients}))


_PAST = 1 << 53  # a clock past any (yrs' clocks are u32)


def parts_to_keep(
    parts: list[bytes], attempt: Callable[[list[bytes]], Doc[Any] | None]
) -> list[bytes]:
    """Of a state's pending `parts` (`split_pending`), those that apply with the good ones and
    an update that failed behind all of them: each part that then fails is dropped, no other.
    `attempt(kept)`: the document with those parts and the update applied, None if it fails.

    A bad part fails once what it points into is there, beside a good part that brings it:
    each passes alone, they fail together. So first, in rounds, each part that integrates
    whole (nothing of it left pending) with those kept so far is kept: its dependencies are
    there and it failed nothing, so it is good. Then each part still waiting is kept if it
    applies with all kept so far: the bad one finds the good one already there, whatever the
    order of the parts."""
    kept, rest = list[bytes](), list(parts)
    grown = True
    while grown:
        grown = False
        for part in list(rest):
            doc = attempt([*kept, part])
            if doc is not None and not pending_parts(doc, [part]):
                kept.append(part)
                rest.remove(part)
                grown = True
    for part in rest:
        if attempt([*kept, part]) is not None:
            kept.append(part)
    return kept
