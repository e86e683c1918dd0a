"""The log's own exceptions; adapters translate their backend's errors into these."""


class LogError(Exception):
    """Base of every log error."""


class LogUnavailableError(LogError):
    """The log cannot take or serve records right now (broker down, disk error, timeout)."""


class LogClosedError(LogError):
    """The log was used after close()."""


class CorruptLogError(LogError):
    """Stored data failed its checksum or framing; names the file and position."""

    def __init__(self, path: str, position: str, detail: str) -> None:
        super().__init__(f"corrupt log data in {path} at {position}: {detail}")
        self.path, self.position, self.detail = path, position, detail
