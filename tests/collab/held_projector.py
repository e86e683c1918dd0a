"""A projector held where it was: its commits wait while a gate is clear."""

import asyncio
from typing import Any

import pytest

from projector.store import Store


class Hold:
    """Holds every projector commit while `gate` is clear: the projector stays where it was."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        original = Store.commit

        async def commit(store: Store, *args: Any, **kw: Any) -> Any:
            await self.gate.wait()
            return await original(store, *args, **kw)

        monkeypatch.setattr(Store, "commit", commit)
