"""A gateway on the embedded log and the session's Redis, with letters A (attacked) and B."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.attacks.harness import FIGURES, Scene, open_scene


@pytest_asyncio.fixture(loop_scope="session")
async def scene(tmp_path: Path, redis_db: str) -> AsyncIterator[Scene]:
    async with open_scene(tmp_path / "steno", redis_db) as scene:
        yield scene


@pytest.fixture(scope="session", autouse=True)
def print_figures() -> Iterator[None]:
    yield
    for name, figures in FIGURES.items():
        print(f"attack {name}: bystander {figures}")
