"""CPU time of the projector's `fold_document` on a stored clean state: re-encoded to look for
pending parts (`clean=False`, as before 2026-12-05) against known clean (`clean=True`).

    .venv/bin/python bench/projector_fold.py

Shapes: catch-up (a 100-edit letter, batches of 50) and live (2,000 / 10,000 edits, batches
of 5); every 7th edit a backspace. Best of 41 rounds, the two modes alternating so that a busy
machine slows both alike (docs/performance.md, Projector).
"""

import argparse
import time
import timeit
from functools import partial

from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from projector.document import DocUpdate, fold_document

SHAPES = [(100, 50, 2000), (2000, 5, 1000), (10000, 5, 200)]  # (edits, batch, calls per round)


def edits(n: int) -> list[bytes]:
    doc: Doc[XmlFragment] = Doc()
    root = doc.get("default", type=XmlFragment)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    root.children.append(XmlElement("paragraph", {}, [XmlText("")]))
    text = root.children[0].children[0]
    for i in range(n):
        if i % 50 == 0 and len(root.children) < 200:
            root.children.append(XmlElement("paragraph", {}, [XmlText("")]))
            text = root.children[len(root.children) - 1].children[0]
        if i % 7 == 6 and len(text) > 0:
            del text[len(text) - 1]
        else:
            text.insert(len(text), "abcdefghij"[i % 10])
    return updates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=41)
    rounds = parser.parse_args().rounds
    for n, size, calls in SHAPES:
        updates = edits(n + size)
        stored = [DocUpdate(i, "u", 0, u) for i, u in enumerate(updates[:n])]
        base = fold_document(b"\x00\x00", stored, "default").state
        batch = [DocUpdate(i, "u", 0, u) for i, u in enumerate(updates[n:])]
        best = {False: float("inf"), True: float("inf")}
        for _ in range(rounds):
            for clean in (False, True):
                fold = partial(fold_document, base, batch, "default", clean=clean)
                timer = timeit.Timer(fold, timer=time.process_time)
                best[clean] = min(best[clean], timer.timeit(number=calls // 5) / (calls // 5))
        saved = 1 - best[True] / best[False]
        print(
            f"{n:>6} edits ({len(base):>6} B), batch of {size:>2}: checked"
            f" {best[False] * 1e6:8.1f} us, known clean {best[True] * 1e6:8.1f} us,"
            f" saved {saved:.0%}"
        )


if __name__ == "__main__":
    main()
