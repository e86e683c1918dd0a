"""Redis keys one service writes and another reads (DESIGN.md "Keys"): the contract, here once."""

from urllib.parse import quote


def notes_key(firm_id: str, user_id: str) -> str:
    """A user's notifications (the projector writes, the gateway reads and marks):
    `notifications:<firmId>:<userId>`, each percent-encoded: ids are any text, and neither part
    then holds a ':' (firm "a:b" user "c" and firm "a" user "b:c" keep keys apart)."""
    return f"notifications:{quote(firm_id, safe='')}:{quote(user_id, safe='')}"
