"""Anchors against stock Yjs clients: Yjs decodes our anchors, ours decode Yjs', and both
follow concurrent edits."""

import asyncio
import os
from pathlib import Path
from typing import Any

from tests.collab.conftest import Collab
from tests.interop.driver import NodeClient
from tests.support import eventually

HERE = Path(__file__).parent
MODULES = HERE.parent / "interop" / "node_modules"
TEXT = "Dear Sir,\nWe demand 5000 EUR within 14 days.\nRegards"


async def _node(c: Collab, letter_id: str, user: str) -> NodeClient:
    proc = await asyncio.create_subprocess_exec(
        "node", str(HERE / "anchor_client.cjs"),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "NODE_PATH": str(MODULES)},
    )  # fmt: skip
    client = NodeClient(proc)
    params = {"token": c.gw.token(user=user), "letterId": letter_id}
    await client.call(
        "connect", url=f"ws://127.0.0.1:{c.gw.port}/v1", room=f"letter-{letter_id}", params=params
    )
    return client


async def _get(c: Collab, lid: str) -> dict[str, Any]:
    r = await c.call("GET", f"/v1/letters/{lid}/comments")
    assert r.status_code == 200, r.text
    return {t["comments"][0]["body"]: t for t in r.json()["threads"]}


async def test_anchors_follow_concurrent_stock_edits(collab: Collab) -> None:
    lid = await collab.gw.create_letter(TEXT)
    one, two = await _node(collab, lid, "n1"), await _node(collab, lid, "n2")
    try:
        start = TEXT.index("5000")
        ours = {"body": "server", "anchor": {"from": start, "to": start + 8}}
        assert (await collab.call("POST", f"/v1/letters/{lid}/comments", json=ours)).is_success
        # A browser-made anchor: Yjs relative positions sent as they are.
        at = TEXT.split("\n")[1].index("14 d")
        rel = await one.call("relative", para=1, start=at, end=at + 4)
        theirs = {"body": "browser", "anchor": {"start": rel["start"], "end": rel["end"]}}
        r = await collab.call("POST", f"/v1/letters/{lid}/comments", json=theirs)
        assert r.status_code == 201, r.text
        # Concurrent edits in the anchored line, before, inside and after the ranges.
        await asyncio.gather(
            one.call("insert", para=1, index=0, value="Hereby: "),
            two.call("insert", para=1, index=len("We demand 5000 EUR"), value=" (net)"),
            two.call("insert", para=0, index=0, value="Hello. "),
        )
        expected = "Hello. Dear Sir,\nHereby: We demand 5000 EUR (net) within 14 days.\nRegards"
        await one.call("waitText", equals=expected)
        await two.call("waitText", equals=expected)

        async def settled() -> dict[str, Any] | None:
            got = await _get(collab, lid)
            q = got["server"]["anchor"]
            return got if expected[q["from"] : q["to"]] == "5000 EUR" else None

        threads = await eventually(settled, timeout=10)
        assert threads["server"]["detached"] is False
        b = threads["browser"]["anchor"]
        assert expected[b["from"] : b["to"]] == "14 d" and b["quote"] == "14 d"
        # Yjs itself resolves the server's anchor to the same place.
        a = threads["server"]["anchor"]
        got = await two.call("resolve", anchors=[a["start"], a["end"]])
        line_start = expected.index("Hereby")
        assert [p["para"] for p in got["positions"]] == [1, 1]
        assert [p["index"] + line_start for p in got["positions"]] == [a["from"], a["to"]]
    finally:
        await one.quit()
        await two.quit()


def _units(text: str) -> int:
    """UTF-16 units: the indexes of Yjs (JavaScript strings)."""
    return len(text.encode("utf-16-le")) // 2


async def test_anchors_agree_with_yjs_over_non_ascii_text(collab: Collab) -> None:
    """Stock clients type BMP and astral characters before and inside the ranges (splitting the
    items that hold them): our code-point offsets, Yjs' own UTF-16 indexes and the quotes of a
    browser-made anchor all name the same text."""
    text = "Dear Sir,\nWe demand 5000 EUR within 14 days."
    lid = await collab.gw.create_letter(text)
    one, two = await _node(collab, lid, "n1"), await _node(collab, lid, "n2")
    try:
        start = text.index("5000")
        ours = {"body": "server", "anchor": {"from": start, "to": start + 8}}
        assert (await collab.call("POST", f"/v1/letters/{lid}/comments", json=ours)).is_success
        edits = [(1, " demand", "\u2019é"), (1, "000", "😀"), (0, "", "€ "), (1, "", "😀 ")]
        for para, before, value in edits:  # `value` typed just before `before`
            lines = text.split("\n")
            where = lines[para].index(before) if before else 0
            await one.call("insert", para=para, index=_units(lines[para][:where]), value=value)
            lines[para] = lines[para][:where] + value + lines[para][where:]
            text = "\n".join(lines)
        assert text == "€ Dear Sir,\n😀 We\u2019é demand 5😀000 EUR within 14 days."
        line = text.split("\n")[1]
        at = line.index("14")
        rel = await one.call("relative", para=1, start=_units(line[:at]), end=_units(line[:at]) + 2)
        theirs = {"body": "browser", "anchor": {"start": rel["start"], "end": rel["end"]}}
        await two.call("waitText", equals=text)
        r = await collab.call("POST", f"/v1/letters/{lid}/comments", json=theirs)
        assert r.status_code == 201, r.text

        async def settled() -> dict[str, Any] | None:
            got = await _get(collab, lid)
            q = got["server"]["anchor"]
            return got if text[q["from"] : q["to"]] == "5😀000 EUR" else None

        threads = await eventually(settled, timeout=10, interval=0.1)
        b = threads["browser"]["anchor"]
        assert text[b["from"] : b["to"]] == "14" and b["quote"] == "14"
        a = threads["server"]["anchor"]
        got = await two.call("resolve", anchors=[a["start"], a["end"]])
        line_start = text.index("😀 We")
        assert [p["para"] for p in got["positions"]] == [1, 1]
        assert [p["index"] for p in got["positions"]] == [
            _units(text[line_start : a["from"]]), _units(text[line_start : a["to"]])
        ]  # fmt: skip
    finally:
        await one.quit()
        await two.quit()
