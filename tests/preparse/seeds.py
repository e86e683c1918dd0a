"""Real updates to fuzz the pre-parser from: pycrdt edits recorded a transaction at a time,
(state before, update) pairs of them plus hand-made content kinds pycrdt never writes, and the
check that an accepted update applies to pycrdt."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText, merge_updates

from gateway.preparse import Limits, check_state_vector

from . import lib0

LIMITS = Limits()
FUZZ = settings(
    max_examples=1500,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def edit_text(doc: Doc) -> None:
    text = doc.get("text", type=Text)
    text += "hello world"
    text.insert(5, ", dear é😀 ")
    del text[0:2]
    text.format(0, 4, {"bold": True})
    text.insert_embed(3, {"image": "https://x/y.png"})
    text.format(1, 3, {"italic": True, "link": {"href": "https://x"}})


def edit_tiptap(doc: Doc) -> None:
    fragment = doc.get("default", type=XmlFragment)
    heading = fragment.children.append(XmlElement("heading", {"level": "1"}))
    heading.children.append(XmlText("Demand letter"))
    paragraph = fragment.children.append(XmlElement("paragraph"))
    body = paragraph.children.append(XmlText("Dear Sir or Madam, "))
    body.insert(len(str(body)), "we represent", {"bold": True})
    body.format(0, 4, {"italic": {}})
    paragraph.attributes["textAlign"] = "left"
    quote = fragment.children.append(XmlElement("blockquote"))
    quote.children.append(XmlElement("paragraph")).children.append(XmlText("quoted"))
    del body[0:5]


def edit_map_array(doc: Doc) -> None:
    root = doc.get("meta", type=Map)
    root["title"] = "Letter"
    root["n"] = 42
    root["f"] = 1.5
    root["big"] = 2**40
    root["flags"] = [True, False, None, {"deep": [1, [2, [3]]]}]
    root["blob"] = b"\x00\x01\xff"
    root["nested"] = Map({"inner": Map({"leaf": Array([1, "two", Text("three")])})})
    items = doc.get("items", type=Array)
    items.extend([1, "x", {"k": "v"}])
    items.insert(1, Map({"a": 1}))
    del items[0]
    del root["title"]


def edit_subdoc(doc: Doc) -> None:
    root = doc.get("docs", type=Map)
    root["sub"] = Doc()


EDITS: dict[str, Callable[[Doc], None]] = {
    "text": edit_text,
    "tiptap": edit_tiptap,
    "map_array": edit_map_array,
    "subdoc": edit_subdoc,
}


def record(edit: Callable[[Doc], None]) -> tuple[Doc, list[tuple[bytes, dict[int, int]]]]:
    """Run `edit`; return its per-transaction updates, each with the state vector before it
    (read by replaying them on a fresh Doc: the doc cannot be read inside its observer)."""
    doc: Doc[Any] = Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    edit(doc)
    replica: Doc[Any] = Doc()
    result = []
    for update in updates:
        result.append((update, check_state_vector(replica.get_state(), LIMITS)))
        replica.apply_update(update)
    return doc, result


def _seed_updates() -> list[tuple[bytes, bytes]]:
    """(state before, update) pairs: a mutated update is checked and applied on that state."""
    seeds = []
    for edit in EDITS.values():
        doc, recorded = record(edit)
        history = [update for update, _sv in recorded]
        seeds += [
            (merge_updates(*history[:i]) if i else b"", history[i]) for i in range(len(history))
        ]
        seeds.append((b"", doc.get_update()))
    text = bytes([0x04]) + b"\x01" + lib0.string("t") + lib0.string("ab")
    embed = bytes([0x85]) + lib0.uint(9) + b"\x01" + lib0.string('{"image": [1, {"x": null}]}')
    bold = bytes([0xC6]) + lib0.uint(9) + b"\x00" + lib0.uint(9) + b"\x01"
    bold += lib0.string("bold") + lib0.string("true")
    seeds.append((b"", lib0.update((9, 0, [text, embed, bold]))))
    blob = bytes([0x03]) + b"\x01" + lib0.string("a") + b"\x02\x00\xff"
    seeds.append((b"", lib0.update((9, 0, [blob, b"\x00\x03"]), deletes=b"\x01\x09\x01\x00\x01")))
    return seeds


SEEDS = _seed_updates()


def assert_applies(update: bytes, base: bytes = b"") -> None:
    doc: Doc[Any] = Doc()
    if base:
        doc.apply_update(base)
    try:
        doc.apply_update(update)
        doc.get_update()
    except BaseException as exc:  # a PanicException is a BaseException
        raise AssertionError(f"accepted update broke pycrdt: {update.hex()}") from exc
