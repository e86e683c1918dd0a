"""Builds the configured `Log` from settings: embedded by default, Kafka for kafka:// URLs."""

import asyncio

from eventlog.embedded_store import DB_NAME
from eventlog.errors import LogError, LogUnavailableError, WriterLockHeld
from eventlog.records import Log
from schemas.events import Topic
from schemas.settings import LOG_FOLDER, Settings

KAFKA_SCHEME = "kafka://"
CREATE_WAIT_S = (0.05, 5.0)  # a reader's wait for the writer that is creating the log: step, most
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


async def open_embedded_reader(settings: Settings) -> Log:
    """The embedded log opened read-only and started, for a process that never holds its writer
    lock (the projector and snapshotter beside a gateway), whichever process starts first: a log
    not there yet is created (topics too) under the writer lock, held only for that."""
    step, most = CREATE_WAIT_S
    for _ in range(int(most / step)):
        reader = open_log(settings, readonly=True)
        try:
            await reader.start()
            return reader
        except LogUnavailableError:
            pass
        if not (settings.data_dir / LOG_FOLDER / DB_NAME).exists():
            creator = open_log(settings)
            try:
                await creator.start()
            except WriterLockHeld:  # another process holds the lock: it is creating the log
                pass
            else:
                await creator.close()
                continue
        # There but not readable (yet): its creator may be midway, its tables not all made
        # (re-read RR: "no such table: topics" for 2 of 45 readers started with a writer).
        await asyncio.sleep(step)
    reader = open_log(settings, readonly=True)  # still not: its own error says why
    await reader.start()
    return reader


async def start_writer(settings: Settings, wait_s: float = CREATE_WAIT_S[1]) -> Log:
    """The configured log, started to write. An embedded log whose writer lock another process
    holds is tried again for up to `wait_s`: a projector or snapshotter started at the same
    moment on a new data dir holds it only while it creates the log (`open_embedded_reader`)."""
    step = CREATE_WAIT_S[0]
    for _ in range(max(0, int(wait_s / step))):
        log = open_log(settings)
        try:
            await log.start()  # a log that fails to start has closed what it opened
            return log
        except WriterLockHeld:
            await asyncio.sleep(step)
    log = open_log(settings)
    await log.start()
    return log
