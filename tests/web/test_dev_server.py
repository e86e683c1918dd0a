"""`npm run dev` (Vite's dev server) serves y-tiptap with src/editor/caret-diff.ts for its text
diff, as the built bundle has it: the dev server pre-bundles dependencies without the config's
plugins, so y-tiptap kept lib0's diff there, and a typist's undo could take a colleague's
character (web/README.md, "Concurrent block changes"). The served module graph is read over
HTTP, from the page's entry module, as a browser would load it."""

import re

from tests.web.vite_dev import CARET_DIFF, PRE_BUNDLED, Y_TIPTAP, imports, module_graph


async def test_dev_server_gives_y_tiptap_the_caret_diff_and_one_prosemirror(
    dev_server: str,
) -> None:
    graph = await module_graph(dev_server)
    y_tiptap = [path for path, module in graph.items() if Y_TIPTAP.search(module)]
    assert len(y_tiptap) == 1, y_tiptap  # one copy, shared by TipTap's collaboration extensions
    own_imports = imports(graph[y_tiptap[0]])
    assert CARET_DIFF in own_imports, own_imports
    assert re.search(
        r"import \{ simpleDiff \} from \"/src/editor/caret-diff\.ts", graph[y_tiptap[0]]
    )
    # Everything else it imports is pre-bundled with TipTap's: a second ProseMirror or Yjs would
    # fail the editor (`instanceof` checks, plugin keys).
    assert [p for p in own_imports if p != CARET_DIFF and not p.startswith(PRE_BUNDLED)] == []
    assert [p for p in graph if re.match(r"/node_modules/(prosemirror|yjs|lib0)", p)] == []
