"""Vite's dev server (`npm run dev`) as the page loads from it: the modules it serves, read over
HTTP from the page's entry module as a browser would load them."""

import asyncio
import re
from urllib.parse import urljoin, urlsplit

import httpx

CARET_DIFF = "/src/editor/caret-diff.ts"
# y-tiptap's own code (dist/y-tiptap.js), wherever the server put it.
Y_TIPTAP = re.compile(r"""new PluginKey\(["']y-sync["']\)""")
PRE_BUNDLED = "/node_modules/.vite/deps/"
# The static and dynamic imports of a served module: Vite rewrites each to a URL.
IMPORT = re.compile(r"""(?:\bfrom|\bimport)\s*\(?\s*["']((?:/|\./|\.\./)[^"']+)["']""")


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
