"""A letter's timeline: who did what when (sessions, edit bursts, comments, locks, versions).

The rows are the snapshotter's `collaboration` audit trail. Without PostgreSQL they are
produced on the spot by the snapshotter's own fold (`snapshotter.fold.Folder`) over the
letter's records, which yields the same rows (except bursts still open at the log's end).
"""

import json
from dataclasses import dataclass
from typing import Any

from gateway.live.loader import scan
from snapshotter import read
from snapshotter.fold import Folder
from snapshotter.quarantine import PoisonRecord, Quarantine
from tools.replay import LetterNotFound, exists
from tools.sources import Sources
from tools.terminal import visible
from tools.timefmt import iso, to_datetime

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Entry:
    at_ms: int
    user: str
    kind: str  # the audit change_type
    data: Json
    offset: int  # log offset of the record it came from

    def to_json(self) -> Json:
        return {"at": iso(self.at_ms), "user": self.user, "type": self.kind, "data": self.data,
                "offset": self.offset}  # fmt: skip


async def history(
    src: Sources, letter_id: str, since_ms: int | None = None, until_ms: int | None = None
) -> list[Entry]:
    """Entries with since <= time < until, in time order."""
    if src.pg is not None:
        since = None if since_ms is None else to_datetime(since_ms)
        until = None if until_ms is None else to_datetime(until_ms)
        rows = await read.audit_rows(src.pg, letter_id, since, until, limit=1_000_000)
        entries = [_from_audit(row) for row in rows]
    else:
        entries = await _from_log(src, letter_id, since_ms, until_ms)
    if not entries and not await exists(src, letter_id):
        raise LetterNotFound(letter_id)
    return entries


def _from_audit(row: read.AuditEntry) -> Entry:
    ms = int(row.timestamp.timestamp() * 1000)
    return Entry(ms, row.user_id, row.change_type, row.change_data, row.log_offset)


async def _from_log(
    src: Sources, letter_id: str, since_ms: int | None, until_ms: int | None
) -> list[Entry]:
    folder = Folder(src.settings)
    # A record whose fold raises (a pycrdt panic) is skipped, as the snapshotter skips it: it
    # folds again from scratch (no half-folded state survives) with that record quarantined.
    folder.quarantine = Quarantine(max_attempts=1)
    while True:
        try:
            entries = await _fold_all(src, letter_id, folder)
            break
        except PoisonRecord:
            folder.forget()
    entries.sort(key=lambda e: (e.at_ms, e.offset))
    lo, hi = since_ms or 0, until_ms if until_ms is not None else 2**63
    return [e for e in entries if lo <= e.at_ms < hi]


async def _fold_all(src: Sources, letter_id: str, folder: Folder) -> list[Entry]:
    entries: list[Entry] = []
    batch = []
    async for record in scan(src.log, src.letters_topic, letter_id, None):
        batch.append(record)
        if len(batch) >= 1000:
            entries += _rows(folder, batch)
            batch = []
    return entries + _rows(folder, batch)


def _rows(folder: Folder, batch: list[Any]) -> list[Entry]:
    out = folder.fold(batch)
    return [
        Entry(a.timestamp_ms, a.user_id, a.change_type, a.change_data, a.position.offset)
        for a in out.audit
    ]


def format_text(entries: list[Entry]) -> str:
    """One line per entry; what users wrote (bodies, quotes, labels, names) escaped."""
    return "".join(f"{iso(e.at_ms)}  {visible(e.user):<16} {visible(describe(e))}\n"
                   for e in entries)  # fmt: skip


def format_json(entries: list[Entry]) -> str:
    return json.dumps([e.to_json() for e in entries], indent=2, sort_keys=True) + "\n"


def describe(entry: Entry) -> str:
    d, kind = entry.data, entry.kind
    if kind == "edit":
        where = ", ".join(str(p + 1) for p in d.get("paragraphs", [])) or "?"
        secs = d.get("duration_ms", 0) / 1000
        counts = f"+{d.get('inserted', 0)} -{d.get('deleted', 0)} characters"
        span = f"{d.get('updates', 0)} updates, {secs:.1f} s"
        return f"edited: {counts} in paragraph(s) {where} ({span})"
    if kind == "letter.created":
        return f'created the letter "{_short(d.get("title", ""))}"'
    if kind == "session-start":
        return f"joined as {d.get('role', '?')} ({d.get('name', '')})"
    if kind == "session-end":
        secs = (d.get("duration_ms") or 0) / 1000
        return f"left after {secs:.1f} s ({d.get('reason') or 'closed'})"
    if kind == "version":
        label = f' "{_short(d["label"])}"' if d.get("label") else ""
        who = ", ".join(d.get("contributors", [])) or "nobody"
        return f"version {d.get('version_number')} ({d.get('type')}{label}; by {who})"
    if kind.startswith("comment."):
        quote = d.get("anchor", {}).get("quote", "")
        on = f' on "{_short(quote)}"' if quote else ""
        body = f': "{_short(d["body"])}"' if d.get("body") else ""
        return f"{kind.removeprefix('comment.')} comment in thread {d.get('thread_id')}{on}{body}"
    if kind.startswith("lock."):
        return f"lock {kind.removeprefix('lock.')} on section {d.get('section')}"
    return f"{kind} {json.dumps(d, sort_keys=True)}"


def _short(text: str, limit: int = 60) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
