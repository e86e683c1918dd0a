"""The web client names a section after its heading (web/src/editor/sections.ts `headingId`):
every such name must pass the server's name rule (gateway/api/names.py), or the section cannot
be locked (422). Headings cut at the id's length on a space or inside a joiner sequence,
pasted decomposed (NFD), or ending in an invisible character did not."""

import json
import subprocess

from gateway.api.names import problem
from tests.web.bundle import WEB
from tests.web.web_modules import web_node_modules

SCRIPT = """
const { runnerImport } = await import(`${process.cwd()}/node_modules/vite/dist/node/index.js`)
const { module } = await runnerImport(`${process.cwd()}/src/editor/sections.ts`,
  { root: process.cwd(), configFile: false, logLevel: 'silent' })
const headings = JSON.parse(process.argv[1])
console.log(JSON.stringify(headings.map((text) => module.headingId(text))))
"""

HEADINGS = {
    "x" * 119 + " tail": "x" * 119,  # cut at 120 on the space
    "Re\u0301sume\u0301 of damages": "R\u00e9sum\u00e9 of damages",  # pasted decomposed
    "Intro\u200d": "Intro",
    "\u200fIntro": "Intro",
    "Part\u00a0one\u3164": "Part one",
    "x" * 119 + "\U0001f469\u200d\U0001f4bc": "x" * 119,  # a surrogate pair cut in two
    "x" * 118 + "\U0001f469\u200d\U0001f4bc": "x" * 118 + "\U0001f469",  # ... and its joiner
    "Claims / Damages": "Claims - Damages",
    "\u2800\u200b": None,  # nothing shown: no name, the block counts as a paragraph
    "Intro\xadduction and Intro\u200bduction": "Introduction and Introduction",  # pasted
    "Claims \u2764\ufe0f": "Claims \u2764\ufe0f",  # the emoji heart, not the text one
    "x" * 117 + "\U0001f3f4\U000e0067\U000e0062": "x" * 117 + "\U0001f3f4",  # a flag cut
    "\u202eReversed\u202c": "Reversed",
}


def test_heading_ids_pass_the_servers_name_rule() -> None:
    web_node_modules()
    run = subprocess.run(
        ["node", "--input-type=module", "-e", SCRIPT, json.dumps(list(HEADINGS))],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    ids = json.loads(run.stdout)
    assert dict(zip(HEADINGS, ids, strict=True)) == HEADINGS
    for name in ids:
        assert name is None or problem(name) is None, (name, problem(name))
