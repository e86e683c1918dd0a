"""What modules under tests/ import from each other, read from their syntax trees: a module
imports nothing from a test module (test_*.py: a fixture imported from one counts as defined
there too, and an imported test function runs twice) and no `_private` name from any other, so
what modules share lives in helper modules (tests/gateway/pending_helpers.py, tests/cli_env.py,
...) and fixtures in conftest.py."""

import ast
from collections.abc import Iterator
from pathlib import Path


def _imports(tests: Path) -> Iterator[tuple[str, str, list[tuple[str, str]]]]:
    """(`path:line`, module, [(name, alias)]) for each import of a module of the test suite
    (absolute `tests.` or relative) by a module under `tests`; `import tests.x` names no names."""
    for path in sorted(tests.rglob("*.py")):
        if "node_modules" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            where = (
                f"{path.relative_to(tests.parent)}:{node.lineno}" if hasattr(node, "lineno") else ""
            )
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == "tests" or alias.name.startswith("tests."):
                        yield where, alias.name, []
            elif isinstance(node, ast.ImportFrom):
                module = "." * node.level + (node.module or "")
                if node.level or module == "tests" or module.startswith("tests."):
                    yield where, module, [(a.name, a.asname or "") for a in node.names]


def private_imports(tests: Path) -> list[str]:
    """`path:line: from module import name` for each private name imported (or an alias to
    one)."""
    return [
        f"{where}: from {module} import {name}"
        for where, module, names in _imports(tests)
        for name, alias in names
        if any(n.startswith("_") and not n.startswith("__") for n in (name, alias))
    ]


def _is_test_module(dotted: str) -> bool:
    return dotted.rpartition(".")[2].startswith("test_")


def imports_of_test_modules(tests: Path) -> list[str]:
    """`path:line: module` for each import of a test module or of a name from one."""
    found = []
    for where, module, names in _imports(tests):
        if _is_test_module(module):
            found.append(f"{where}: {module}")
        # `from tests.web import test_browser`: the module itself
        found += [f"{where}: {module}.{name}" for name, _ in names if _is_test_module(name)]
    return found
