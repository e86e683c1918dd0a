"""A firm's letters in pages, newest first: the snapshotter's `letters` table merged with the
letters this instance knows (it created, looked up or tailed them) that the table lacks yet.

Letters sort by (creation time, id). The table's time is the `letter.created` record's; a letter
it lacks is placed at the time inside its UUIDv7 id (the gateway makes every letter id with
`schemas.ids.uuid7`; clients cannot choose one), which is the creating gateway's clock a few ms
before the record's. An id that is no UUIDv7 (written to the log by other means) sorts last.
A known letter the table holds is listed at the table's place only: it is asked for (one query
per page of candidates), never taken as fresh because the table's page left it out. The page
and that question are one statement, one snapshot: a letter the snapshotter commits meanwhile
is in both or in neither, never dropped as held by a page that lacks it.

A page names the next one with a cursor (the last letter's sort key, opaque to clients): pages
walked while the letters do not change list each letter once. A fresh letter the table takes
in between moves from its id's time to its record's, a few ms later: near a page boundary it
can then be listed twice or not at all (reload the list to see it).
"""

import datetime as dt
import re
import uuid
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from schemas import pages
from schemas.instants import EPOCH, LAST_MS

# Any id the table can hold (text, no NUL): the cursor is base64 of it.
_CURSOR = re.compile(r"([0-9]{1,15}):([^\x00]+)", re.DOTALL)

# `COLLATE "C"`: ids compare as Python's strings do, whatever the database's collation; the
# index `letters_firm_page` (migration 004) is in this order. Two statements, not one with
# `$3 IS NULL OR ...`: a prepared statement's generic plan would filter that one row by row
# from the firm's newest instead of starting the index scan at the cursor.
_SELECT = (
    "SELECT letter_id, title, (extract(epoch FROM created_at) * 1000)::bigint AS ms"
    " FROM letters WHERE firm_id = $1"
)
_ORDER = ' ORDER BY created_at DESC, letter_id COLLATE "C" DESC LIMIT $2'
_FIRST = _SELECT + _ORDER
_AFTER = _SELECT + ' AND (created_at, letter_id COLLATE "C") < ($3, $4::text)' + _ORDER


def _with_held(paged: str, ids: int) -> str:
    """`paged`'s rows (`paged` true) and which of the ids in parameter `ids` the table holds."""
    return (
        f"WITH page AS ({paged}),"
        f" held AS (SELECT letter_id FROM letters WHERE letter_id = ANY(${ids}::text[]))"
        " SELECT letter_id, title, ms, true AS paged FROM page"
        " UNION ALL SELECT letter_id, NULL, NULL, false FROM held"
    )


_FIRST_HELD, _AFTER_HELD = _with_held(_FIRST, 3), _with_held(_AFTER, 5)


class BadCursor(ValueError):
    pass


class Cursor(NamedTuple):
    """A letter's sort key: a page goes on with the letters below it."""

    created_ms: int
    letter_id: str

    def encode(self) -> str:
        return pages.encode(f"{self.created_ms}:{self.letter_id}")

    @classmethod
    def decode(cls, token: str) -> "Cursor":
        found = _CURSOR.fullmatch(pages.decode(token) or "")
        if found is None or int(found.group(1)) > LAST_MS:
            raise BadCursor(f"{token[:40]!r} is not a cursor of this list")
        return cls(int(found.group(1)), found.group(2))


def id_ms(letter_id: str) -> int:
    """The creation time inside a UUIDv7 letter id; 0 for any other id."""
    try:
        value = uuid.UUID(letter_id)
    except ValueError:
        return 0
    ms = value.int >> 80
    return ms if value.version == 7 and ms <= LAST_MS else 0


Listed = tuple[Cursor, str, str]  # (sort key, letter id, title)


class Remembered:
    """One firm's letters this instance knows, in sort order (keys computed once, when
    remembered): a page takes only the ones that can land on it."""

    def __init__(self, letters: Iterable[tuple[str, str]] = ()) -> None:
        self._sorted: list[Listed] = []
        self._keys: dict[str, Cursor] = {}
        for letter_id, title in letters:
            self.add(letter_id, title)

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def add(self, letter_id: str, title: str) -> None:
        self.discard(letter_id)
        key = self._keys[letter_id] = Cursor(id_ms(letter_id), letter_id)
        insort(self._sorted, (key, letter_id, title))

    def discard(self, letter_id: str) -> None:
        if (key := self._keys.pop(letter_id, None)) is not None:
            del self._sorted[bisect_left(self._sorted, key, key=_key)]

    def below(self, after: Cursor | None, floor: Cursor | None, most: int) -> list[Listed]:
        """Up to `most` letters below `after` and above `floor`, newest first (a copy: the
        list may change while a page awaits)."""
        lo = 0 if floor is None else bisect_right(self._sorted, floor, key=_key)
        hi = len(self._sorted) if after is None else bisect_left(self._sorted, after, key=_key)
        return self._sorted[max(lo, hi - most) : hi][::-1]


def _key(listed: Listed) -> Cursor:
    return listed[0]


async def page(
    pg: Any, firm_id: str, known: Remembered, limit: int, after: Cursor | None
) -> tuple[list[Listed], Cursor | None]:
    """Up to `limit` letters below `after`, newest first, and the cursor of the next page when
    more follow. `known`: the firm's letters this instance knows; `pg` None: only they are
    listed."""
    # The newest known letters below the cursor, as many as a page and one: a fresh one older
    # than all of them cannot make this page (each of them, held or fresh, is newer and on it).
    candidates = known.below(after, None, limit + 1)
    if pg is None:
        return _merged([], candidates, limit)
    ids = [c[1] for c in candidates]
    # One statement, one snapshot: a letter the snapshotter commits meanwhile is in the page and
    # held, or in neither (two reads could see it held but not paged: dropped). No transaction,
    # whose ROLLBACK a frozen server would hold up after the query's own timeout.
    if after is None:
        found = await pg.fetch(_FIRST_HELD, firm_id, limit + 1, ids)
    else:
        since = EPOCH + dt.timedelta(milliseconds=after.created_ms)
        found = await pg.fetch(_AFTER_HELD, firm_id, limit + 1, since, after.letter_id, ids)
    rows = sorted(
        ((Cursor(r["ms"], r["letter_id"]), r["letter_id"], r["title"] or "") for r in found
         if r["paged"]),
        reverse=True,
    )  # fmt: skip
    held = {r["letter_id"] for r in found if not r["paged"]}
    # Below the table's last row nothing known can make the page (one more row than shown:
    # whether more follow).
    floor = rows[-1][0] if len(rows) > limit else None
    fresh = [c for c in candidates if c[1] not in held and (floor is None or c[0] > floor)]
    return _merged(rows, fresh, limit)


def _merged(
    rows: list[Listed], fresh: list[Listed], limit: int
) -> tuple[list[Listed], Cursor | None]:
    merged = sorted(rows + fresh, reverse=True)
    more = merged[limit - 1][0] if len(merged) > limit else None
    return merged[:limit], more
