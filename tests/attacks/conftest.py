"""A gateway on the embedded log and the session's Redis, with letters A (attacked) and B."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from schemas.settings import Settings
from tests.attacks.harness import FIGURES, Scene
from tests.gateway.harness import running_gateway


@pytest_asyncio.fixture(loop_scope="session")
async def scene(tmp_path: Path, redis_db: str) -> AsyncIterator[Scene]:
    redis = aioredis.Redis.from_url(redis_db)
    # The frame fuzz probes with a sync step 1 after every frame, and reconnects as few users
    # after every close: neither is rate-limited here.
    settings = Settings(
        data_dir=tmp_path / "steno",
        partitions=2,
        state_requests_burst=1_000_000,
        handshakes_burst=1_000_000,
    )
    try:
        async with running_gateway(settings, redis=redis) as gw:
            letter_a, letter_b = await gw.create_letter(), await gw.create_letter()
            victim = await gw.client(letter_a, user="alice")
            await victim.synced.wait()
            await victim.insert("hello")
            bystander = await gw.client(letter_b, user="carol")  # a second client on B
            await bystander.synced.wait()
            scene = Scene(gw, letter_a, letter_b, victim)
            await scene.barrier()  # the victim's own echoes are in
            yield scene
            await victim.close()
            await bystander.close()
    finally:
        await redis.aclose()


@pytest.fixture(scope="session", autouse=True)
def print_figures() -> Iterator[None]:
    yield
    for name, figures in FIGURES.items():
        print(f"attack {name}: bystander {figures}")
