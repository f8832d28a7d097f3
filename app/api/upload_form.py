"""A dataset upload's ``multipart/form-data`` body, streamed to a temporary file.

Starlette's ``request.form()`` reads every part before the route sees any, keeps
as many files as the client sends (the last one wins) and knows nothing of the
dataset limits. Here the body is fed chunk by chunk to python-multipart's
streaming parser in the thread pool (never on the event loop); the one CSV file
goes to an anonymous temporary file, and ``ANNLAB_MAX_DATASET_BYTES`` and
``ANNLAB_MAX_DATASET_ROWS`` are enforced while it streams: a body over them is
refused (422) without reading the rest. A second file is a 422, as is a text
field longer than ``FIELD_MAX_BYTES``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import IO, Any, cast

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from app.config import Settings
from app.errors import AppError, BadRequest
from app.services import datasets as dataset_service
from core.errors import DatasetError

#: The longest text field accepted (target, task, name are far shorter).
FIELD_MAX_BYTES = 4096
#: Parts of one form at most (file, target, task, name and a few unknown ones).
MAX_PARTS = 16
#: Bytes of the body handed to the parser at once (one thread-pool hop each).
FEED_BYTES = 1024 * 1024


@dataclass
class UploadForm:
    """The parsed form: text fields, and the CSV file (rewound) with its name."""

    fields: dict[str, str] = field(default_factory=dict)
    file: IO[bytes] | None = None
    filename: str | None = None
    file_bytes: int = 0

    @property
    def path(self) -> str | None:
        """Where the file is, for the process that parses it (the API process never
        holds the whole file: that was its largest allocation); None without one."""
        return str(self.file.name) if self.file is not None else None

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class _FormReader:
    """python-multipart callbacks building an ``UploadForm`` under the limits."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.form = UploadForm()
        self.parts = 0
        self.newlines = 0
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._is_file = False
        self._text = bytearray()

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise DatasetError(f"the form has more than {MAX_PARTS} parts", field="file")
        self._headers = {}
        self._text = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if len(self._headers) < 16:
            self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def on_headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition")
        if disposition is None:
            raise BadRequest("malformed multipart/form-data: a part has no Content-Disposition")
        _, options = parse_options_header(disposition)
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        self._is_file = b"filename" in options
        if not self._is_file:
            return
        if self._name != "file":
            raise DatasetError(
                f"`{self._name[:40]}` must be a text field, not a file", field=self._name[:40]
            )
        if self.form.file is not None:
            raise DatasetError(
                "send one CSV file per upload: the form has a second `file`", field="file"
            )
        self.form.filename = options[b"filename"].decode("utf-8", "replace")
        # named, for the offload process to read; deleted on close (UploadForm.close)
        self.form.file = tempfile.NamedTemporaryFile(prefix="annlab-upload-")  # noqa: SIM115

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._is_file:
            self._text += data[start:end]
            if len(self._text) > FIELD_MAX_BYTES:
                raise DatasetError(
                    f"the form field `{self._name[:40]}` is longer than {FIELD_MAX_BYTES} bytes",
                    field=self._name[:40],
                )
            return
        assert self.form.file is not None
        chunk = data[start:end]
        self.form.file_bytes += len(chunk)
        dataset_service.check_file_size(n_bytes=self.form.file_bytes, settings=self.settings)
        self.newlines += chunk.count(b"\n")
        dataset_service.check_row_limit(n_rows=self.newlines - 1, settings=self.settings)
        self.form.file.write(chunk)

    def on_part_end(self) -> None:
        if not self._is_file and self._name and self._name not in self.form.fields:
            self.form.fields[self._name] = self._text.decode("utf-8", "replace")


async def read_upload_form(request: Request, settings: Settings) -> UploadForm:
    """Stream the request's multipart body into an ``UploadForm`` (400 malformed, 422
    over a limit or a second file). The caller closes it."""
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequest("malformed multipart/form-data: the Content-Type has no boundary")
    reader = _FormReader(settings)
    try:
        parser = MultipartParser(boundary, cast(Any, reader.callbacks()))
        pending = bytearray()
        async for chunk in request.stream():
            pending += chunk
            if len(pending) >= FEED_BYTES:
                await run_in_threadpool(_feed, parser, bytes(pending))
                pending.clear()
        await run_in_threadpool(_feed, parser, bytes(pending), True)
    except BaseException:
        reader.form.close()
        raise
    if reader.form.file is not None:
        reader.form.file.flush()
    return reader.form


def _feed(parser: MultipartParser, data: bytes, last: bool = False) -> None:
    try:
        if data:
            parser.write(data)
        if last:
            parser.finalize()
    except (DatasetError, AppError):
        raise
    except Exception as exc:  # python-multipart's MultipartParseError and friends
        raise BadRequest(f"malformed multipart/form-data: {exc}") from None
