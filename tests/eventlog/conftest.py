"""Fixtures: both `Log` implementations (embedded, Kafka), for the contract tests."""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from eventlog import Log
from eventlog.factory import open_log
from schemas.events import Topic
from schemas.settings import Settings
from tests.eventlog.log_contract import PARTITIONS


@pytest_asyncio.fixture(params=["embedded", "kafka"], loop_scope="session")
async def settings(
    request: pytest.FixtureRequest, tmp_path: Path, kafka_bootstrap: str
) -> Settings:
    # A fresh topic prefix per test: Kafka tests share one broker and must not see each other.
    url = f"kafka://{kafka_bootstrap}" if request.param == "kafka" else None
    return Settings(
        data_dir=tmp_path,
        log_url=url,
        partitions=PARTITIONS,
        topic_prefix=f"t{uuid.uuid4().hex[:12]}.",
        kafka_idempotence=False,
    )


@pytest_asyncio.fixture(loop_scope="session")
async def log(settings: Settings) -> AsyncIterator[Log]:
    opened = open_log(settings)
    await opened.start()
    yield opened
    await opened.close()


@pytest.fixture
def topic(settings: Settings) -> str:
    return settings.topic(Topic.LETTERS)
