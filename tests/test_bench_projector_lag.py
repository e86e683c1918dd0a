"""bench/projector_lag.py's shutdown is bounded: a task that does not end when cancelled (its
final cancel-and-gather once hung the benchmark) is named, not waited for."""

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).parent.parent / "bench" / "projector_lag.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("projector_lag", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("projector_lag", module)
    spec.loader.exec_module(module)
    return module


async def test_a_task_that_does_not_stop_is_named_not_waited_for(
    capsys: pytest.CaptureFixture[str],
) -> None:
    running, release = asyncio.Event(), asyncio.Event()

    async def stubborn() -> None:  # swallows every cancellation until released
        running.set()
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue

    async def obedient() -> None:
        await asyncio.Event().wait()

    tasks = {
        "watcher": asyncio.create_task(obedient()),
        "projector": asyncio.create_task(stubborn()),
    }
    await running.wait()
    try:
        stuck = await asyncio.wait_for(_bench().stopped(tasks, timeout_s=0.2), timeout=10)
        assert stuck == ["projector"]
        assert tasks["watcher"].cancelled()
        assert "projector did not stop within 0.2 s" in capsys.readouterr().err
    finally:
        release.set()
        await tasks["projector"]
