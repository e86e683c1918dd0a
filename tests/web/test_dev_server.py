"""`npm run dev` (Vite's dev server) serves y-tiptap with src/editor/caret-diff.ts for its text
diff, as the built bundle has it: the dev server pre-bundles dependencies without the config's
plugins, so y-tiptap kept lib0's diff there, and a typist's undo could take a colleague's
character (web/README.md, "Concurrent block changes"). The served module graph is read over
HTTP, from the page's entry module, as a browser would load it."""

import asyncio
import re
from collections.abc import AsyncIterator
from urllib.parse import urljoin, urlsplit

import httpx
import pytest_asyncio

from tests.support import spawn_listening
from tests.web.bundle import WEB
from tests.web.web_modules import web_node_modules

CARET_DIFF = "/src/editor/caret-diff.ts"
# y-tiptap's own code (dist/y-tiptap.js), wherever the server put it.
Y_TIPTAP = re.compile(r"""new PluginKey\(["']y-sync["']\)""")
PRE_BUNDLED = "/node_modules/.vite/deps/"
# The static and dynamic imports of a served module: Vite rewrites each to a URL.
IMPORT = re.compile(r"""(?:\bfrom|\bimport)\s*\(?\s*["']((?:/|\./|\.\./)[^"']+)["']""")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def dev_server() -> AsyncIterator[str]:
    vite = web_node_modules() / ".bin" / "vite"

    async def start(port: int) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            str(vite), "--host", "127.0.0.1", "--port", str(port), "--strictPort",
            cwd=WEB, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip

    async def answers(port: int) -> bool:
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"http://127.0.0.1:{port}/")).status_code == 200
        except httpx.TransportError:
            return False

    proc, port = await spawn_listening(start, answers, timeout=60)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        await proc.wait()


async def module_graph(base_url: str) -> dict[str, str]:
    """Every module the page loads from its entry, by path (without Vite's `?v=` query)."""
    served: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        level = ["/src/main.ts"]
        while level:
            answers = await asyncio.gather(*(http.get(url) for url in level))  # as a browser does
            following: set[str] = set()
            for url, answer in zip(level, answers, strict=True):
                assert answer.status_code == 200, (url, answer.status_code)
                served[urlsplit(url).path] = answer.text
                for found in IMPORT.findall(answer.text):
                    target = urljoin(url, found)
                    if urlsplit(target).path not in served and not target.startswith(
                        ("/@vite/", "/@id/")
                    ):
                        following.add(target)
            level = sorted({url for url in following if urlsplit(url).path not in served})
    return served


def imports(module: str) -> list[str]:
    return [urlsplit(url).path for url in IMPORT.findall(module)]


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
