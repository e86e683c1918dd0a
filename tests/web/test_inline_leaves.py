"""The web client's plain-text offsets treat the server's inline leaves as the server does: its
set (web/src/editor/text.ts INLINE) names the same node types as gateway/content.py and
snapshotter/document.py (tests/gateway/test_hard_breaks.py holds those two equal)."""

import re
from pathlib import Path

from gateway.content import INLINE

TEXT_TS = Path(__file__).resolve().parents[2] / "web" / "src" / "editor" / "text.ts"


def test_the_web_clients_inline_leaves_are_the_servers() -> None:
    found = re.search(r"^const INLINE = new Set\(\[(.*)\]\)$", TEXT_TS.read_text(), re.MULTILINE)
    assert found, "text.ts names its inline leaves in one `const INLINE = new Set([...])`"
    assert set(re.findall(r"'([^']*)'", found.group(1))) == set(INLINE)
