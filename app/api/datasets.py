"""Datasets: the built-ins (read-only) and uploads as JSON or CSV."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.api.query import StrictQuery
from app.config import Settings
from app.deps import CurrentUser, SessionDep, SettingsDep
from app.errors import BadRequest, UnsupportedMediaType
from app.http import GuardedRoute, ORJSONResponse
from app.schemas import (
    DATASET_EXAMPLE,
    TOO_LARGE,
    DatasetCreate,
    DatasetList,
    DatasetOut,
    problem,
)
from app.services import datasets as dataset_service
from core.data import Dataset
from core.dataset_export import dataset_to_csv, dataset_to_json
from core.errors import DatasetError
from core.loaders import dataset_from_csv, dataset_from_json

DatasetId = Annotated[str, Path(description="Dataset id.", max_length=200)]

router = APIRouter(prefix="/datasets", tags=["datasets"], route_class=GuardedRoute)

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: problem("No dataset with this id.")}


@router.get("", response_model=DatasetList, summary="List datasets (built-ins first)")
def list_datasets(session: SessionDep, user: CurrentUser) -> DatasetList:
    items = dataset_service.list_datasets(session=session, owner_id=user.scope)
    return DatasetList(items=items, total=len(items))


@router.get("/{dataset_id}", response_model=DatasetOut, responses=NOT_FOUND, summary="One dataset")
def get_dataset(dataset_id: DatasetId, session: SessionDep, user: CurrentUser) -> DatasetOut:
    return dataset_service.get_dataset(session=session, dataset_id=dataset_id, owner_id=user.scope)


_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": DatasetCreate.model_json_schema(),
                "examples": {
                    "classification": {
                        "summary": "Class names as targets",
                        "value": DATASET_EXAMPLE,
                    },
                    "regression": {
                        "summary": "Numbers as targets",
                        "value": {
                            "name": "line",
                            "task": "regression",
                            "features": [[0.0], [1.0], [2.0], [3.0]],
                            "targets": [1.0, 3.0, 5.0, 7.0],
                        },
                    },
                },
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "target", "task"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "CSV with a header row; every column but the "
                            "target must be numeric.",
                        },
                        "target": {"type": "string", "description": "Name of the target column."},
                        "task": {"type": "string", "enum": ["classification", "regression"]},
                        "name": {
                            "type": "string",
                            "description": "Dataset name (default: the file name).",
                        },
                        "delimiter": {
                            "type": "string",
                            "description": "`,`, `;` or `\\t` (tab); default: detected from "
                            "the header row.",
                        },
                    },
                }
            },
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=DatasetOut,
    openapi_extra=_UPLOAD_BODY,
    responses={
        400: problem("Malformed JSON or form."),
        413: TOO_LARGE,
        415: problem("Neither JSON nor multipart/form-data."),
        422: problem(
            "Ragged rows, non-numeric or non-finite features, fewer than 2 "
            "rows, targets ≠ rows, one class, or over a size limit."
        ),
    },
    summary="Upload a dataset (JSON or a CSV file)",
)
async def create_dataset(
    request: Request, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> DatasetOut:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        dataset = await _from_form(request, settings)
    elif "json" in content_type:
        dataset = await _from_json(request, settings)
    else:
        raise UnsupportedMediaType(
            "send the dataset as application/json or as multipart/form-data with a CSV file"
        )
    # The write (and, on SQLite, waiting for the write lock) off the event loop.
    return await run_in_threadpool(
        dataset_service.create_dataset,
        session=session,
        owner_id=user.owner_id,
        dataset=dataset,
        settings=settings,
    )


async def _from_json(request: Request, settings: Settings) -> Dataset:
    try:
        payload = await request.json()
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    try:
        upload = DatasetCreate.model_validate(payload)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in errors]
        ) from None
    dataset_service.check_row_limit(n_rows=len(upload.features), settings=settings)
    return dataset_from_json(
        name=upload.name,
        task=upload.task,
        features=upload.features,
        targets=upload.targets,
        feature_names=upload.feature_names,
    )


async def _from_form(request: Request, settings: Settings) -> Dataset:
    try:
        form = await request.form(max_part_size=settings.max_body_bytes)
    except Exception as exc:  # malformed multipart
        if getattr(exc, "status_code", None) == 413:
            raise
        raise BadRequest(f"malformed multipart/form-data: {exc}") from None
    upload = form.get("file")
    target = form.get("target")
    task = form.get("task")
    name = form.get("name")
    delimiter = form.get("delimiter")
    missing = [
        field
        for field, value in (("file", upload), ("target", target), ("task", task))
        if value is None or value == ""
    ]
    if missing:
        raise RequestValidationError(
            [
                {"type": "missing", "loc": ["body", field], "msg": "Field required", "input": None}
                for field in missing
            ]
        )
    if not isinstance(upload, UploadFile):
        raise DatasetError("`file` must be a file (a CSV with a header row)", field="file")
    if task not in ("classification", "regression"):
        raise DatasetError("`task` must be classification or regression", field="task")
    content = await upload.read(settings.max_dataset_bytes + 1)
    dataset_service.check_file_size(n_bytes=len(content), settings=settings)
    dataset_service.check_row_limit(n_rows=content.count(b"\n") - 1, settings=settings)
    default_name = (upload.filename or "upload.csv").rsplit("/", 1)[-1].removesuffix(".csv")
    dataset_name = name if isinstance(name, str) and name.strip() else default_name
    try:
        return dataset_from_csv(
            content=content,
            target=str(target),
            task=task,
            name=dataset_name[:200],
            delimiter=delimiter if isinstance(delimiter, str) else None,
        )
    except DatasetError as exc:
        # A problem inside the CSV ("line 3, column 'x'") is in the `file` part of the form.
        if exc.field not in _FORM_FIELDS:
            raise DatasetError(exc.message, field="file") from None
        raise


_FORM_FIELDS = ("file", "target", "task", "name", "delimiter")


@router.delete(
    "/{dataset_id}",
    status_code=204,
    responses={
        **NOT_FOUND,
        403: problem("Built-in datasets cannot be deleted."),
        409: problem(
            "A queued or running run uses the dataset, or finished runs do and `force` is "
            "not set (the message says how many)."
        ),
    },
    dependencies=[StrictQuery],
    summary="Delete an uploaded dataset",
)
def delete_dataset(
    dataset_id: DatasetId,
    session: SessionDep,
    user: CurrentUser,
    force: Annotated[
        bool, Query(description="Delete it although finished runs refer to it.")
    ] = False,
) -> Response:
    dataset_service.delete_dataset(
        session=session, dataset_id=dataset_id, owner_id=user.scope, force=force
    )
    return Response(status_code=204)


@router.get(
    "/{dataset_id}/data",
    responses={
        **NOT_FOUND,
        200: {
            "description": "`format=csv`: a header row of names, the target column(s) last; "
            "`format=json`: the JSON body of an upload (`POST /datasets`) of the same data.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
    },
    dependencies=[StrictQuery],
    summary="Download a dataset (CSV or JSON)",
)
def download_dataset(
    dataset_id: DatasetId,
    session: SessionDep,
    user: CurrentUser,
    format: Annotated[Literal["csv", "json"], Query(description="`csv` (default) or `json`.")] = (
        "csv"
    ),
) -> Response:
    data = dataset_service.load_dataset(session=session, dataset_id=dataset_id, owner_id=user.scope)
    if format == "json":
        return ORJSONResponse(dataset_to_json(data))
    return Response(
        dataset_to_csv(data),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{dataset_id}.csv"'},
    )
