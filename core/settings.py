"""Configuration: one pydantic-settings class read from INFRAWATCH_* variables and an optional .env."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The development default for `secret_key`; the API warns when it runs with it.
DEV_SECRET_KEY = "change-me-infrawatch-dev-secret"


class MqttEndpoint:
    """The parts of an `mqtt://user:pass@host:port` URL."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "mqtts", "tcp"):
            raise ValueError(f"INFRAWATCH_MQTT_URL must look like mqtt://user:pass@host:1883, got {url!r}")
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or (8883 if parsed.scheme == "mqtts" else 1883)
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        self.tls = parsed.scheme == "mqtts"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INFRAWATCH_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="",
        description="PostgreSQL URL; empty means the embedded PostgreSQL under data_dir",
    )
    database_read_url: str = Field(
        default="",
        description="a hot standby of the database for reads (series, progress, boards); empty means the primary",
    )
    mqtt_url: str = Field(default="mqtt://127.0.0.1:1883", description="mqtt://user:pass@host:port")
    #: "5", or "3.1.1" for a broker without MQTT 5 (the embedded amqtt fallback)
    mqtt_protocol: Literal["5", "3.1.1"] = "5"
    data_dir: Path = Field(default_factory=lambda: Path.home() / ".local" / "share" / "infrawatch")
    timezone: str = "Asia/Shanghai"
    #: Secret mixed into API-key hashes (HMAC); change it in production.
    secret_key: str = DEV_SECRET_KEY
    #: A gauge series silent longer than this stops counting in sums (seconds).
    gauge_staleness_s: int = 62 * 86400
    #: Observations further than this in the future are rejected (seconds).
    future_tolerance_s: int = 300
    #: Bulletins: produced from this day of the month after a period closes, for this region, for these
    #: period kinds (month, quarter, year), sent to these channels (comma-separated; empty = every enabled one).
    bulletin_day: int = Field(default=3, ge=1, le=28)
    bulletin_region: int = 360000
    bulletin_kinds: str = "month,quarter"
    bulletin_channels: str = ""
    #: Bulletins: a .ttf/.otf/.ttc with Chinese glyphs for the PDF and the charts (None: the first of the
    #: usual system CJK fonts found, bulletins/fonts.py).
    bulletin_font: Path | None = None
    #: Base URL of the console as its readers reach it (links in DingTalk / WeCom messages).
    public_url: str = ""
    #: The GB/T 2260 region list in force, kept there by `infrawatch regions update` (None: the list shipped
    #: in reference/data/regions.csv, which the command then rewrites). Read on first use of the regions.
    regions_file: Path | None = None
    log_level: str = "INFO"
    log_json: bool = True

    # -- the scheduler's jobs (infrawatch/scheduler.py; each layer registers its own) --
    #: alerts/: evaluate the rules, deliver notifications; the rules and channels loaded at start
    alerts_evaluate_interval_s: float = 60
    alerts_deliver_interval_s: float = 15
    #: None: the shipped alerts/rules.yaml
    alerts_rules_file: Path | None = None
    alerts_channels_file: Path | None = None
    #: keep alert_evaluation rows and sent notifications this long (days)
    alerts_log_retention_days: int = 30
    #: metrics/: bring the rollups up to date
    rollup_interval_s: float = 300
    #: metrics/: republish the pending tail (buckets changes since the last rollup refresh can reach)
    pending_interval_s: float = 30
    #: storage/: create partitions this many months ahead, drop those older than retention_days (0 keeps all)
    maintenance_interval_s: float = 6 * 3600
    partitions_months_ahead: int = 3
    retention_days: int = 0
    #: bulletins/: how often to look for a closed month or quarter whose bulletin is due
    bulletin_interval_s: float = 3600
    #: a run may start this late and still run (APScheduler misfire_grace_time, seconds)
    scheduler_misfire_grace_s: int = 30

    # -- failed-authentication limiting (api/ratelimit.py) --
    #: failures per client address and per key prefix within auth_window_s before 429
    auth_max_failures: int = 10
    auth_window_s: float = 60.0
    #: distinct addresses and prefixes tracked at once (the oldest are forgotten first)
    auth_max_tracked: int = 100_000

    @field_validator("bulletin_font", "regions_file", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """An empty variable (`INFRAWATCH_BULLETIN_FONT=` in a compose file) means the default, not `.`."""
        return None if isinstance(value, str) and not value.strip() else value

    def mqtt(self) -> MqttEndpoint:
        return MqttEndpoint(self.mqtt_url)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
