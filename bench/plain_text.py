"""Time of rendering a long letter's text (`gateway.content.plain_text`: what GET
/v1/letters/{id} returns, on the event loop, and what comment anchors count in), through pycrdt's
wrappers (as before 2026-12-05) against its bindings under one transaction (now).

    .venv/bin/python bench/plain_text.py [--paragraphs 20000] [--rounds 7]

Medians of the rounds, the two ways alternating so that a busy machine slows both alike
(docs/performance.md, "Comment anchors").
"""

import argparse
import statistics
import time
from typing import Any

from pycrdt import Doc, XmlFragment, XmlText

from gateway.content import initial_update, plain_text


def wrapped(doc: Doc[Any], field: str) -> str:
    """The former walk: a wrapper object and a transaction per node."""

    def text(node: Any) -> str:
        if isinstance(node, XmlText):
            return "".join(chunk for chunk, _ in node.diff() if isinstance(chunk, str))
        parts = [text(child) for child in node.children]
        joint = "" if all(isinstance(c, XmlText) for c in node.children) else "\n"
        return joint.join(parts)

    return "\n".join(text(child) for child in doc.get(field, type=XmlFragment).children)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paragraphs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    text = "\n".join(
        f"Paragraph {i} of the demand letter, in words." for i in range(args.paragraphs)
    )
    doc: Doc[Any] = Doc()
    doc.apply_update(initial_update(text, "default"))
    times: dict[str, list[float]] = {"wrappers": [], "bindings": []}
    for _ in range(args.rounds):
        for name, render in (("wrappers", wrapped), ("bindings", plain_text)):
            began = time.perf_counter()
            assert render(doc, "default") == text
            times[name].append(time.perf_counter() - began)
    for name, took in times.items():
        print(f"{name}: median {statistics.median(took) * 1000:.0f} ms"
              f" (range {min(took) * 1000:.0f}-{max(took) * 1000:.0f} ms)")  # fmt: skip
    ratio = statistics.median(times["wrappers"]) / statistics.median(times["bindings"])
    print(f"{args.paragraphs} paragraphs: bindings {ratio:.1f}x faster")


if __name__ == "__main__":
    main()
