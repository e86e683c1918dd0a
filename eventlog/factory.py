"""Builds the configured `Log` from settings: embedded by default, Kafka for kafka:// URLs."""

from eventlog.errors import LogError
from eventlog.records import Log
from schemas.events import Topic
from schemas.settings import LOG_FOLDER, Settings

KAFKA_SCHEME = "kafka://"
KAFKA_ACK_TIMEOUT_S = 10.0  # the producer's request timeout, at least (KafkaLog: ack_timeout_s)


def topic_retention(settings: Settings) -> dict[str, int | None]:
    """Each topic with its retention in ms: letters kept forever, presence for a day."""
    return {
        settings.topic(Topic.LETTERS): None,
        settings.topic(Topic.PRESENCE): settings.presence_retention_ms,
    }


def open_log(settings: Settings, *, readonly: bool = False) -> Log:
    """The log named by `settings.log_url` (not started: the caller awaits `start()`)."""
    url = settings.log_url
    if url is None:
        from eventlog.embedded import EmbeddedLog

        return EmbeddedLog(
            settings.data_dir / LOG_FOLDER,
            settings.partitions,
            topic_retention(settings),
            readonly=readonly,
        )
    if url.startswith(KAFKA_SCHEME):
        from eventlog.kafka import KafkaLog

        return KafkaLog(
            url.removeprefix(KAFKA_SCHEME),
            settings.partitions,
            topic_retention(settings),
            idempotence=settings.kafka_idempotence,
            linger_ms=settings.kafka_linger_ms,
            replication_factor=settings.kafka_replication_factor,
            # Bounds each call (connecting, a read, an end-offset lookup) and an append's
            # hand-off: a stalled broker costs a request no more than an append may take.
            append_timeout_s=settings.append_timeout_s,
            # Not the acknowledgements: a request the broker has not answered within the
            # producer's request timeout stays unknown for good, and a rescue appends it again
            # (twice stored once the broker wakes): 10 s as before, or the append timeout if longer.
            ack_timeout_s=KAFKA_ACK_TIMEOUT_S,
            # The largest record the gateway writes: a frame, or a letter's whole content.
            max_record_bytes=max(settings.max_message_bytes, settings.max_document_bytes),
        )
    raise LogError(f"unsupported log URL {url!r}: leave it unset or use kafka://host:port")
