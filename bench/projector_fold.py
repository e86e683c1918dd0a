"""CPU time (process CPU) of the projector's `fold_document`, two ways.

    .venv/bin/python bench/projector_fold.py [--rounds 41] [--chain-rounds 3]

The letter is `edits(n)`: n keystrokes, every 7th a backspace, a new paragraph every 50 up to
200 paragraphs; one update per keystroke and one per paragraph added.

Stored rows: a batch of exactly `size` updates (the letter's last) folded onto the stored state
of the ones before it, the SAME state every call, re-encoded to look for pending parts
(`clean=False`, as before 2026-12-05) against known clean (`clean=True`). Best of `--rounds`,
the two modes alternating so that a busy machine slows both alike. Such a fold never finds a
kept scratch doc (`projector.document._Kept`): it is a letter's first fold after a restart.
(Before 2026-12-07 these batches were 54, 47 and 205 updates: `edits()` adds paragraphs.)

Chained rows: the letter's last 1,000 updates folded in batches of `size`, each fold starting
from the state the previous one saved (and its `clean`), three users taking turns, as the
consumer folds a live letter. Each fold is timed alone; median and mean per fold over
`--chain-rounds` chains (docs/performance.md, Projector).
"""

import argparse
import statistics
import time
import timeit
from functools import partial
from typing import cast

from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from projector.document import DocUpdate, fold_document

STORED = [(100, 50, 2000), (2000, 5, 1000), (10000, 5, 200)]  # (keystrokes, batch, calls/round)
CHAINED = [(10000, 5), (2000, 5), (2000, 50), (10000, 1)]  # (keystrokes, batch)
CHAIN = 1000  # updates folded by a chain
CLIENT = 0xC0FFEE42  # a browser's (Yjs: 32 bits); pycrdt draws ~53, and its varints moved the sizes


def edits(n: int) -> list[bytes]:
    """The updates of a letter of `n` keystrokes (more updates than that: paragraphs added)."""
    doc: Doc[XmlFragment] = Doc(client_id=CLIENT)
    root = doc.get("default", type=XmlFragment)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    root.children.append(XmlElement("paragraph", {}, [XmlText("")]))
    text = paragraph_text(root, 0)
    for i in range(n):
        if i % 50 == 0 and len(root.children) < 200:
            root.children.append(XmlElement("paragraph", {}, [XmlText("")]))
            text = paragraph_text(root, len(root.children) - 1)
        if i % 7 == 6 and len(text) > 0:
            del text[len(text) - 1]
        else:
            text.insert(len(text), "abcdefghij"[i % 10])
    return updates


def paragraph_text(root: XmlFragment, index: int) -> XmlText:
    return cast(XmlText, cast(XmlElement, root.children[index]).children[0])


def split(updates: list[bytes], last: int) -> tuple[bytes, list[DocUpdate]]:
    """The stored state of all but the `last` updates, and those as three users' records. The
    state is folded without attribution, so that no scratch doc is kept for it."""
    logged = [DocUpdate(i, f"u{i % 3}", i, u) for i, u in enumerate(updates)]
    state = fold_document(b"\x00\x00", logged[:-last], "default", attribute=False).state
    return state, logged[-last:]


def stored(n: int, size: int, calls: int, rounds: int) -> None:
    base, batch = split(edits(n + size), size)
    best = {False: float("inf"), True: float("inf")}
    for _ in range(rounds):
        for clean in (False, True):
            fold = partial(fold_document, base, batch, "default", clean=clean)
            timer = timeit.Timer(fold, timer=time.process_time)
            best[clean] = min(best[clean], timer.timeit(number=calls // 5) / (calls // 5))
    saved = 1 - best[True] / best[False]
    print(
        f"stored  {n:>6} keystrokes ({len(base):>6} B), batch of {len(batch):>2}: checked"
        f" {best[False] * 1e6:8.1f} us, known clean {best[True] * 1e6:8.1f} us, saved {saved:.0%}"
    )


def chained(n: int, size: int, rounds: int) -> None:
    base, rest = split(edits(n), CHAIN)
    times: list[int] = []
    for _ in range(rounds):
        state, clean = base, True
        for i in range(0, len(rest), size):
            start = time.process_time_ns()
            result = fold_document(state, rest[i : i + size], "default", clean)
            times.append(time.process_time_ns() - start)
            state, clean = result.state, result.clean
    print(
        f"chained {n:>6} keystrokes ({len(base):>6} B), batch of {size:>2}:"
        f" median {statistics.median(times) / 1e3:8.1f} us,"
        f" mean {statistics.fmean(times) / 1e3:8.1f} us per fold ({len(times)} folds)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=41, help="of the stored rows")
    parser.add_argument("--chain-rounds", type=int, default=3, help="chains of each shape")
    args = parser.parse_args()
    for n, size, calls in STORED:
        stored(n, size, calls, args.rounds)
    for n, size in CHAINED:
        chained(n, size, args.chain_rounds)


if __name__ == "__main__":
    main()
