"""Text a terminal would obey (escape sequences, a carriage return, a bidi override) as the
tools must show it, escaped; and a replayed letter to format diffs of without a log."""

from snapshotter.document import Snapshot
from tools.replay import Replayed

HOSTILE = "\x1b[31mRED\x1b[0m\r\x1b]0;pwned\x07\x9b2J\u202eevil\u2066\x7f"
ESCAPED = "\\x1b[31mRED\\x1b[0m\\x0d\\x1b]0;pwned\\x07\\x9b2J\\u202eevil\\u2066\\x7f"


def stand_in_replayed(content: str) -> Replayed:
    """A replayed letter holding `content`, its id hostile too."""
    snapshot = Snapshot(content, {"type": "doc", "content": []}, "{}", "")
    return Replayed("L\x1b[2J", 0, b"", 7, None, None, 0, snapshot)
