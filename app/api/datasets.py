"""Datasets: the built-ins (read-only) and uploads as JSON or CSV."""

from __future__ import annotations

import json
import pathlib
import tempfile
from typing import Annotated, Any, BinaryIO, Literal, cast

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.api.query import StrictQuery
from app.api.upload_form import read_upload_form
from app.config import Settings
from app.db.datasets import DatasetSummary
from app.db.engine import write_session
from app.deps import CurrentUser, SessionDep, SettingsDep
from app.errors import BadRequest, UnsupportedMediaType
from app.http import GuardedRoute, ORJSONResponse
from app.offload import offload_process
from app.schemas import (
    DATASET_EXAMPLE,
    TOO_LARGE,
    DatasetCreate,
    DatasetList,
    DatasetOut,
    problem,
)
from app.services import datasets as dataset_service
from app.services.auth import Caller
from core.data import Dataset
from core.dataset_export import dataset_to_csv, dataset_to_json
from core.errors import DatasetError
from core.loaders import dataset_from_csv, dataset_from_json
from core.specs import NAME_MAX_LENGTH

DatasetId = Annotated[str, Path(description="Dataset id.", max_length=NAME_MAX_LENGTH)]

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
                    # file, target and task are required (a 422 names a missing one); not
                    # listed in `required`: schemathesis sends the JSON body to test
                    # multipart cases without them, and the JSON body is valid.
                    "type": "object",
                    "description": "`file`, `target` and `task` are required.",
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
            "rows, targets ≠ rows, one class, a second file, or over a size limit."
        ),
    },
    summary="Upload a dataset (JSON or a CSV file)",
)
async def create_dataset(request: Request, user: CurrentUser, settings: SettingsDep) -> DatasetOut:
    """Async only to stream the body: the parsing and encoding run in an offload
    process (``app.offload``, a few at once; the event loop keeps answering), then
    one short write transaction in a thread."""
    content_type = request.headers.get("content-type", "")
    # The offload process writes the encoded dataset here, and the store reads it from
    # there (into SQLite in pieces): pickled back through the pool's pipe, a 72 MB .npz
    # cost ~0.7 s and two copies in this process. Deleted on close, whatever happens.
    with tempfile.NamedTemporaryFile(prefix="annlab-npz-") as encoded:
        if content_type.startswith("multipart/form-data"):
            form = await read_upload_form(request, settings)
            try:
                dataset = await offload_process(
                    "upload",
                    parse_form_upload,
                    form.path,
                    form.fields,
                    form.filename,
                    settings,
                    encoded.name,
                )
            finally:
                form.close()
        elif "json" in content_type:
            body = await request.body()
            dataset = await offload_process(
                "upload", parse_json_upload, body, settings, encoded.name
            )
            del body
        else:
            raise UnsupportedMediaType(
                "send the dataset as application/json or as multipart/form-data with a CSV file"
            )
        return await run_in_threadpool(
            _store,
            request.app.state.session_factory,
            user,
            dataset,
            cast(BinaryIO, encoded),
            settings,
        )


def parse_json_upload(body: bytes, settings: Settings, out_path: str) -> DatasetSummary:
    """A JSON upload, parsed (in an offload process) and encoded into ``out_path``."""
    dataset = _from_json(body, settings)
    dataset_service.encode_dataset(dataset, settings, out_path)
    return DatasetSummary.of(dataset)


def parse_form_upload(
    path: str | None,
    fields: dict[str, str],
    filename: str | None,
    settings: Settings,
    out_path: str,
) -> DatasetSummary:
    """A CSV upload (the file at ``path``, streamed there by the API process), parsed in
    an offload process and encoded into ``out_path``. The parser reads the file itself
    (in blocks, for a plain CSV): a 70 MB upload is not read whole into memory first."""
    content = None if path is None else pathlib.Path(path)
    dataset = _from_form(content, fields, filename, settings)
    dataset_service.encode_dataset(dataset, settings, out_path)
    return DatasetSummary.of(dataset)


def _store(
    factory: sessionmaker[Session],
    owner: Caller,
    dataset: Dataset | DatasetSummary,
    data: BinaryIO,
    settings: Settings,
) -> DatasetOut:
    with write_session(factory) as session:
        return dataset_service.create_dataset(
            session=session, owner=owner, dataset=dataset, data=data, settings=settings
        )


def _from_json(body: bytes, settings: Settings) -> Dataset:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:  # NaN, Infinity, huge integers: Python's parser reads them, the schema refuses
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise BadRequest(f"the body is not valid JSON: {str(exc)[:200]}") from None
    try:
        upload = DatasetCreate.model_validate(payload)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
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


def _from_form(
    content: bytes | pathlib.Path | None,
    fields: dict[str, str],
    filename: str | None,
    settings: Settings,
) -> Dataset:
    target = fields.get("target")
    task = fields.get("task")
    name = fields.get("name")
    delimiter = fields.get("delimiter")
    missing = [
        field
        for field, value in (("file", content), ("target", target), ("task", task))
        if value is None or value == ""
    ]
    if missing:
        raise RequestValidationError(
            [
                {"type": "missing", "loc": ["body", field], "msg": "Field required", "input": None}
                for field in missing
            ]
        )
    assert content is not None and target is not None
    if task not in ("classification", "regression"):
        raise DatasetError("`task` must be classification or regression", field="task")
    default_name = (filename or "upload.csv").rsplit("/", 1)[-1].removesuffix(".csv")
    dataset_name = name if name is not None and name.strip() else default_name
    if len(dataset_name) > NAME_MAX_LENGTH:
        field = "name" if name is not None and name.strip() else "file"
        raise DatasetError(
            f"the dataset name has {len(dataset_name)} characters, at most {NAME_MAX_LENGTH} "
            "are allowed",
            field=field,
        )
    try:
        return dataset_from_csv(
            content=content, target=target, task=task, name=dataset_name, delimiter=delimiter
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
    dataset_service.delete_dataset(session=session, dataset_id=dataset_id, actor=user, force=force)
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
