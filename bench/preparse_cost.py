"""What the pre-parser costs per update (gateway/wire: check_update against a letter's DocShape,
then DocShape.commit), for what editors send: a keystroke, a Y.Map set (awareness-like app
state), a paste of 300 characters, an Enter (a new paragraph), a backspace. Ten clients with
random 53-bit ids each make 100 such edits of a TipTap-shaped letter (a Y.XmlFragment of
paragraphs), committed to the shape; then one more edit is checked and committed repeatedly.
Also a sync step 2 repeating a letter's 200,000 deleted ranges (what every reconnect of an
editor of a long-edited letter sends): checked with strip_pending, as the gateway does.

Prints, per row, the median and the minimum over `--repeat` timings of `--number` calls each
(microseconds of process CPU time a call; milliseconds for the step 2). The machine is noisy:
compare two trees in ONE run with `--compare`, which runs this script for each tree in turn,
`--rounds` times:

    .venv/bin/python bench/preparse_cost.py
    git archive f52c0d0~1 | tar -x -C /tmp/old
    .venv/bin/python bench/preparse_cost.py --compare /tmp/old [/tmp/other ...] --rounds 3
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("keystroke", "map set", "paste", "enter", "backspace")


def _edits(kind: str) -> list[bytes]:
    """101 rounds of `kind` by 10 clients, as the updates the clients sent, in order."""
    from pycrdt import Doc, Map, XmlElement, XmlFragment, XmlText

    ids = random.Random(kind)  # 53-bit ids (8-byte varints), the same in every run
    docs: list[Doc[Any]] = [Doc(client_id=1 << 52 | ids.getrandbits(52)) for _ in range(10)]
    out: list[bytes] = []
    texts = []
    for doc in docs:
        doc.observe(lambda event: out.append(event.update))
        fragment = doc.get("default", type=XmlFragment)
        paragraph = fragment.children.append(XmlElement("paragraph", {}, [XmlText("hello ")]))
        texts.append(paragraph.children[0])
    for n in range(101):
        for i, doc in enumerate(docs):
            text = texts[i]
            if kind == "keystroke":
                text.insert(len(text), "x")
            elif kind == "map set":
                doc.get("m", type=Map)[f"u{i}"] = {"n": n, "t": 1.0}
            elif kind == "paste":
                text.insert(len(text), "lorem ipsum " * 25)
            elif kind == "enter":
                fragment = doc.get("default", type=XmlFragment)
                fragment.children.append(XmlElement("paragraph", {}, [XmlText("new line")]))
            else:
                text.insert(len(text), "xy")  # two keys, then one taken back
                del text[len(text) - 1]
    return out


def _us(call: Callable[[], object], number: int, repeat: int) -> tuple[float, float]:
    runs = timeit.repeat(call, number=number, repeat=repeat, timer=time.process_time)
    times = [t / number * 1e6 for t in runs]
    return statistics.median(times), min(times)


def _checking(update: bytes, shape: Any) -> Callable[[], object]:
    from gateway.wire.limits import Limits
    from gateway.wire.shape import check_update

    limits = Limits()
    return lambda: check_update(update, limits, shape)


def _committing(info: Any, shape: Any) -> Callable[[], object]:
    return lambda: shape.commit(info)


def _typical(number: int, repeat: int) -> dict[str, tuple[float, float]]:
    from gateway.wire.limits import Limits
    from gateway.wire.shape import DocShape, check_update

    limits = Limits()
    rows: dict[str, tuple[float, float]] = {}
    for kind in KINDS:
        updates = _edits(kind)
        shape = DocShape()
        # The last round's first (a backspace: after its client's insert, committed too).
        cut = len(updates) - 19 if kind == "backspace" else len(updates) - 10
        for update in updates[:cut]:
            shape.commit(shape.check(update, limits))
        update = updates[cut]
        rows[f"{kind} ({len(update)} B) check"] = _us(_checking(update, shape), number, repeat)
        # The same info committed again and again: after the first, a duplicate that appends
        # nothing, so a lower bound (a first commit measured 1.8x these: 3-6 us).
        rows[f"{kind} re-commit"] = _us(_committing(check_update(update, limits, shape), shape),
                                     number, repeat)  # fmt: skip
    return rows


def _step2(repeat: int) -> tuple[float, float]:
    """A letter of one 400,000-character text, every other character deleted, and a step 2
    repeating its 200,000 deleted ranges (and nothing else)."""
    from pycrdt import write_var_uint as uint

    from gateway.wire.limits import Limits
    from gateway.wire.shape import DocShape, check_update

    client = 0x1F_2345_6789_ABCD  # a 53-bit id, as Yjs and pycrdt draw them
    n = 200_000
    ranges = b"".join(uint(2 * i + 1) + b"\x01" for i in range(n))
    delete_set = b"\x01" + uint(client) + uint(n) + ranges
    text = b"x" * (2 * n)
    struct = b"\x04\x01" + uint(1) + b"t" + uint(len(text)) + text
    state = b"\x01\x01" + uint(client) + b"\x00" + struct + delete_set
    shape = DocShape.from_update(state)
    step2 = b"\x00" + delete_set
    limits = Limits()

    def check() -> object:
        try:
            return check_update(step2, limits, shape, strip_pending=True)
        except TypeError:  # a tree from before strip_pending
            return check_update(step2, limits, shape)

    runs = timeit.repeat(check, number=1, repeat=repeat, timer=time.process_time)
    times = [t * 1e3 for t in runs]
    return statistics.median(times), min(times)


def _run(root: Path, number: int, repeat: int) -> dict[str, tuple[float, float]]:
    sys.path.insert(0, str(root))
    rows = _typical(number, repeat)
    rows["step 2 repeating 200,000 deleted ranges (ms)"] = _step2(max(3, repeat // 2))
    return rows


def _print(columns: dict[str, list[dict[str, tuple[float, float]]]]) -> None:
    names = list(next(iter(columns.values()))[0])
    header = "".join(f"{Path(tree).name or tree:>22}" for tree in columns)
    print(f"{'median (min)':<46}{header}")
    for name in names:
        cells = ""
        for runs in columns.values():
            medians = [run[name][0] for run in runs if name in run]
            mins = [run[name][1] for run in runs if name in run]
            cells += f"{statistics.median(medians):>13.1f} ({min(mins):5.1f})"
        print(f"{name:<46}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the source tree to measure")
    parser.add_argument("--compare", type=Path, nargs="+", help="other trees, measured in turn")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compare is None:
        rows = _run(args.root, args.number, args.repeat)
        if args.json:
            print(json.dumps(rows))
        else:
            _print({str(args.root): [rows]})
        return
    columns: dict[str, list[dict[str, tuple[float, float]]]] = {
        str(tree): [] for tree in [*args.compare, args.root]
    }
    for _ in range(args.rounds):
        for tree in columns:
            command = [sys.executable, __file__, "--json", "--root", tree]
            command += ["--number", str(args.number), "--repeat", str(args.repeat)]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            columns[tree].append(json.loads(done.stdout.splitlines()[-1]))
    _print(columns)


if __name__ == "__main__":
    main()
