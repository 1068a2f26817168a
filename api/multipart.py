"""Receiving a multipart upload by streaming its `file` part to disk, never holding it in memory.

The body is parsed chunk by chunk as it arrives; the file part goes straight to a temporary file and the
upload is refused (413) as soon as it passes the size cap, without reading the rest.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from api.errors import ApiError

MAX_FIELD_BYTES = 1024
MAX_FIELDS = 16


@dataclass
class ReceivedUpload:
    path: Path
    filename: str
    size: int
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def _safe_filename(raw: bytes) -> str:
    name = PurePath(raw.decode("utf-8", "replace").replace("\\", "/")).name.replace("\x00", "")
    return name[:200] or "upload.csv"


class _Receiver:
    """python-multipart callbacks collecting small fields and writing the file part to `dest`."""

    def __init__(self, dest_dir: Path, max_bytes: int) -> None:
        self.dest_dir = dest_dir
        self.max_bytes = max_bytes
        self.fields: dict[str, str] = {}
        self.file_path: Path | None = None
        self.filename = ""
        self.size = 0
        self._fh: int | None = None
        self._headers: dict[bytes, bytes] = {}
        self._hname = b""
        self._hvalue = b""
        self._part_name: str | None = None
        self._is_file = False
        self._value = bytearray()

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers = {}
        self._hname = self._hvalue = b""
        self._part_name = None
        self._is_file = False
        self._value = bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._hname.strip().lower()] = self._hvalue.strip()
        self._hname = self._hvalue = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self._part_name = name
        if name == "file":
            if self.file_path is not None:
                raise ApiError(422, "send exactly one `file` part per upload")
            self._is_file = True
            self.filename = _safe_filename(options.get(b"filename", b""))
            fd, tmp = tempfile.mkstemp(prefix="upload-", suffix=".csv", dir=self.dest_dir)
            self._fh = fd
            self.file_path = Path(tmp)
        elif len(self.fields) >= MAX_FIELDS:
            raise ApiError(422, "too many form fields; an upload takes `file` and optional `timezone`, `operator`")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.size += end - start
            if self.size > self.max_bytes:
                raise ApiError(
                    413,
                    f"the file is larger than {self.max_bytes // (1024 * 1024)} MB; split it into smaller files "
                    "(each is loaded on its own; loading a row twice only counts a duplicate)",
                )
            assert self._fh is not None
            os.write(self._fh, data[start:end])
        else:
            self._value += data[start:end]
            if len(self._value) > MAX_FIELD_BYTES:
                raise ApiError(422, f"form field {self._part_name!r} is too long (at most {MAX_FIELD_BYTES} bytes)")

    def _part_end(self) -> None:
        if self._is_file:
            self.close_file()
        elif self._part_name:
            self.fields[self._part_name] = self._value.decode("utf-8", "replace").strip()

    def close_file(self) -> None:
        if self._fh is not None:
            os.close(self._fh)
            self._fh = None


async def receive_upload(request: Request, dest_dir: Path, max_bytes: int) -> ReceivedUpload:
    """Stream a multipart/form-data body: the `file` part to a temporary file under dest_dir."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise ApiError(422, "send the CSV as multipart/form-data with the file in a field named `file`")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes + 64 * 1024:
        raise ApiError(
            413, f"the upload is larger than {max_bytes // (1024 * 1024)} MB; split the file into smaller files"
        )
    dest_dir.mkdir(parents=True, exist_ok=True)
    receiver = _Receiver(dest_dir, max_bytes)
    parser = MultipartParser(boundary, receiver.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except (ApiError, MultipartParseError, ClientDisconnect) as exc:
        receiver.close_file()
        if receiver.file_path:
            receiver.file_path.unlink(missing_ok=True)
        if isinstance(exc, ApiError):
            raise
        if isinstance(exc, ClientDisconnect):
            raise ApiError(400, "the client went away before the upload finished") from None
        raise ApiError(
            422, f"the multipart body cannot be read ({exc}); send the CSV in a field named `file`"
        ) from None
    receiver.close_file()
    if receiver.file_path is None:
        raise ApiError(422, "no `file` field in the form; send the CSV as multipart field `file`")
    return ReceivedUpload(receiver.file_path, receiver.filename, receiver.size, receiver.fields)
