"""Co-editors of a TipTap letter making random edits that reach each other late: the updates
in the order a log holds them (pure: pycrdt only)."""

import random
from typing import Any

from pycrdt import Doc, XmlElement, XmlFragment, XmlText

FIELD = "default"
WORDS = ["the", "claim", "Sir", "we", "write", "of", "é", "😀"]


def _edit(rng: random.Random, doc: Doc[Any], body: Any) -> None:
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
    blocks = list(body.children)
    if not blocks or rng.random() < 0.25:
        body.children.insert(
            rng.randint(0, len(blocks)), XmlElement("paragraph", {}, [XmlText(words)])
        )
        return
    index = rng.randrange(len(blocks))
    text = blocks[index].children[0]
    plain = "".join(part for part, _ in text.diff() if isinstance(part, str))
    at = [len(plain[:i].encode()) for i in range(len(plain) + 1)]  # yrs counts UTF-8 bytes
    start, stop = sorted(rng.sample(range(len(at)), 2) if len(at) > 1 else [0, 0])
    roll = rng.random()
    if roll < 0.4:
        text.insert(at[start], words + " ", rng.choice([None, {"bold": {}}]))
    elif roll < 0.6 and plain:
        del text[at[start] : at[min(stop, start + 6)]]
    elif roll < 0.8 and plain:
        text.format(
            at[start], at[min(stop, start + 8)], rng.choice([{"italic": {}}, {"bold": None}])
        )
    elif roll < 0.9:
        level: Any = {"level": 2}  # a number, as the editor writes it
        with doc.transaction():  # retyped as a heading, as the editor does
            del body.children[index]
            body.children.insert(index, XmlElement("heading", level, [XmlText(plain)]))
    elif len(blocks) > 1:
        del body.children[index]


def late_coedits(seed: int) -> list[bytes]:
    """Three co-editors whose updates reach each other late, in log order."""
    rng = random.Random(seed)
    docs: list[Doc[Any]] = [Doc(client_id=i + 1) for i in range(3)]
    inboxes: list[list[bytes]] = [[], [], []]
    log: list[bytes] = []
    for _ in range(40):
        i = rng.randrange(3)
        for update in inboxes[i]:
            docs[i].apply_update(update)
        inboxes[i].clear()
        before = docs[i].get_state()
        _edit(rng, docs[i], docs[i].get(FIELD, type=XmlFragment))
        log.append(docs[i].get_update(before))
        for j in range(3):
            if j != i:
                inboxes[j].append(log[-1])
    return log
