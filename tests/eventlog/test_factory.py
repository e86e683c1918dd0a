"""open_log picks the implementation from settings.log_url."""

from pathlib import Path

import pytest

from eventlog import LogError
from eventlog.embedded import EmbeddedLog
from eventlog.factory import open_log
from eventlog.kafka import KafkaLog
from schemas.settings import Settings


def test_embedded_by_default_under_the_data_dir(tmp_path: Path) -> None:
    log = open_log(Settings(data_dir=tmp_path))
    assert isinstance(log, EmbeddedLog) and log.path == tmp_path / "log"
    reader = open_log(Settings(data_dir=tmp_path), readonly=True)
    assert isinstance(reader, EmbeddedLog) and reader.readonly


def test_kafka_url_gives_the_kafka_adapter() -> None:
    assert isinstance(open_log(Settings(log_url="kafka://127.0.0.1:9092,127.0.0.1:9093")), KafkaLog)


def test_unknown_scheme_is_refused() -> None:
    # Settings refuse such a URL themselves; model_copy does not validate, the factory does.
    settings = Settings().model_copy(update={"log_url": "redis://localhost"})
    with pytest.raises(LogError, match="redis://"):
        open_log(settings)
