"""Output formats of a replayed letter: text, HTML, JSON (ProseMirror shape) and Yjs bytes.

Text is read on terminals: its control characters other than newlines are escaped
(tools/terminal.py); HTML covers every node and mark of the web editor's schema, its values
escaped or dropped (tools/html_export.py); JSON and Yjs bytes are the letter exactly. The CLI
puts a provenance header (which letter, which cut, by what) above text and HTML, so that a
printed replay is a record of itself; REST and `--bare` give the document alone (REST names the
cut replayed in response headers: `replay_headers`)."""

import json
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from gateway.live.loader import scan
from schemas import LetterCreated
from schemas.envelope import EventDecodeError, decode_record
from schemas.wording import counted
from tools.html_export import header_html, to_html
from tools.replay import Cut, Replayed, origin
from tools.sources import Sources
from tools.terminal import visible, visible_lines
from tools.timefmt import iso

FORMATS = ("text", "html", "json", "yjs")
Json = dict[str, Any]
RULE = "-" * 72  # ends a text header: the letter's own text follows


@dataclass(frozen=True)
class Provenance:
    """What a header says beside the replay itself: the title and the cut asked for."""

    title: str | None  # None: the letter's `letter.created` was not found
    cut: Cut
    # When the replay began, before it read the log's end: a later instant is `ahead`.
    began_ms: int = field(default_factory=lambda: time.time_ns() // 1_000_000)


def render(replayed: Replayed, fmt: str, provenance: Provenance | None = None) -> bytes:
    """`provenance`: a header above text and HTML (JSON and Yjs carry their own fields)."""
    if fmt == "yjs":
        return replayed.state
    if fmt == "text":
        body = visible_lines(replayed.snapshot.content) + "\n"  # for terminals
        if provenance is not None:
            lines = [f"{name}: {visible(value)}" for name, value in header(replayed, provenance)]
            body = "\n".join([*lines, made_by(), RULE, body])
        return body.encode()
    if fmt == "html":
        page = to_html(replayed.snapshot.document) + "\n"
        if provenance is not None:
            page = header_html(header(replayed, provenance), made_by()) + page
        return page.encode()
    if fmt == "json":
        return (json.dumps(to_json(replayed), indent=2, sort_keys=True) + "\n").encode()
    raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")


def header(replayed: Replayed, provenance: Provenance) -> list[tuple[str, str]]:
    """(name, value) rows: the letter, its title, the cut asked for and the one replayed."""
    cut = provenance.cut
    if cut.offset is not None:
        asked = f"--offset {cut.offset} (records below it)"
        if note := past_end(replayed, cut):
            asked += f" ({note})"
    elif cut.at_ms is not None:
        asked = f"--at {iso(cut.at_ms)}"
        if ahead(cut, provenance.began_ms):
            asked += f" ({AHEAD})"
    else:
        asked = "the log's end when replayed"
    base = replayed.base_version
    return [
        ("letter", replayed.letter_id),
        ("title", "(unknown)" if provenance.title is None else provenance.title),
        ("cut", asked),
        ("as of", "(no record)" if replayed.last_ms is None else iso(replayed.last_ms)),
        ("position", f"{replayed.position} in partition {replayed.partition} (next offset)"),
        (
            "base",
            "the log from the letter's first record"
            if base is None
            else f"version {base}, then {counted(replayed.updates, 'update')} from the log",
        ),
    ]


# An instant still to come: the log's end is answered, and edits may yet be stamped before it.
AHEAD = "later than this replay: the log's end when replayed, which later edits may extend"


def ahead(cut: Cut, began_ms: int) -> bool:
    """Whether `cut` is an instant after `began_ms`, when its replay began (before it read the
    log's end): records stamped up to that instant may still come, so its replay is not final."""
    return cut.at_ms is not None and cut.at_ms > began_ms


def past_end(replayed: Replayed, cut: Cut) -> str | None:
    """A note for an `offset` past the partition's end when replayed (a typo, or a position of
    another log): its end is answered, which is not final, as for an instant `ahead`."""
    end = replayed.log_end
    if cut.offset is None or end is None or cut.offset <= end:
        return None
    return (
        f"past the log's end: its end when replayed (position {end}), which later edits may extend"
    )


def replay_headers(replayed: Replayed, cut: Cut, began_ms: int) -> dict[str, str]:
    """REST's provenance of a replay, in response headers (its body is the document alone):
    the cut replayed, as JSON gives it, and a note when the instant asked is still to come or
    the offset asked is past the log's end."""
    headers = {
        "Replay-Partition": str(replayed.partition),
        "Replay-Position": str(replayed.position),
    }
    if replayed.last_ms is not None:
        headers["Replay-As-Of"] = iso(replayed.last_ms)
    if replayed.base_version is not None:
        headers["Replay-Base-Version"] = str(replayed.base_version)
    if ahead(cut, began_ms):
        headers["Replay-Note"] = AHEAD
    elif note := past_end(replayed, cut):
        headers["Replay-Note"] = note
    return headers


def made_by() -> str:
    return f"replayed from the log by {tool()}"


def tool() -> str:
    try:
        return f"steno-collab {version('steno-collab')}"
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "steno-collab (version unknown)"


async def letter_title(src: Sources, letter_id: str) -> str | None:
    """The title in the letter's first record, its `letter.created` (None: not there)."""
    start = await origin(src, letter_id)
    async for record in scan(src.log, src.letters_topic, letter_id, start):
        try:
            event = decode_record(record.key, record.value, record.headers)
        except EventDecodeError:
            return None
        return event.payload.title if isinstance(event.payload, LetterCreated) else None
    return None


def to_json(replayed: Replayed) -> Json:
    return {
        "letter_id": replayed.letter_id,
        "partition": replayed.partition,
        "position": replayed.position,
        "as_of": None if replayed.last_ms is None else iso(replayed.last_ms),
        "base_version": replayed.base_version,
        "updates_replayed": replayed.updates,
        "content": replayed.snapshot.content,
        "document": replayed.snapshot.document,
    }
