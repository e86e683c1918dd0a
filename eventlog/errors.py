"""The log's own exceptions; adapters translate their backend's errors into these."""


class LogError(Exception):
    """Base of every log error."""


class LogUnavailableError(LogError):
    """The log cannot take or serve records right now (broker down, disk error, timeout)."""


class WriterLockHeld(LogUnavailableError):
    """Another process holds the embedded log's writer lock (one process writes it)."""


class LogUnconfirmedError(LogUnavailableError, TimeoutError):
    """Records were sent and the log never answered for them (or took only some of them): they
    may be stored yet, once a stalled broker wakes, and appending them again may store them
    twice. A TimeoutError too, as a deadline that passed with the records sent: callers that
    tell "unconfirmed" from "refused" by a TimeoutError in the chain see it as unconfirmed."""


class RecordTooLargeError(LogError):
    """The log refuses a record for good: it is larger than the topic or broker takes (Kafka's
    MESSAGE_TOO_LARGE). Retrying cannot help, unlike `LogUnavailableError`."""


class LogClosedError(LogError):
    """The log was used after close()."""


class CorruptLogError(LogError):
    """Stored data failed its checksum or framing; names the file and position."""

    def __init__(self, path: str, position: str, detail: str) -> None:
        super().__init__(f"corrupt log data in {path} at {position}: {detail}")
        self.path, self.position, self.detail = path, position, detail


class LogConfigError(Exception):
    """The log refuses how it is configured (a broker without idempotent producers, Tansu, and
    STENO_KAFKA_IDEMPOTENCE=true). Not a LogError: retrying cannot help, a setting must change;
    a service exits with status 2 (steno_collab/cli.py), not 1 for a supervisor to restart."""


class PositionPastEndError(Exception):
    """A consumer's stored position is past its partition's end: what it stored was folded
    from another log (a restored backup, a replaced data dir or topic). Following on would skip
    the records appended up to that position. Not a LogError: retrying cannot help, the
    projections have to be rebuilt from this log."""

    def __init__(self, consumer: str, topic: str, partition: int, position: int, end: int) -> None:
        super().__init__(
            f"{consumer}: its position in {topic}/{partition} is {position}, past the log's end"
            f" ({end}): its store was folded from another log (a restored backup?). Rebuild it"
            " from this log: `steno-collab backfill all --from-beginning --reset`, or with the"
            " embedded services delete <data dir>/redis and <data dir>/postgres"
        )
        self.topic, self.partition, self.position, self.end = topic, partition, position, end
