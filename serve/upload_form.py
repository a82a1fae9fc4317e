"""The parts of an upload form, as python-multipart's push parser delivers them.

``PartCollector`` turns the parser's callbacks into the small text fields, the sidecar subtitle
files (spooled) and views of the video's bytes; ``FileSink`` writes those views to storage
from a worker thread, a batch at a time (``serve.uploads`` explains why views, not copies).
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING

import anyio.to_thread
from python_multipart.multipart import parse_options_header

from cluster.errors import BadRequest
from cluster.storage import Storage
from serve.sidecar_files import MAX_SIDECARS, Sidecar, sidecar_extension, too_large

if TYPE_CHECKING:  # python-multipart declares its callback types for type checkers only
    from python_multipart.multipart import MultipartCallbacks

FILE_FIELD = "file"
SUBTITLES_FIELD = "subtitles"
SUBTITLES_LANG_FIELD = "subtitles_lang"
TEXT_FIELDS = ("title", "description", "visibility", "translate_to")
FIELD_MAX_BYTES = 64 * 1024
"""Cap on one text field: far above the title/description limits, small enough to keep."""
WRITE_BATCH_BYTES = 4 * 1024 * 1024
"""File bytes handed to the writer thread at once: one thread hop per batch, not per chunk."""


class FileSink:
    """Writes views of file bytes to storage from a worker thread, a batch at a time."""

    def __init__(self, storage: Storage, key: str) -> None:
        self._storage = storage
        self._key = key
        self._out: IO[bytes] | None = None
        self._batch: list[memoryview] = []
        self._batch_bytes = 0

    async def write(self, pieces: list[memoryview]) -> None:
        self._batch += pieces
        self._batch_bytes += sum(map(len, pieces))
        if self._batch_bytes >= WRITE_BATCH_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        if self._batch:
            batch, self._batch, self._batch_bytes = self._batch, [], 0
            await anyio.to_thread.run_sync(self._write_batch, batch)

    def _write_batch(self, batch: list[memoryview]) -> None:
        if self._out is None:
            self._out = self._storage.open(self._key, "wb")
        for piece in batch:
            self._out.write(piece)

    async def close(self) -> None:
        await self._flush()
        if self._out is not None:
            out, self._out = self._out, None
            await anyio.to_thread.run_sync(out.close)

    async def abandon(self) -> None:
        """Close without flushing (after an error); the caller deletes the prefix."""
        self._batch, self._batch_bytes = [], 0
        if self._out is not None:
            out, self._out = self._out, None
            await anyio.to_thread.run_sync(out.close)


class PartCollector:
    """python-multipart callbacks -> the text fields, and file bytes waiting to be written."""

    def __init__(self, max_sidecar_bytes: int = 0) -> None:
        self.fields: dict[str, str] = {}
        self.file_seen = False
        self.file_bytes = 0
        self.sidecars: list[Sidecar] = []
        self.sidecar_langs: list[str] = []
        self._max_sidecar_bytes = max_sidecar_bytes
        self._file_data: list[memoryview] = []
        self._headers: dict[bytes, bytes] = {}
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._part: str | None = None  # name of the current part, FILE_FIELD, or None to skip it
        self._value = bytearray()

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._header_field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._header_value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def take_file_data(self) -> list[memoryview]:
        data, self._file_data = self._file_data, []
        return data

    def close_sidecars(self) -> None:
        for sidecar in self.sidecars:
            sidecar.spool.close()

    def _part_begin(self) -> None:
        self._headers = {}
        self._part = None
        self._value = bytearray()

    def _header_end(self) -> None:
        self._headers[bytes(self._header_field).lower()] = bytes(self._header_value)
        self._header_field = bytearray()
        self._header_value = bytearray()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition"))
        name: str | None = options.get(b"name", b"").decode("utf-8", "replace")
        if name == FILE_FIELD:
            if self.file_seen:
                raise BadRequest(f"form field {FILE_FIELD!r} was sent more than once")
            self.file_seen = True
        elif name == SUBTITLES_FIELD:
            if len(self.sidecars) >= MAX_SIDECARS:
                raise BadRequest(f"an upload may carry at most {MAX_SIDECARS} subtitle files")
            filename = options.get(b"filename", b"").decode("utf-8", "replace")
            self.sidecars.append(Sidecar(filename, sidecar_extension(filename)))
        elif name == SUBTITLES_LANG_FIELD:
            if len(self.sidecar_langs) >= MAX_SIDECARS:
                raise BadRequest(f"an upload may carry at most {MAX_SIDECARS} subtitle files")
        elif name in TEXT_FIELDS:
            if name in self.fields:
                raise BadRequest(f"form field {name!r} was sent more than once")
        else:
            name = None  # a field we do not know: its bytes are skipped, not kept
        self._part = name

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part == FILE_FIELD:
            # A view, not a copy: ``data`` is an immutable chunk of the body (or the parser's
            # boundary), kept alive by the view until the writer thread is done with it.
            self._file_data.append(memoryview(data)[start:end])
            self.file_bytes += end - start
        elif self._part == SUBTITLES_FIELD:
            # Small (capped): written here, to memory or, past SPOOL_MEMORY_BYTES, a temp file.
            sidecar = self.sidecars[-1]
            sidecar.size += end - start
            if sidecar.size > self._max_sidecar_bytes:
                raise too_large(sidecar.name, self._max_sidecar_bytes)
            sidecar.spool.write(data[start:end])
        elif self._part is not None:
            if len(self._value) + end - start > FIELD_MAX_BYTES:
                raise BadRequest(f"form field {self._part!r} is too long")
            self._value.extend(data[start:end])

    def _part_end(self) -> None:
        if self._part is not None and self._part not in (FILE_FIELD, SUBTITLES_FIELD):
            try:
                value = self._value.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest(f"form field {self._part!r} is not valid UTF-8") from None
            if self._part == SUBTITLES_LANG_FIELD:
                self.sidecar_langs.append(value)
            else:
                self.fields[self._part] = value
        self._part = None
