"""Edits made by stock Yjs in Node (a script printing `{created, steps}`: base64 updates, the
letter's creation and then each step's), applied to a pycrdt replica as the gateway receives
them, and what a thread's anchor covers there after each step."""

import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from pycrdt import Doc

from gateway.collab.anchors import Resolver, to_anchor
from gateway.content import plain_text

FIELD = "default"
MODULES = Path(__file__).parent.parent / "interop" / "node_modules"


def covered_after_steps(script: str, args: list[str], quote: str) -> list[str | None]:
    """The text the anchor made on `quote` (once the letter is created) covers after each step
    of `script`, None while it is detached."""
    made = subprocess.run(
        ["node", "-e", script, "--", *args],
        env={**os.environ, "NODE_PATH": str(MODULES)},
        capture_output=True,
        check=True,
        timeout=30,
    )
    updates = json.loads(made.stdout)
    replica: Doc[Any] = Doc()
    for update in updates["created"]:
        replica.apply_update(base64.b64decode(update))
    start = plain_text(replica, FIELD).index(quote)
    anchor = to_anchor(replica.get_update(), FIELD, start, start + len(quote))
    seen = []
    for step in updates["steps"]:
        for update in step:
            replica.apply_update(base64.b64decode(update))
        where = Resolver(replica.get_update(), FIELD).resolve(anchor)
        assert not where.open_end
        seen.append(None if where.detached else plain_text(replica, FIELD)[where.start : where.end])
    return seen
