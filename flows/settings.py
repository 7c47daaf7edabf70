"""Settings of erp-sync, read once from the environment with pydantic-settings."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from flows.servers import default_cache_dir


def _default_home() -> Path:
    """Where the embedded database and other state live when ERP_SYNC_HOME is unset."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "erp-sync"


class Settings(BaseSettings):
    """Every knob of erp-sync; each one is an environment variable."""

    model_config = SettingsConfigDict(env_prefix="ERP_SYNC_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL"),
        description=(
            "PostgreSQL server to use (postgresql://user:password@host:port/db). "
            "Unset: an embedded PostgreSQL is started with its data under ERP_SYNC_HOME."
        ),
    )
    pgbouncer: bool = Field(
        default=False,
        description=(
            "DATABASE_URL goes through PgBouncer (or another pooler) in transaction mode: turn "
            "psycopg's prepared statements off. erp-sync also detects PgBouncer by itself."
        ),
    )
    home: Path = Field(
        default_factory=_default_home,
        description=(
            "State directory: the embedded database (<home>/pgdata), the shared Prefect "
            "server's data (<home>/prefect) and the shared servers' state (<home>/servers)."
        ),
    )
    cache_dir: Path = Field(
        default_factory=default_cache_dir,
        description=(
            "What every home may reuse: the pre-migrated Prefect database that a new home's "
            "shared Prefect server starts from (one per Prefect version). Unset: "
            "$XDG_CACHE_HOME/erp-sync, else ~/.cache/erp-sync."
        ),
    )
    report_dir: Path = Field(
        default=Path("reports"),
        description="Where run folders (<report-dir>/<run_id>/) go when --report-dir is not given.",
    )
    inbox: Path = Field(
        default=Path("inbox"),
        description="The inbox `erp-sync serve` syncs when --inbox is not given.",
    )
    sync_concurrency: int = Field(
        default=4,
        ge=1,
        description="How many organisations the nightly sync imports in parallel.",
    )
    server_idle_minutes: float = Field(
        default=30,
        gt=0,
        description=(
            "Minutes the shared local servers (the Prefect server started when PREFECT_API_URL is "
            "unset, and the embedded PostgreSQL) keep running after the last command used them."
        ),
    )
    prefect_startup_seconds: float = Field(
        default=120,
        ge=0,
        description=(
            "Seconds a command waits for the shared local Prefect server to answer when it has "
            "to start it (its first start migrates its database)."
        ),
    )
    as_of_pattern: str | None = Field(
        default=None,
        description=(
            "Regular expression finding an export's as-of time in its file name, with the "
            "groups year, month, day and optionally hour, minute, second. Unset: the built-in "
            "forms YYYY-MM-DD and YYYYMMDD, each optionally followed by THHMM or THHMMSS."
        ),
    )
    history_days: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Keep the change history of this many days: older history is deleted after each "
            "sync (never the customers). Unset: kept until `erp-sync history prune`."
        ),
    )
    shard_stale_seconds: float = Field(
        default=120,
        ge=35,
        description=(
            "sync --work-pool: a shard run that sent no heartbeat for this long (its worker or "
            "its process was killed) is given up and its files counted as failed (shard runs "
            "send one every 30 s)."
        ),
    )
    shard_poll_seconds: float = Field(
        default=5, gt=0, description="sync --work-pool: how often the dispatch polls its shards."
    )
    log_level: str = Field(
        default="WARNING", description="Log level of erp-sync's own loggers (on stderr)."
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
