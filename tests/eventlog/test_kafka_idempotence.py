"""A broker without idempotent producers (Tansu) and the default STENO_KAFKA_IDEMPOTENCE=true:
start-up says which setting to change, not an opaque `UnknownError()`."""

import uuid

import pytest

from eventlog.errors import LogConfigError
from eventlog.kafka import KafkaLog


async def test_a_refused_idempotent_producer_names_the_setting(kafka_bootstrap: str) -> None:
    log = KafkaLog(kafka_bootstrap, 1, {f"i{uuid.uuid4().hex[:12]}.letters": None})
    with pytest.raises(LogConfigError, match="STENO_KAFKA_IDEMPOTENCE=false") as refused:
        await log.start()
    assert f"connecting to {kafka_bootstrap}" in str(refused.value)
