"""Content that does not fit its parent is refused (`misplaced_content`): y-tiptap throws on a
string under the letter's Y.XmlFragment, on every rerender, so nobody could open the letter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import Doc, Map, Text, XmlElement, XmlFragment, XmlText

from gateway.content import initial_update
from gateway.preparse import DocShape, Limits, ProtocolError, check_update
from gateway.wire.update import TYPE, TYPE_CONTENT, scan_update

from . import lib0

LIMITS = Limits()
STATE = initial_update("hello", "default")  # a TipTap letter: <paragraph>hello</paragraph>
CLIENT = 4242


def _edit(edit: Callable[[Doc[Any]], object], state: bytes = STATE) -> bytes:
    doc: Doc[Any] = Doc()
    if state:
        doc.apply_update(state)
    before = doc.get_state()
    edit(doc)
    return doc.get_update(before)


def _refused(update: bytes, state: bytes = STATE) -> None:
    with pytest.raises(ProtocolError) as caught:
        DocShape.from_update(state).check(update, LIMITS)
    assert caught.value.reason == "misplaced_content"
    assert caught.value.close_code == 4400


def _type_id(state: bytes, type_ref: int) -> tuple[int, int]:
    """(client, clock) of the first type item of that type ref in `state`."""
    scan = scan_update(state, LIMITS)
    j = next(
        j
        for j, kind in enumerate(scan.kind)
        if kind == TYPE and scan.content[j] & 31 == TYPE_CONTENT + type_ref
    )
    return scan.client[j], scan.start[j]


def _under(parent: tuple[int, int], content: bytes, key: str | None = None) -> bytes:
    """An update of one item with `content` (info byte, then its bytes) whose parent is the type
    item `parent`; with `key`, an attribute."""
    info = content[0] | (0x20 if key is not None else 0)
    sub = b"" if key is None else lib0.string(key)
    struct = bytes([info]) + lib0.uint(0) + lib0.uint(parent[0]) + lib0.uint(parent[1])
    return lib0.update((CLIENT, 0, [struct + sub + content[1:]]))


STRING = bytes([0x04]) + lib0.string("x")
EMBED = bytes([0x05]) + lib0.string('{"a":1}')
ANY = bytes([0x08]) + lib0.uint(1) + bytes([119]) + lib0.string("x")
ELEMENT = bytes([0x07, 3]) + lib0.string("paragraph")
XML_TEXT = bytes([0x07, 6])
FORMAT = bytes([0x06]) + lib0.string("bold") + lib0.string("{}")
DELETED = bytes([0x01]) + lib0.uint(1)


def _fragment(doc: Doc[Any]) -> XmlFragment:
    return doc.get("default", type=XmlFragment)


def _paragraph(doc: Doc[Any]) -> XmlElement:
    paragraph = _fragment(doc).children[0]
    assert isinstance(paragraph, XmlElement)
    return paragraph


def _text(doc: Doc[Any]) -> XmlText:
    text = _paragraph(doc).children[0]
    assert isinstance(text, XmlText)
    return text


def test_text_typed_into_the_letters_fragment_is_refused() -> None:
    # The attack: the root got as a Y.Text, before the paragraph (right origin) or after it.
    _refused(_edit(lambda d: d.get("default", type=Text).insert(0, "x")))
    _refused(_edit(lambda d: d.get("default", type=Text).insert(1, "x")))


def test_a_text_straight_under_the_letters_fragment_is_refused() -> None:
    # ProseMirror's doc is `block+`: y-tiptap throws on a Y.XmlText there, shows the letter
    # empty, and the next keystroke rewrites the letter without what it could not read.
    _refused(_edit(lambda d: d.get("default", type=XmlFragment).children.append(XmlText("x"))))
    _refused(_edit(lambda d: d.get("default", type=XmlFragment).children.insert(0, XmlText("x"))))


def test_an_element_into_a_text_body_is_refused() -> None:
    text_body = _edit(lambda d: d.get("default", type=Text).insert(0, "Dear Sir"), b"")
    _refused(
        _edit(lambda d: _fragment(d).children.insert(0, XmlElement("p")), text_body), text_body
    )
    typing = _edit(lambda d: d.get("default", type=Text).insert(8, ","), text_body)
    DocShape.from_update(text_body).check(typing, LIMITS)  # its own family is fine


@pytest.mark.parametrize(
    "content",
    [STRING, EMBED, ANY, FORMAT, XML_TEXT],
    ids=["string", "embed", "any", "format", "text"],
)
def test_only_elements_and_texts_are_children_of_an_element(content: bytes) -> None:
    paragraph = _type_id(STATE, 3)
    if content == XML_TEXT:
        DocShape.from_update(STATE).check(_under(paragraph, content), LIMITS)
        return
    _refused(_under(paragraph, content))
    # As an attribute (a map key) anything goes: y-tiptap reads it as a node attribute.
    DocShape.from_update(STATE).check(_under(paragraph, content, key="k"), LIMITS)


@pytest.mark.parametrize(
    "content", [EMBED, ANY, ELEMENT, XML_TEXT], ids=["embed", "any", "element", "text"]
)
def test_only_text_and_formats_are_children_of_an_xml_text(content: bytes) -> None:
    _refused(_under(_type_id(STATE, 6), content))


def test_an_item_takes_its_parent_from_its_origin() -> None:
    # A string after the paragraph's Y.XmlText is a child of the paragraph, not of the text.
    client, clock = _type_id(STATE, 6)
    after_text = bytes([0x84]) + lib0.uint(client) + lib0.uint(clock) + lib0.string("x")
    _refused(lib0.update((CLIENT, 0, [after_text])))
    # And one whose left origin is fine but whose right origin is not: Yrs may take the right.
    letter = DocShape.from_update(STATE)
    text_id = lib0.uint(client) + lib0.uint(clock)
    inside = _edit(lambda d: _text(d).insert(5, "!"))
    letter.accept(inside, LIMITS)
    (typed,) = [b for b in scan_update(inside, LIMITS).blocks]
    both = bytes([0xC4]) + lib0.uint(typed[0]) + lib0.uint(typed[1]) + text_id + lib0.string("y")
    with pytest.raises(ProtocolError) as caught:
        letter.check(lib0.update((CLIENT, 0, [both])), LIMITS)
    assert caught.value.reason == "misplaced_content"


def test_deleted_content_fits_anywhere() -> None:
    DocShape.from_update(STATE).check(_under(_type_id(STATE, 3), DELETED), LIMITS)
    DocShape.from_update(STATE).check(_under(_type_id(STATE, 6), DELETED), LIMITS)
    root = bytes([0x01]) + lib0.uint(1) + lib0.string("default") + lib0.uint(3)
    DocShape.from_update(STATE).check(lib0.update((CLIENT, 0, [root])), LIMITS)


def test_what_tiptap_writes_is_accepted() -> None:
    letter = DocShape.from_update(STATE)
    edits: list[Callable[[Doc[Any]], object]] = [
        lambda d: _text(d).insert(5, " world"),
        lambda d: _text(d).format(0, 5, {"bold": {}}),
        lambda d: _paragraph(d).attributes.__setitem__("textAlign", "left"),
        lambda d: _fragment(d).children.insert(
            1, XmlElement("bulletList", {}, [XmlElement("listItem", {}, [XmlText("a")])])
        ),
        lambda d: d.get("__tiptapcollab__threads", type=Map).__setitem__("t", "anything"),
        lambda d: d.get("text", type=Text).insert(0, "another root is not the letter's"),
    ]
    for edit in edits:
        letter.check(_edit(edit), LIMITS)


def test_an_empty_root_takes_either_family_then_keeps_it() -> None:
    for first, other in ((Text, XmlFragment), (XmlFragment, Text)):
        letter, doc = DocShape(), Doc[Any]()
        body = doc.get("default", type=first)
        if first is Text:
            body.insert(0, "Dear Sir")
        else:
            body.children.insert(0, XmlElement("paragraph", {}, [XmlText("Dear Sir")]))
        letter.accept(doc.get_update(), LIMITS)
        later = _edit(
            lambda d, other=other: (
                d.get("default", type=Text).insert(0, "x")  # type: ignore[misc]
                if other is Text
                else _fragment(d).children.insert(0, XmlElement("p"))
            ),
            doc.get_update(),
        )
        with pytest.raises(ProtocolError) as caught:
            letter.check(later, LIMITS)
        assert caught.value.reason == "misplaced_content"
        # Reloaded from its stored state, the letter still knows its family.
        with pytest.raises(ProtocolError):
            DocShape.from_update(doc.get_update()).check(later, LIMITS)


def test_one_update_may_not_mix_families_in_an_empty_root() -> None:
    text = bytes([0x04]) + lib0.uint(1) + lib0.string("default") + lib0.string("x")
    element = bytes([0x87]) + lib0.uint(CLIENT) + lib0.uint(0) + ELEMENT[1:]  # after the "x"
    with pytest.raises(ProtocolError) as caught:
        DocShape().check(lib0.update((CLIENT, 0, [text, element])), LIMITS)
    assert caught.value.reason == "misplaced_content"


def test_trusted_state_is_recorded_not_refused() -> None:
    # A letter broken before this check still loads (its stored state, its log).
    shape = DocShape.from_update(STATE)
    family = shape.family
    shape.absorb(_edit(lambda d: d.get("default", type=Text).insert(0, "x")))
    assert family != 0 and shape.family == family  # recorded, the letter's family kept
    # Without a shape, the root's family is not known: only slots within the update are.
    info = check_update(_edit(lambda d: d.get("default", type=Text).insert(0, "x")), LIMITS)
    assert info.blocks  # checked, not refused
