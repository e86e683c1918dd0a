"""The attribution walk of `diff` (tools/diff.py `_attribute`) on a reviewer-like letter: two
co-editors each appending paragraphs of 64-character chunks to a Y.XmlFragment (10 per
paragraph, 140 paragraphs each), their updates synced at once and interleaved: after each
update the author changes with probability `--switch` (0.05: ~150 runs of ~20 updates, as the
reviewer's two y-websocket clients made; 0.5: ~1,500 runs of two): ~3,080 updates, a 179 KB
letter. With `--formatting`, one update in seven sets or clears bold or italic instead.
Times the whole range (from the first update) and an 800-update window in the middle, both
ends given as replays (`Replayed`); the log scan and the two replays are not counted. Prints the
median wall and process CPU time of `--runs` walks each.

With `--scattered text` (a Y.Text body, lines of 600 characters) or `--scattered paragraph`
(one long paragraph), the letter is instead 180 KB of lorem ipsum typed at once, then
`--scattered-runs` runs of two co-editors taking turns, each of `--edits` updates typing a word
or deleting a few characters at random places: nothing the run left untouched lies between its
edits (a Y.Text body's lines are rendered anew), so the whole text between its first and last
edit is compared (`tools.diff._Matcher`), within the diff's work budget (`tools.diff.Budget`);
the window is then the middle quarter of the updates. Prints how many runs went past it.

    .venv/bin/python bench/diff_walk.py --runs 5 [--switch 0.5] [--formatting]
    .venv/bin/python bench/diff_walk.py --runs 3 --scattered text [--edits 10] [--scattered-runs 40]

With `--alternating N`, the letter is instead N updates of two co-editors taking turns, each
update a paragraph of its own (64 characters) appended: N runs of one update, N paragraphs.
Times the diff from the first update to the 600th, the 1,500th and the last, to show how its
cost grows with the runs and the letter's length together (an auditor's 3,006-update letter).

    .venv/bin/python bench/diff_walk.py --runs 3 --alternating 3006
"""

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from pycrdt import Doc, Text, XmlElement, XmlFragment, XmlText

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from projector.document import DocUpdate  # noqa: E402
from snapshotter.document import LetterDocument  # noqa: E402
from tools.diff import Budget, _attribute  # noqa: E402
from tools.replay import Replayed  # noqa: E402

Log = list[tuple[str, bytes]]


def letter(formatting: bool, switch: float, paragraphs: int = 140, chunks: int = 10) -> Log:
    rng = random.Random(0)
    docs: list[Doc[Any]] = [Doc(), Doc()]
    roots = [doc.get("default", type=XmlFragment) for doc in docs]
    made, typed, texts = [0, 0], [chunks, chunks], [XmlText(), XmlText()]
    log: Log = []
    k = 0
    while made[0] < paragraphs or made[1] < paragraphs or min(typed) < chunks:
        k = 1 - k if rng.random() < switch else k
        if made[k] >= paragraphs and typed[k] >= chunks:
            k = 1 - k
        before = docs[k].get_state()
        text = texts[k]
        if formatting and typed[k] and rng.random() < 1 / 7:
            at = rng.randrange(len(text) - 5)
            marks: dict[str, Any] = rng.choice([{"bold": {}}, {"italic": {}}, {"bold": None}])
            text.format(at, at + rng.randint(1, 5), marks)
        elif typed[k] >= chunks:
            roots[k].children.append(XmlElement("paragraph", {}, [XmlText()]))
            texts[k] = roots[k].children[len(roots[k].children) - 1].children[0]
            made[k], typed[k] = made[k] + 1, 0
        else:
            words = "lorem ipsum dolor sit amet consectetur adipiscing elit. "
            text.insert(len(text), f"{'AB'[k]}{made[k]:04d}.{typed[k]} {words}"[:64])
            typed[k] += 1
        update = docs[k].get_update(before)
        docs[1 - k].apply_update(update)
        log.append((f"user-{k}", update))
    return log


def alternating(updates: int) -> Log:
    doc: Doc[Any] = Doc()
    root = doc.get("default", type=XmlFragment)
    words = "lorem ipsum dolor sit amet consectetur adipiscing elit. "
    log: Log = []
    for i in range(updates):
        before = doc.get_state()
        root.children.append(XmlElement("paragraph", {}, [XmlText(f"{i:05d} {words}"[:64])]))
        log.append((f"user-{i % 2}", doc.get_update(before)))
    return log


def scattered(body: str, edits: int, runs: int = 40, size: int = 180_000) -> Log:
    rng = random.Random(0)
    doc: Doc[Any] = Doc()
    words = "lorem ipsum dolor sit amet consectetur adipiscing elit. "
    typed = (words * (size // len(words) + 1))[:size]
    if body == "text":
        text: Any = doc.get("default", type=Text)
        text.insert(0, "\n".join(typed[i : i + 600] for i in range(0, size, 600)))
    else:
        root = doc.get("default", type=XmlFragment)
        root.children.append(XmlElement("paragraph", {}, [XmlText(typed)]))
        text = root.children[0].children[0]
    log: Log = [("user-0", doc.get_update())]
    for run in range(runs):
        for _ in range(edits):
            before = doc.get_state()
            at = rng.randrange(len(text) - 10)
            if rng.random() < 0.5:
                text.insert(at, rng.choice(["the ", "claim ", "Sir ", "we "]))
            else:
                del text[at : at + rng.randint(1, 6)]
            log.append((f"user-{run % 2}", doc.get_update(before)))
    return log


def replayed(log: Log, upto: int) -> Replayed:
    doc: Doc[Any] = Doc()
    for _, update in log[:upto]:
        doc.apply_update(update)
    state = doc.get_update()
    return Replayed("l", 0, state, 0, None, None, 0, LetterDocument("default", state).snapshot())


def walk(log: Log, lo: int, hi: int, runs: int) -> str:
    a, b = replayed(log, lo), replayed(log, hi)
    grouped: list[tuple[str, list[DocUpdate]]] = []
    for offset, (user, update) in enumerate(log[lo:hi], start=lo):
        if not grouped or grouped[-1][0] != user:
            grouped.append((user, []))
        grouped[-1][1].append(DocUpdate(offset, "", 0, update))
    wall, cpu, budget = [], [], Budget()
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        budget = Budget.for_letter(len(b.snapshot.content))  # as tools.diff.diff() does
        _attribute(a, b, grouped, "default", budget)
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return (
        f"{hi - lo} updates, {len(grouped)} runs, {len(b.snapshot.content):,} chars: "
        f"wall {statistics.median(wall):.2f} s, CPU {statistics.median(cpu):.2f} s, "
        f"{budget.coarse} runs past the budget"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--switch", type=float, default=0.05)
    parser.add_argument("--formatting", action="store_true")
    parser.add_argument("--scattered", choices=["text", "paragraph"])
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument("--scattered-runs", type=int, default=40)
    parser.add_argument("--alternating", type=int)
    args = parser.parse_args()
    if args.alternating:
        log = alternating(args.alternating)
        for upto in sorted({min(600, len(log)), min(1500, len(log)), len(log)}):
            print(f"first {upto}:".ljust(12), walk(log, 1, upto, args.runs))
        return
    if args.scattered:
        log = scattered(args.scattered, args.edits, args.scattered_runs)
        middle, window = 3 * len(log) // 8, len(log) // 4
    else:
        log = letter(args.formatting, args.switch)
        middle, window = len(log) // 3, 800
    print("whole range:", walk(log, 1, len(log), args.runs))
    print("window:     ", walk(log, middle, middle + window, args.runs))


if __name__ == "__main__":
    main()
