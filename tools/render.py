"""Output formats of a replayed letter: text, HTML, JSON (ProseMirror shape) and Yjs bytes.

Text is read on terminals: its control characters other than newlines are escaped
(tools/terminal.py); HTML covers every node and mark of the web editor's schema, its values
escaped or dropped (tools/html_export.py); JSON and Yjs bytes are the letter exactly."""

import json
from typing import Any

from tools.html_export import to_html
from tools.replay import Replayed
from tools.terminal import visible_lines
from tools.timefmt import iso

FORMATS = ("text", "html", "json", "yjs")
Json = dict[str, Any]


def render(replayed: Replayed, fmt: str) -> bytes:
    if fmt == "yjs":
        return replayed.state
    if fmt == "text":
        return (visible_lines(replayed.snapshot.content) + "\n").encode()  # for terminals
    if fmt == "html":
        return (to_html(replayed.snapshot.document) + "\n").encode()
    if fmt == "json":
        return (json.dumps(to_json(replayed), indent=2, sort_keys=True) + "\n").encode()
    raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")


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
