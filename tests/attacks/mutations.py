"""Valid y-protocol frames from a client's replica of a letter, and byte-level mutations of them.

The frame-handler fuzz (test_handler_fuzz.py) builds each frame from `Replica`, a pycrdt doc that
follows what the gateway sends, so unmutated frames are accepted (edits apply to the letter's
current state); `mutate` then damages them the way a fuzzer does: bit flips, boundary bytes,
inserted/deleted/duplicated ranges, truncation, splices of two frames and oversized varints.
"""

import json
import random
from collections.abc import Callable
from typing import Any

from pycrdt import (
    Array,
    Awareness,
    Doc,
    Map,
    Text,
    XmlElement,
    XmlFragment,
    XmlText,
    create_awareness_message,
    create_sync_message,
)

from gateway.preparse import STATE_LIMITS, parse_frame
from tests.preparse import lib0

INTERESTING = (0x00, 0x01, 0x02, 0x03, 0x64, 0x7F, 0x80, 0x81, 0xFE, 0xFF)
BIG = (2**7, 2**14, 2**21, 2**28, 2**31, 2**32, 2**32 - 2**20, 2**53 - 1, 2**53, 2**63)
APP = ('{"type":"typing"}', '{"type":"comment.list","id":"1"}', '{"type":"nope","id":2}')
WORDS = ("a", "lorem ", "ipsum", "é", "😀", "\n", "dolor sit amet ")
# Y.Text edits stay ASCII: pycrdt 0.14 counts indices differently from Yrs for other text, and
# a local delete inside a multi-byte character panics Yrs in the replica (a client-side bug).
TEXT_WORDS = ("a", "lorem ", "ipsum", "\n", "dolor sit amet ")


