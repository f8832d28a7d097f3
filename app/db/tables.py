"""The tables, SQLAlchemy 2 style. Changes here need an Alembic migration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC (SQLite has no time zones), read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    #: The first characters of the key: not secret, only narrows the lookup.
    key_prefix: Mapped[str | None] = mapped_column(String(20), index=True)
    #: SHA-256 (hex) of the whole key; the key itself is never stored.
    key_hash: Mapped[str | None] = mapped_column(String(200), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DatasetRow(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(20))
    n_samples: Mapped[int] = mapped_column(Integer)
    n_features: Mapped[int] = mapped_column(Integer)
    n_outputs: Mapped[int] = mapped_column(Integer)
    class_names: Mapped[list[str] | None] = mapped_column(JSON)
    feature_names: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The arrays as an .npz written without pickle; deferred so listings skip it.
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("owner_id", "idempotency_key", name="uq_runs_owner_id_idempotency_key"),
        Index("ix_runs_status_created_at", "status", "created_at"),
        Index("ix_runs_owner_id_created_at", "owner_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    dataset_id: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    epochs: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(BigInteger, default=0)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    best_epoch: Mapped[int | None] = mapped_column(Integer)
    stop_reason: Mapped[str | None] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)
    n_parameters: Mapped[int] = mapped_column(Integer)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    #: ``POST /runs/{id}/stop``: end training early and keep the model.
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When the run last joined the queue (null: when it was created); the queue's order.
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When a task for the run was last sent to the broker (null: not sent since it was
    #: last queued); ANNLAB_EXECUTOR=celery's re-dispatch sweep reads it.
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Seconds of training so far, summed over every worker stretch (slices, pauses,
    #: resumes, a dead worker's last moments); ANNLAB_MAX_RUN_SECONDS bounds it.
    trained_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    #: Short strings set at submission (``spec.tags``) or by ``PATCH``; None reads as {}.
    tags: Mapped[dict[str, str] | None] = mapped_column(JSON)
    #: The experiment the run belongs to (experiments come later); None for a lone run.
    experiment_id: Mapped[str | None] = mapped_column(String(40), index=True)
    #: The metrics of ``best_epoch``, kept up to date while the run trains; the two
    #: numbers runs are sorted by are columns of their own so SQL can order by them.
    best_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    best_val_loss: Mapped[float | None] = mapped_column(Float)
    best_val_accuracy: Mapped[float | None] = mapped_column(Float)
    #: Seconds from the first start to the end, set when the run finishes.
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    #: Bytes the run's weights, snapshots and checkpoint may take, estimated at
    #: submission (``app.services.storage``): reserved against the owner's
    #: ANNLAB_MAX_STORAGE_BYTES_PER_USER while the run is queued or running.
    storage_estimate: Mapped[int | None] = mapped_column(BigInteger)
    owner: Mapped[User] = relationship(lazy="joined", innerjoin=True)


class MetricRow(Base):
    __tablename__ = "run_metrics"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger)
    train_loss: Mapped[float | None] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float)
    train_accuracy: Mapped[float | None] = mapped_column(Float)
    val_accuracy: Mapped[float | None] = mapped_column(Float)
    learning_rate: Mapped[float | None] = mapped_column(Float)


class WeightsRow(Base):
    __tablename__ = "run_weights"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class CheckpointRow(Base):
    __tablename__ = "checkpoints"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SnapshotRow(Base):
    """The model after one epoch of a run (``training.snapshots``): the ``.npz`` of
    ``core.serialize.TrainedModel``, written by the worker with that epoch's metrics.
    At most one per (run, epoch): a resumed run that passes an epoch again writes the
    same bits, and the second write is ignored."""

    __tablename__ = "run_snapshots"
    __table_args__ = (UniqueConstraint("run_id", "epoch", name="uq_run_snapshots_run_id_epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    epoch: Mapped[int] = mapped_column(Integer)
    #: Deferred: listing a run's epochs reads no weights.
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExperimentRow(Base):
    """A base spec and a grid; its runs point back with ``runs.experiment_id``."""

    __tablename__ = "experiments"
    __table_args__ = (Index("ix_experiments_owner_id_created_at", "owner_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(200))
    base: Mapped[dict[str, Any]] = mapped_column(JSON)
    grid: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: [[run_id, {path: value}], ...] in the grid's order.
    points: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Set by ``POST /experiments/{id}/cancel``.
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ModelRow(Base):
    """A registered model: a name (unique on the server, so that ``/serve/{name}`` and
    ``annlab models serve NAME`` need no user), its versions and aliases."""

    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The last version number handed out (never reused, even after a delete).
    last_version: Mapped[int] = mapped_column(Integer, default=0)


class ModelVersionRow(Base):
    __tablename__ = "model_versions"

    model_id: Mapped[str] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: No cascade: a run a version refers to cannot be deleted (a 409 first).
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    #: None: the run's final model; else its snapshot at this epoch.
    epoch: Mapped[int | None] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ModelAliasRow(Base):
    __tablename__ = "model_aliases"

    model_id: Mapped[str] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class IdempotencyTombstoneRow(Base):
    """The Idempotency-Key of a deleted run, kept for ``IDEMPOTENCY_KEY_SECONDS`` after
    the key was first used (API.md: keys are remembered 24 h, even if the run goes): a
    retry of a request whose run was deleted since is a 409, never a second run."""

    __tablename__ = "idempotency_tombstones"

    owner_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str | None] = mapped_column(String(64))
    run_id: Mapped[str] = mapped_column(String(40))
    #: when the key was first used (the deleted run's ``created_at``)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditRow(Base):
    """One user or admin action (``app.services.audit``), written in the transaction of
    the action itself, so the table never lists what did not happen. Names, not
    foreign keys: the row outlives the user and the run it names."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Who did it: a user's name, or ``cli`` for an admin command on the server's machine.
    actor: Mapped[str] = mapped_column(String(200), index=True)
    #: ``user.created``, ``run.submitted``, ``dataset.deleted``, ``backup.taken``, …
    action: Mapped[str] = mapped_column(String(40))
    #: The user whose account or data the action concerns (None: nobody's).
    subject: Mapped[str | None] = mapped_column(String(200), index=True)
    #: What was acted on: a run or dataset id, a model name, a file.
    target: Mapped[str | None] = mapped_column(String(1000))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


def core_table(model: type[Base]) -> Table:
    """The Core ``Table`` behind a model, for statements that need none of the ORM.

    A worker writes a few statements per run on these tables (its claim, progress,
    snapshots, outcome). Through the ORM each one paid its compile step and the
    session's synchronisation (a SELECT first for a DELETE by range): for an iris
    run of 45 ms of training, 16 ms in all. Core statements on the same tables skip
    both; their column types (JSON, UTC datetimes) and defaults are the same."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


RUNS = core_table(RunRow)
METRICS = core_table(MetricRow)
WEIGHTS = core_table(WeightsRow)
CHECKPOINTS = core_table(CheckpointRow)
SNAPSHOTS = core_table(SnapshotRow)
