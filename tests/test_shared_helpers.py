"""Test helpers shared between modules live in helper modules and fixtures in conftest.py: a
module under tests/ imports nothing from a test module (test_*.py) and no `_private` name from
another (tests/suite_imports.py). Pure: the sources' syntax trees."""

import subprocess
import sys

from tests.support import ROOT


def found_by(function: str) -> list[str]:
    # In a fresh interpreter: CPython 3.11's parser can fail with "AST constructor recursion
    # depth mismatch" in one where an earlier test hit a RecursionError (hostile nesting).
    script = (
        "from pathlib import Path\n"
        f"from tests.suite_imports import {function}\n"
        f'print(*{function}(Path("tests").resolve()), sep="\\n")\n'
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [line for line in out.split("\n") if line]


def test_no_module_imports_another_test_modules_private_names() -> None:
    assert found_by("private_imports") == []


def test_no_module_imports_from_a_test_module() -> None:
    assert found_by("imports_of_test_modules") == []