def _json_value(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(6 if depth < 3 else 4)
    if pick == 0:
        return rng.randrange(-(2**40), 2**40)
    if pick == 1:
        return rng.choice(WORDS)
    if pick == 2:
        return rng.choice((None, True, False, 1.5))
    if pick == 3:
        return "x" * rng.randrange(0, 40)
    if pick == 4:
        return [_json_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {f"k{i}": _json_value(rng, depth + 1) for i in range(rng.randrange(4))}


class Replica:
    """One attacker connection's copy of the letter: applies what the gateway sends, makes edits."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.doc: Doc[Any] = Doc(client_id=rng.randrange(1, 2**31))
        self.awareness = Awareness(self.doc)

    def absorb(self, message: bytes) -> None:
        """Apply a sync step 2 / update the gateway sent (it passed the pre-parser there)."""
        if message[:2] in (b"\x00\x01", b"\x00\x02"):
            self.doc.apply_update(parse_frame(message, STATE_LIMITS).body)

    def step2(self, step1: bytes) -> bytes:
        """The answer to the gateway's sync step 1: what this replica has that the letter lacks.
        Until a client's step 2 has come, the gateway drops (not refuses) updates that build on
        edits it lacks, as such a step 2 will carry them (Connection._before_sync)."""
        return lib0.sync(1, self.doc.get_update(parse_frame(step1, STATE_LIMITS).body))

    def frame(self) -> bytes:
        """One valid frame: mostly edits, also sync steps, awareness, queries, auth and app."""
        kind = self.rng.choices(list(self._KINDS), weights=[w for w, _ in self._KINDS.values()])[0]
        return self._KINDS[kind][1](self)

    def _edit(self, change: Callable[[Doc[Any]], None], sub: int = 2) -> bytes:
        before = self.doc.get_state()
        change(self.doc)
        return lib0.sync(sub, self.doc.get_update(before))

    def _text(self) -> bytes:
        text = self.doc.get("text", type=Text)

        def change(_: Doc[Any]) -> None:
            size = len(text)
            if size > 20 and self.rng.random() < 0.3:
                start = self.rng.randrange(size - 1)
                del text[start : start + self.rng.randrange(1, min(8, size - start) + 1)]
            elif size > 5 and self.rng.random() < 0.2:
                start = self.rng.randrange(size - 1)
                text.format(start, start + 1, {"bold": True})
            else:
                text.insert(self.rng.randrange(size + 1), self.rng.choice(TEXT_WORDS))

        return self._edit(change)

    def _map(self) -> bytes:
        meta = self.doc.get("meta", type=Map)

        def change(_: Doc[Any]) -> None:
            key = f"k{self.rng.randrange(8)}"
            meta[key] = (
                Map({"v": _json_value(self.rng)})
                if self.rng.random() < 0.3
                else (_json_value(self.rng))
            )

        return self._edit(change)

    def _array(self) -> bytes:
        items = self.doc.get("arr", type=Array)

        def change(_: Doc[Any]) -> None:
            if len(items) > 4 and self.rng.random() < 0.3:
                del items[self.rng.randrange(len(items))]
            else:
                items.append(_json_value(self.rng))

        return self._edit(change)

    def _xml(self) -> bytes:
        body = self.doc.get("default", type=XmlFragment)

        def change(_: Doc[Any]) -> None:
            paragraph = XmlElement("paragraph", {}, [XmlText(self.rng.choice(WORDS))])
            body.children.insert(self.rng.randrange(len(body.children) + 1), paragraph)

        return self._edit(change)

    def _step1(self) -> bytes:
        return create_sync_message(self.doc)

    def _step2(self) -> bytes:
        return lib0.sync(1, self.doc.get_update())

    def _awareness(self) -> bytes:
        state = {"cursor": {"anchor": self.rng.randrange(100)}, "status": self.rng.choice(WORDS)}
        self.awareness.set_local_state(state)
        return create_awareness_message(
            self.awareness.encode_awareness_update([self.doc.client_id])
        )

    def _app(self) -> bytes:
        return lib0.uint(100) + lib0.string(self.rng.choice(APP))

    def _auth(self) -> bytes:
        return b"\x02\x00" + lib0.string(json.dumps({"reason": self.rng.choice(WORDS)}))

    _KINDS: dict[str, tuple[int, Callable[["Replica"], bytes]]] = {
        "text": (30, _text),
        "map": (8, _map),
        "array": (6, _array),
        "xml": (6, _xml),
        "step1": (6, _step1),
        "step2": (4, _step2),
        "awareness": (10, _awareness),
        "query": (3, lambda self: b"\x03"),
        "auth": (2, _auth),
        "app": (5, _app),
    }


def mutate(rng: random.Random, frame: bytes, others: list[bytes]) -> bytes:
    """One to three random byte-level mutations of `frame` (`others`: frames to splice in)."""
    data = bytearray(frame)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        _MUTATIONS[rng.randrange(len(_MUTATIONS))](rng, data, others)
    return bytes(data)


def _at(rng: random.Random, data: bytearray) -> int:
    # Headers and the first lengths are where most parsing decisions are taken: favour them.
    return (
        rng.randrange(min(len(data) + 1, 6)) if rng.random() < 0.4 else rng.randrange(len(data) + 1)
    )


def _flip(rng: random.Random, data: bytearray, _: list[bytes]) -> None:
    if data:
        data[min(_at(rng, data), len(data) - 1)] ^= 1 << rng.randrange(8)


def _boundary(rng: random.Random, data: bytearray, _: list[bytes]) -> None:
    if data:
        data[min(_at(rng, data), len(data) - 1)] = rng.choice(INTERESTING)


def _insert(rng: random.Random, data: bytearray, _: list[bytes]) -> None:
    i = _at(rng, data)
    data[i:i] = rng.randbytes(rng.randrange(1, 9))


def _delete(rng: random.Random, data: bytearray, _: list[bytes]) -> None:
    i = _at(rng, data)
    del data[i : i + rng.randrange(1, 9)]


def _duplicate(rng: random.Random, data: bytearray, _: list[bytes]) -> None:
    i, j = sorted((rng.randrange(len(data) + 1), rng.randrange(len(data) + 1)))
    k = _at(rng, data)
    data[k:k] = data[i:j] * rng.choice((1, 2, 16))


def _truncate(rng: random.Random, data: bytearray, _: list[bytes]) -> None:
    del data[rng.randrange(len(data) + 1) :]


def _splice(rng: random.Random, data: bytearray, others: list[bytes]) -> None:
    other = rng.choice(others)
    data[_at(rng, data) :] = other[rng.randrange(len(other) + 1) :]


def _varint(rng: random.Random, data: bytearray, _: list[bytes]) -> None:
    i = _at(rng, data)
    data[i : i + rng.choice((0, 1))] = lib0.uint(rng.choice(BIG))


_MUTATIONS = (_flip, _boundary, _insert, _delete, _duplicate, _truncate, _splice, _varint)
