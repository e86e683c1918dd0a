"""What one deletion costs the snapshotter in a letter of many Yjs clients: process CPU of
`LetterDocument.apply` (the update applied, then looked at for pending parts:
`schemas.ystate.pending_parts`) per backspace of one writer. Every page load is a Yjs client of
its own, so an old letter's state vector names thousands; a deletion's look compares its delete
set with that vector (docs/performance.md "Snapshotter").

A TipTap-shaped letter (a Y.XmlFragment of paragraphs) gets one character from each of
`--clients` Yjs clients; one more client types `--deletions` characters into it, then takes
them back one backspace at a time. Each backspace's `apply` is timed; a run's figure is the
median of them, the figure printed the median of `--runs` runs (and their range).

    .venv/bin/python bench/snapshotter_deletion.py [--clients 300 3000] [--runs 5]

Compare trees in one run (each measured in a process of its own, in turn, `--runs` rounds):

    git archive 24f2368~1 | tar -x -C /tmp/old
    .venv/bin/python bench/snapshotter_deletion.py --compare /tmp/old
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIELD = "default"  # schemas/settings.py `doc_field`


def _letter(clients: int, typed: int) -> tuple[bytes, list[bytes], list[bytes]]:
    """The letter's state with one character of each of `clients` Yjs clients; the writer's
    `typed` keystrokes and then its backspaces, as the updates it sent."""
    from pycrdt import Doc, XmlElement, XmlFragment, XmlText

    base: Doc[Any] = Doc(client_id=1)
    base.get(FIELD, type=XmlFragment).children.append(XmlElement("paragraph", {}, [XmlText("")]))
    start = base.get_update()
    letter: Doc[Any] = Doc()
    letter.apply_update(start)
    for n in range(clients):
        # Each from the first paragraph alone: concurrent inserts at its start, no need to
        # load the letter grown so far (which made building 3,000 clients quadratic).
        visitor: Doc[Any] = Doc(client_id=1_000 + n)
        visitor.apply_update(start)
        text = visitor.get(FIELD, type=XmlFragment).children[0].children[0]
        before = visitor.get_state()
        text.insert(0, "v")
        letter.apply_update(visitor.get_update(before))
    state = letter.get_update()
    writer: Doc[Any] = Doc(client_id=999)
    writer.apply_update(state)
    sent: list[bytes] = []
    writer.observe(lambda event: sent.append(event.update))
    text = writer.get(FIELD, type=XmlFragment).children[0].children[0]
    for _ in range(typed):
        text.insert(len(text), "x")
    keys = len(sent)
    for _ in range(typed):
        del text[len(text) - 1]
    return state, sent[:keys], sent[keys:]


def _run(root: Path, clients: list[int], deletions: int) -> dict[str, float]:
    """Median microseconds of process CPU per deletion, per letter size."""
    sys.path.insert(0, str(root))
    from snapshotter.document import LetterDocument

    rows: dict[str, float] = {}
    for count in clients:
        state, keys, backspaces = _letter(count, deletions)
        letter = LetterDocument(FIELD, state)
        for update in keys:
            letter.apply(update)
        times = []
        for update in backspaces:
            began = time.process_time_ns()
            letter.apply(update)
            times.append((time.process_time_ns() - began) / 1e3)
        assert not letter.pending  # every deletion integrated: the look found nothing
        rows[str(count)] = statistics.median(times)
    return rows


def _print(columns: dict[str, list[dict[str, float]]]) -> None:
    sizes = list(next(iter(columns.values()))[0])
    print(f"{'us per deletion: median (range of runs)':<42}", end="")
    print("".join(f"{Path(tree).name or tree:>26}" for tree in columns))
    for size in sizes:
        cells = ""
        for runs in columns.values():
            figures = [run[size] for run in runs]
            cell = f"{statistics.median(figures):.0f} ({min(figures):.0f}-{max(figures):.0f})"
            cells += f"{cell:>26}"
        print(f"{size + ' Yjs clients':<42}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[300, 3000])
    parser.add_argument("--deletions", type=int, default=100, help="backspaces timed per run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--root", type=Path, default=ROOT, help="the source tree to measure")
    parser.add_argument("--compare", type=Path, nargs="+", help="other trees, measured in turn")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        print(json.dumps(_run(args.root, args.clients, args.deletions)))
        return
    trees = [*(args.compare or []), args.root]
    columns: dict[str, list[dict[str, float]]] = {str(tree): [] for tree in trees}
    for _ in range(args.runs):  # each in a fresh process: no cache or heap carried over
        for tree in columns:
            command = [sys.executable, __file__, "--json", "--root", tree]
            command += ["--deletions", str(args.deletions), "--clients"]
            command += [str(count) for count in args.clients]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            columns[tree].append(json.loads(done.stdout.splitlines()[-1]))
    print(f"{args.deletions} backspaces of one writer, {args.runs} runs; process CPU of apply")
    _print(columns)


if __name__ == "__main__":
    main()
