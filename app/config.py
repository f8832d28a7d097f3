"""Settings of the service, read from the environment (prefix ``ANNLAB_``).

Build one with ``Settings()`` (or ``Settings(data_dir=...)`` in tests) and hand it
to ``create_app``; routes read it through ``app.deps.get_settings`` (``app.state.settings``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The executors ``app.jobs.registry`` builds (a new backend adds its name here).
#: ``local`` is the documented name of the in-server process pool; ``process`` its old alias.
ExecutorName = Literal["local", "process", "thread", "celery", "none"]


#: ANNLAB_MAX_RUN_SECONDS when it is not set and auth is on (a shared deployment).
DEFAULT_AUTH_MAX_RUN_SECONDS = 4 * 3600.0


def default_workers() -> int:
    """One worker per core, leaving one for the API process; at least one."""
    return max(1, (os.cpu_count() or 2) - 1)


class Settings(BaseSettings):
    """Every knob of annlab; each field is the env var ``ANNLAB_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="ANNLAB_", extra="ignore")

    data_dir: Path = Field(Path("./data"), description="Where the SQLite database lives.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///<data_dir>/annlab.db."
    )
    workers: int = Field(default_factory=default_workers, ge=1, description="Worker processes.")
    executor: ExecutorName = Field(
        "local",
        description="local (alias process): a pool of worker processes inside the server; "
        "celery: the server stores runs and dispatches them to ANNLAB_BROKER_URL, "
        "`annlab worker` processes (on any machine) train them; thread: the same worker "
        "code in threads of the API process (tests); none: no workers in the server.",
    )
    broker_url: str | None = Field(
        None, description="The Celery broker (redis://… or amqp://…) for ANNLAB_EXECUTOR=celery."
    )
    celery_queue: str = Field(
        "annlab", min_length=1, description="The broker queue the slices of runs go through."
    )
    lease_seconds: float = Field(
        60.0,
        gt=0,
        description="A running run whose worker has not written for this long is requeued "
        "(its claim's lease; workers renew it at least every 5 s).",
    )
    redispatch_seconds: float = Field(
        30.0,
        gt=0,
        description="celery: a queued run sent to the broker this long ago and not taken is "
        "sent again when the broker holds fewer messages than there are queued runs.",
    )
    checkpoint_seconds: float = Field(10.0, gt=0, description="Seconds between checkpoints.")
    max_run_seconds: float | None = Field(
        None,
        ge=0,
        description="Seconds of training per run, then it ends keeping its model (succeeded, "
        "stop_reason interrupted); 0 = none. Default: "
        f"{DEFAULT_AUTH_MAX_RUN_SECONDS:g} (4 h) with auth on, so that no student's run holds "
        "a worker for ever; none with auth off.",
    )
    slice_seconds: float = Field(
        60.0,
        ge=0,
        description="Seconds a run trains while another user's run waits; then it is paused "
        "(its exact checkpoint kept) and requeued behind the waiting run; 0 = no slicing.",
    )
    max_running_runs_per_user: int | None = Field(
        None,
        ge=0,
        description="Runs of one user trained at the same time; 0 = no limit. Default: "
        "workers - 1 (at least 1) with auth on, so one user's backlog always leaves a worker "
        "for the others; no limit with auth off (every run belongs to the one local user).",
    )
    auth: bool = Field(
        False, description="Require an API key (`Authorization: Bearer KEY`) on /api/v1."
    )
    metrics: bool = Field(True, description="Serve Prometheus metrics at GET /metrics.")
    cors_origins: str = Field(
        "",
        description="Origins allowed to call the API from a browser, comma-separated; "
        "empty = CORS off. '*' only without credentials.",
    )
    cors_allow_credentials: bool = Field(
        False, description="Let listed origins send cookies (never with '*')."
    )
    predict_cache_size: int = Field(64, ge=1, description="Trained models kept loaded.")
    worker_nice: int = Field(
        5,
        ge=0,
        le=19,
        description="Niceness added to worker processes (lower CPU priority than the API), "
        "so training does not slow predictions down; 0 = the server's priority.",
    )

    max_layers: int = Field(32, ge=1)
    max_units: int = Field(4096, ge=1)
    max_parameters: int = Field(10_000_000, ge=1)
    max_epochs: int = Field(1_000_000, ge=1)
    max_dataset_rows: int = Field(1_000_000, ge=2)
    max_dataset_bytes: int = Field(128 * 1024 * 1024, ge=1)
    max_predict_rows: int = Field(10_000, ge=1)
    max_body_bytes: int = Field(50 * 1024 * 1024, ge=1)
    max_queued_runs: int = Field(1000, ge=1, description="Queued runs per user.")
    max_experiment_runs: int = Field(100, ge=1, description="Runs one experiment may create.")
    max_json_depth: int = Field(64, ge=8, description="Deepest JSON nesting accepted.")
    max_snapshot_bytes: int = Field(
        64 * 1024 * 1024,
        ge=0,
        description="Bytes of snapshots one run may keep (snapshots × parameters × dtype "
        'size): "log" snapshots are thinned to fit, an explicit list over it is a 422.',
    )
    max_storage_bytes_per_user: int = Field(
        0,
        ge=0,
        description="Bytes one user's uploaded datasets and runs' weights, snapshots and "
        "checkpoints may take; 0 = no limit. An upload or a submission that would pass it "
        "is a 422; a submitted run reserves its estimated size until it ends, so a run "
        "accepted is never stopped for it mid-training.",
    )
    rate_limit: str = Field(
        "",
        description="Requests per API key (per client address without a key or with auth "
        "off) to /api/ and "
        "/serve/, e.g. '20/second' or '600/minute' (several: '20/second;600/minute'); "
        "more get a 429 with Retry-After. Empty = no limit.",
    )
    rate_limit_storage: str = Field(
        "memory://",
        description="Where the rate limit's counters live: memory:// (this process; each "
        "API replica counts on its own) or a redis://… URL shared by every replica.",
    )
    plot_executor: Literal["process", "thread"] = Field(
        "process",
        description="Where plots are rendered: a process pool (production: renders never "
        "hold the API's GIL) or threads of the API process.",
    )
    plot_workers: int = Field(2, ge=1, description="Plots rendered at the same time.")
    plot_queue: int = Field(
        8, ge=1, description="Plots rendering or waiting at most; more get a 503."
    )
    max_trajectory_work: int = Field(
        50_000,
        ge=1,
        description="Optimizer steps of one trajectories request in all (steps × optimizers): "
        "the default, 5 optimizers × 10,000 steps, answers within about a second here.",
    )

    @field_validator("rate_limit")
    @classmethod
    def _known_rate(cls, value: str) -> str:
        """A typo in ANNLAB_RATE_LIMIT refuses to start rather than leaving the API open."""
        if value.strip():
            from limits import parse_many

            try:
                parse_many(value)
            except ValueError:
                raise ValueError(
                    f"ANNLAB_RATE_LIMIT={value!r} is not a rate: write e.g. '20/second', "
                    "'600/minute' or '20/second;600/minute'"
                ) from None
        return value.strip()

    @property
    def resolved_max_running_runs_per_user(self) -> int:
        """The per-user limit on running runs (0 = none), defaults applied."""
        if self.max_running_runs_per_user is not None:
            return self.max_running_runs_per_user
        return max(1, self.workers - 1) if self.auth else 0

    @property
    def resolved_max_run_seconds(self) -> float:
        """The per-run time limit (0 = none), defaults applied."""
        if self.max_run_seconds is not None:
            return self.max_run_seconds
        return DEFAULT_AUTH_MAX_RUN_SECONDS if self.auth else 0.0

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'annlab.db').resolve()}"
