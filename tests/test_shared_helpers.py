"""Test helpers shared between modules are public: a module under tests/ imports no `_private`
name from another (nor aliases one to a private name), so a helper another module needs moves
into a helper module beside it (tests/gateway/pending_helpers.py, tests/cli_env.py, ...) under
a public name. Pure: the sources' syntax trees."""

import ast
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT


def private_imports(tests: Path) -> list[str]:
    """`path:line: from module import name` for each private name a module under `tests`
    imports from another module of the test suite (absolute `tests.` or relative)."""
    found = []
    for path in sorted(tests.rglob("*.py")):
        if "node_modules" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            module = "." * node.level + (node.module or "")
            if not (node.level or module == "tests" or module.startswith("tests.")):
                continue
            where = f"{path.relative_to(tests.parent)}:{node.lineno}: from {module} import"
            for alias in node.names:
                names = (alias.name, alias.asname or "")
                if any(n.startswith("_") and not n.startswith("__") for n in names):
                    found.append(f"{where} {alias.name}")
    return found


def test_no_module_imports_another_test_modules_private_names() -> None:
    # In a fresh interpreter: CPython 3.11's parser can fail with "AST constructor recursion
    # depth mismatch" in one where an earlier test hit a RecursionError (hostile nesting).
    found = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split("\n")
    assert [line for line in found if line] == []


SCRIPT = """
from pathlib import Path
from tests.test_shared_helpers import private_imports
print(*private_imports(Path("tests").resolve()), sep="\\n")
"""
