"""An update logged before the one it depends on ("!!!" before " world")."""

from schemas.envelope import Event
from tests.snapshotter.scripts import LetterScript


def out_of_order(letter_id: str) -> tuple[LetterScript, list[Event]]:
    """hello, then " world", then "!!!" (which depends on " world"): logged as 0, 2, 1."""
    s = LetterScript(letter_id)
    hello = s.paragraph("alice", "hello")
    world = s.type_text("alice", 0, 5, " world")
    bang = s.type_text("alice", 0, 11, "!!!")
    return s, [hello, bang, world]


def payload(event: Event) -> bytes:
    assert isinstance(event.payload, bytes)
    return event.payload
