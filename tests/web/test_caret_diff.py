"""web/src/editor/caret-diff.ts's own tests, in Node's test runner (caret_diff.test.mjs): the
diff y-tiptap writes each keystroke with is valid, never larger than lib0's, ends at the caret,
and keeps surrogate pairs whole."""

import subprocess
from pathlib import Path

from tests.web.bundle import WEB
from tests.web.web_modules import web_node_modules

TESTS = Path(__file__).with_name("caret_diff.test.mjs")


def test_caret_diff_in_node() -> None:
    web_node_modules()
    run = subprocess.run(
        ["node", "--test", str(TESTS)], cwd=WEB, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "# fail 0" in run.stdout and "# pass 0" not in run.stdout, run.stdout
