"""The projector's own settings (prefix `STENO_PROJECTOR_`), next to the shared `Settings`.

Built once at the entry point, like `Settings`, and passed down; tests build them with keywords.
"""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from schemas.settings import BlankIsUnset

NOTES_TTL_S = 90 * 24 * 3600  # notifications kept 90 days after their user's last note change


class ProjectorSettings(BlankIsUnset):
    model_config = SettingsConfigDict(env_prefix="STENO_PROJECTOR_", extra="ignore")

    metrics_port: int | None = 9464  # Prometheus /metrics; None or 0: off
    group: str = "projector"
    group_session_timeout_ms: int = Field(default=10_000, ge=1000)  # Kafka group membership
    follow_batch: int = Field(default=2000, ge=1)  # records per read from the log
    # Records folded per Redis write, at most. Batches are as large as what queued up while the
    # previous one was written: small when live, large when catching up (cost per letter).
    batch_records: int = Field(default=50_000, ge=1)
    catchup_after_ms: int = Field(default=2000, ge=0)  # records older than this: replaying
    ttl_s: int = Field(default=24 * 3600, ge=1)  # live keys expire after a day without activity
    # A user's notifications hash (and its index) outlives the letters that fill it: a mention
    # must still be there after a weekend, when the letter's keys are long gone. Refreshed
    # whenever one of its notes is added or changes (read, edited); bounded by USER_NOTES_LIMIT.
    notes_ttl_s: int = Field(default=NOTES_TTL_S, ge=1)
    check_interval_s: float = Field(default=1.0, gt=0)  # positions still there? lag, commits
    sweep_interval_s: float = Field(default=10.0, gt=0)  # stale-gateway sweep
    # A gateway refreshes `gateway:<id>:alive` (EX 30) every 10 s; once the key has been missing
    # this long (at least one whole refresh period past its TTL) its connections are dropped.
    stale_after_s: float = Field(default=40.0, ge=0)
    commit_interval_s: float = Field(default=5.0, gt=0)  # group positions for lag dashboards
    # Reading an expired letter's latest version from PostgreSQL (projector/reload.py) takes at
    # most this, connecting included; past it the letter is reloaded from the log alone.
    versions_timeout_s: float = Field(default=2.0, gt=0)
