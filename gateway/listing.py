"""A firm's letters in pages, newest first: the snapshotter's `letters` table merged with the
letters this instance knows (it created, looked up or tailed them) that the table lacks yet.

Letters sort by (creation time, id). The table's time is the `letter.created` record's; a letter
it lacks is placed at the time inside its UUIDv7 id (the gateway makes every letter id with
`schemas.ids.uuid7`; clients cannot choose one), which is the creating gateway's clock a few ms
before the record's. An id that is no UUIDv7 (written to the log by other means) sorts last.
A known letter the table holds is listed at the table's place only: it is asked for (one query
per page of candidates), never taken as fresh because the table's page left it out.

A page names the next one with a cursor (the last letter's sort key, opaque to clients): pages
walked while the letters do not change list each letter once. A fresh letter the table takes
in between moves from its id's time to its record's, a few ms later: near a page boundary it
can then be listed twice or not at all (reload the list to see it).
"""

import base64
import binascii
import datetime as dt
import re
import uuid
from collections.abc import Iterable
from typing import Any, NamedTuple

_CURSOR = re.compile(r"(\d{1,15}):([A-Za-z0-9_-]{1,128})")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_LAST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant Python holds

# `COLLATE "C"`: ids compare as Python's strings do, whatever the database's collation.
_PAGE = (
    "SELECT letter_id, title, (extract(epoch FROM created_at) * 1000)::bigint AS ms"
    " FROM letters WHERE firm_id = $1"
    ' AND ($3::timestamptz IS NULL OR (created_at, letter_id COLLATE "C") < ($3, $4::text))'
    ' ORDER BY created_at DESC, letter_id COLLATE "C" DESC LIMIT $2'
)
_HELD = "SELECT letter_id FROM letters WHERE letter_id = ANY($1::text[])"


class BadCursor(ValueError):
    pass


class Cursor(NamedTuple):
    """A letter's sort key: a page goes on with the letters below it."""

    created_ms: int
    letter_id: str

    def encode(self) -> str:
        text = f"{self.created_ms}:{self.letter_id}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> "Cursor":
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            text = ""
        found = _CURSOR.fullmatch(text)
        if found is None or int(found.group(1)) > _LAST_MS:
            raise BadCursor(f"{token[:40]!r} is not a cursor of this list")
        return cls(int(found.group(1)), found.group(2))


def id_ms(letter_id: str) -> int:
    """The creation time inside a UUIDv7 letter id; 0 for any other id."""
    try:
        value = uuid.UUID(letter_id)
    except ValueError:
        return 0
    ms = value.int >> 80
    return ms if value.version == 7 and ms <= _LAST_MS else 0


Listed = tuple[Cursor, str, str]  # (sort key, letter id, title)


async def page(
    pg: Any, firm_id: str, known: Iterable[tuple[str, str]], limit: int, after: Cursor | None
) -> tuple[list[Listed], Cursor | None]:
    """Up to `limit` letters below `after`, newest first, and the cursor of the next page when
    more follow. `known`: (letter id, title) of the firm's letters this instance knows; `pg`
    None: only they are listed."""
    rows: list[Listed] = []
    if pg is not None:
        since = None if after is None else _EPOCH + dt.timedelta(milliseconds=after.created_ms)
        found = await pg.fetch(
            _PAGE, firm_id, limit + 1, since, None if after is None else after.letter_id
        )
        rows = [(Cursor(r["ms"], r["letter_id"]), r["letter_id"], r["title"] or "") for r in found]
    listed = {row[1] for row in rows}
    # Below the table's last row nothing known can make the page (one more row than shown:
    # whether more follow).
    floor = rows[-1][0] if len(rows) > limit else None
    candidates: list[Listed] = []
    for letter_id, title in known:
        key = Cursor(id_ms(letter_id), letter_id)
        if (
            letter_id not in listed
            and (after is None or key < after)
            and (floor is None or key > floor)
        ):
            candidates.append((key, letter_id, title))
    candidates.sort(reverse=True)
    fresh = candidates
    if pg is not None:
        fresh = []
        for start in range(0, len(candidates), limit + 1):
            if len(fresh) > limit:
                break
            chunk = candidates[start : start + limit + 1]
            held = {r["letter_id"] for r in await pg.fetch(_HELD, [c[1] for c in chunk])}
            fresh += [c for c in chunk if c[1] not in held]
    merged = sorted(rows + fresh, reverse=True)
    more = merged[limit - 1][0] if len(merged) > limit else None
    return merged[:limit], more
