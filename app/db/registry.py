"""The model registry's rows: models, versions, aliases (keyword-only, nothing commits)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.db.tables import ModelAliasRow, ModelRow, ModelVersionRow, utcnow


def create_model(
    *, session: Session, owner_id: str, name: str, description: str | None
) -> ModelRow:
    row = ModelRow(
        id="mdl_" + secrets.token_hex(12),
        owner_id=owner_id,
        name=name,
        description=description,
        created_at=utcnow(),
        last_version=0,
    )
    session.add(row)
    session.flush()
    return row


def find_model(*, session: Session, name: str) -> ModelRow | None:
    """The model of this name, whoever owns it (names are unique on the server)."""
    return session.scalars(select(ModelRow).where(ModelRow.name == name)).first()


def list_models(
    *, session: Session, owner_id: str | None, limit: int, offset: int
) -> tuple[list[ModelRow], int]:
    conditions = [] if owner_id is None else [ModelRow.owner_id == owner_id]
    total = session.scalar(select(func.count()).select_from(ModelRow).where(*conditions))
    rows = session.scalars(
        select(ModelRow).where(*conditions).order_by(ModelRow.name).limit(limit).offset(offset)
    )
    return list(rows), int(total or 0)


def delete_model(*, session: Session, model_id: str) -> None:
    for table in (ModelAliasRow, ModelVersionRow):
        session.execute(delete(table).where(table.model_id == model_id))
    session.execute(delete(ModelRow).where(ModelRow.id == model_id))


def versions(*, session: Session, model_id: str) -> Sequence[ModelVersionRow]:
    return session.scalars(
        select(ModelVersionRow)
        .where(ModelVersionRow.model_id == model_id)
        .order_by(ModelVersionRow.version)
    ).all()


def get_version(*, session: Session, model_id: str, version: int) -> ModelVersionRow | None:
    return session.get(ModelVersionRow, (model_id, version))


def add_version(
    *, session: Session, model: ModelRow, run_id: str, epoch: int | None, metrics: object
) -> ModelVersionRow:
    """The next version number (never one handed out before, even if deleted since)."""
    model.last_version += 1
    row = ModelVersionRow(
        model_id=model.id,
        version=model.last_version,
        run_id=run_id,
        epoch=epoch,
        metrics=metrics,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def aliases(*, session: Session, model_id: str) -> dict[str, int]:
    rows = session.scalars(
        select(ModelAliasRow)
        .where(ModelAliasRow.model_id == model_id)
        .order_by(ModelAliasRow.alias)
    )
    return {row.alias: row.version for row in rows}


def alias_version(*, session: Session, model_id: str, alias: str) -> int | None:
    row = session.get(ModelAliasRow, (model_id, alias))
    return None if row is None else row.version


def set_alias(*, session: Session, model_id: str, alias: str, version: int) -> None:
    row = session.get(ModelAliasRow, (model_id, alias))
    if row is None:
        session.add(ModelAliasRow(model_id=model_id, alias=alias, version=version))
    else:
        row.version = version
    session.flush()


def delete_alias(*, session: Session, model_id: str, alias: str) -> bool:
    result = session.execute(
        delete(ModelAliasRow).where(
            ModelAliasRow.model_id == model_id, ModelAliasRow.alias == alias
        )
    )
    return bool(getattr(result, "rowcount", 0))


def models_using_runs(*, session: Session, run_ids: Sequence[str]) -> list[tuple[str, int, str]]:
    """(model name, version, run id) of every version made from one of these runs."""
    if not run_ids:
        return []
    rows = session.execute(
        select(ModelRow.name, ModelVersionRow.version, ModelVersionRow.run_id)
        .join(ModelRow, ModelRow.id == ModelVersionRow.model_id)
        .where(ModelVersionRow.run_id.in_(list(run_ids)))
        .order_by(ModelRow.name, ModelVersionRow.version)
    )
    return [(name, int(version), run_id) for name, version, run_id in rows]
