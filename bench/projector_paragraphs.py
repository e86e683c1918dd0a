"""CPU time of one backfill-style fold (one batch, attribution on and off) of a letter typed
as N paragraphs, one Enter per update: the shape where the projector's fold was quadratic in
paragraphs until 2026-12-06 (docs/performance.md, Projector).

    .venv/bin/python bench/projector_paragraphs.py
"""

import time

from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from projector.document import DocUpdate, fold_document


def main() -> None:
    empty = Doc().get_update()
    for n in (500, 1000, 2000):
        doc: Doc[XmlFragment] = Doc()
        root = doc.get("default", type=XmlFragment)
        updates = []
        for i in range(n):
            vector = doc.get_state()
            root.children.append(XmlElement("paragraph", contents=[XmlText(f"p{i}")]))
            updates.append(DocUpdate(i, "u", i, doc.get_update(vector)))
        for attribute in (True, False):
            started = time.process_time()
            fold_document(empty, updates, "default", attribute=attribute)
            spent = time.process_time() - started
            print(f"{n} paragraphs, attribution {'on ' if attribute else 'off'}: {spent:.2f} s CPU")


if __name__ == "__main__":
    main()
