"""What every long-running process prints: one line per log record on stderr, as text or, for
log collectors (Loki, CloudWatch, Elasticsearch), as one JSON object per line
(`STENO_LOG_FORMAT=json`): `ts` (UTC, ISO 8601), `level`, `logger`, `message`, and `exc` with
the traceback when there is one. uvicorn's own records (`uvicorn.error`, `uvicorn.access`) go
the same way when the gateway starts its server with `log_config=None`.
"""

import json
import logging
import sys
from datetime import UTC, datetime

from schemas.settings import Settings

TEXT = "%(asctime)s %(levelname)s %(name)s %(message)s"
CHATTY = "aiokafka.consumer.subscription_state"


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    """Send the root logger's records to stderr as the settings say (replacing its handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if settings.log_format == "json" else logging.Formatter(TEXT))
    logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)
    # aiokafka says "Updating subscribed topics" at INFO each time a pooled reader is assigned
    # its partitions: on every /readyz and every read of the log, ~50 lines a minute a gateway.
    quiet = logging.getLogger(CHATTY)
    quiet.setLevel(logging.WARNING if logging.getLogger().level > logging.DEBUG else logging.NOTSET)
