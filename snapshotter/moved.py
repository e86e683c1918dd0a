"""Text an update both deletes and inserts: moved between blocks, neither written nor erased.

y-prosemirror splits a paragraph (Enter) by deleting its tail from the paragraph's XmlText and
inserting a new paragraph holding it; a join (Backspace at a paragraph's start) deletes the
second paragraph and appends its text to the first; a paragraph made a heading or moved into a
list is deleted and inserted anew with the same text. The CRDT's events count such text as
deleted and inserted, which would charge the user with erasing text a colleague wrote. So the
document notes each piece of text an update deletes or inserts, with its place in the document
after the update, and the text common to the start, or to the end, of both (each read in
document order) counts as moved. The cost is that of the changed text, never of the letter.
"""

from operator import itemgetter

Place = tuple[int, ...]  # a path in the document after the update, then an offset
_first = itemgetter(0)
_CONTINUATION = bytes(range(0x80, 0xC0))  # UTF-8 bytes that do not start a character


class MovedText:
    """The pieces of text one transaction deleted and inserted (UTF-8, as the shadow keeps
    them), each at its place."""

    __slots__ = ("deleted", "inserted")

    def __init__(self) -> None:
        self.deleted: list[tuple[Place, bytes]] = []
        self.inserted: list[tuple[Place, bytes]] = []

    def clear(self) -> None:
        """Forget the pieces (a new transaction): cheaper than a new object per update."""
        self.deleted.clear()
        self.inserted.clear()

    def characters(self) -> int:
        """Characters (code points) deleted and inserted again: no more than either side holds."""
        if not self.deleted or not self.inserted:  # typing or erasing only: the usual update
            return 0
        gone = b"".join(text for _, text in sorted(self.deleted, key=_first))
        came = b"".join(text for _, text in sorted(self.inserted, key=_first))
        head = _boundary_back(gone, came, _common_prefix(gone, came))
        tail = _common_prefix(gone[head:][::-1], came[head:][::-1])
        # A common end may begin inside a character ("€" and "¬" end alike): counting the
        # bytes that start one counts only whole characters.
        return code_points(gone[:head]) + code_points(gone[len(gone) - tail :])


def code_points(utf8: bytes) -> int:
    return len(utf8.translate(None, _CONTINUATION))


def _common_prefix(a: bytes, b: bytes) -> int:
    """Bytes `a` and `b` begin with in common, by halving (slices compare in C): O(n)."""
    low, high = 0, min(len(a), len(b))
    while low < high:  # a[:low] == b[:low], a[: high + 1] != b[: high + 1]
        middle = (low + high + 1) // 2
        if a[low:middle] == b[low:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _is_continuation(data: bytes, at: int) -> bool:
    return at < len(data) and 0x80 <= data[at] < 0xC0


def _boundary_back(a: bytes, b: bytes, at: int) -> int:
    """`at` moved back to a character's start in both (a common prefix may end inside one:
    "é" and "è" share their first byte)."""
    while at and (_is_continuation(a, at) or _is_continuation(b, at)):
        at -= 1
    return at
