"""The tus 1.0.0 protocol's headers (https://tus.io/protocols/resumable-upload): what
``/v1/uploads`` speaks and how each request header is read. Pure: no I/O, no Ray.

Extensions: creation (``Upload-Length``, ``Upload-Metadata``; not deferred lengths),
expiration (``Upload-Expires``), termination, checksum (``sha1``, which the protocol requires,
and ``sha256``). ``Upload-Metadata`` carries the same fields as ``POST /v1/videos``: ``title``,
``description``, ``visibility`` and ``translate_to`` (``translate-to`` is read the same), each
checked as there; other keys (``filename``, ``filetype``, which clients often send) are kept
for ``HEAD`` and otherwise ignored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from catalog.validation import VideoFields, check_video_fields
from cluster.errors import (
    BadRequest,
    Conflict,
    InvalidMedia,
    PayloadTooLarge,
    PreconditionFailed,
    UnsupportedMediaType,
)
from serve.sidecar_files import parse_translate_to

TUS_VERSION = "1.0.0"
EXTENSIONS = ("creation", "expiration", "termination", "checksum")
CHECKSUMS: dict[str, Callable[[], Any]] = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
"""``Upload-Checksum`` algorithms, by the name the header gives them."""
OFFSET_STREAM = "application/offset+octet-stream"
"""The only Content-Type a PATCH may have."""
METADATA_MAX_CHARS = 16 * 1024
"""Longest ``Upload-Metadata`` kept (title and description fit, base64 and all, several times)."""
NUMBER = re.compile(r"[0-9]{1,19}")
"""A byte count or offset: ASCII digits (``str.isdigit`` takes ``²``), at most what an int64 holds."""
METADATA_KEY = re.compile(r"[!-+\-.-~]{1,64}")
"""A metadata key: printable ASCII without space or comma, as the protocol says."""
EXPOSED_HEADERS = (
    "Location", "Tus-Resumable", "Tus-Version", "Tus-Extension", "Tus-Max-Size", "Tus-Checksum-Algorithm",
    "Upload-Offset", "Upload-Length", "Upload-Metadata", "Upload-Expires", "Upload-Video-Id",
)  # fmt: skip
"""Answer headers a page on another origin may read (CORS)."""
REQUEST_HEADERS = (
    "Tus-Resumable", "Upload-Length", "Upload-Metadata", "Upload-Offset", "Upload-Checksum",
    "X-Requested-With",
)  # fmt: skip
"""Request headers a page on another origin may send (CORS; tus-js-client sends these)."""


@dataclass(frozen=True)
class UploadFields:
    """What an upload becomes, read from its ``Upload-Metadata``."""

    video: VideoFields
    translate_to: list[str]

    def to_json(self) -> dict[str, Any]:
        fields = self.video
        return {
            "title": fields.title,
            "description": fields.description,
            "visibility": fields.visibility,
            "translate_to": self.translate_to,
        }


class VersionMismatch(PreconditionFailed):
    """412 with the versions this server speaks, as the protocol asks."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.headers = {"Tus-Version": TUS_VERSION}


class OffsetMismatch(Conflict):
    """409 with the upload's real offset, so a client can tell what to send."""

    def __init__(self, sent: int, received: int) -> None:
        super().__init__(
            f"Upload-Offset is {sent} but the upload has {received} bytes: send the bytes from {received} on"
        )
        self.headers = {"Upload-Offset": str(received)}


def check_resumable(value: str | None) -> None:
    """``VersionMismatch`` (412) unless the client speaks tus 1.0.0."""
    if value is None or value.strip() != TUS_VERSION:
        said = "missing" if value is None else f"{value[:20]!r}"
        raise VersionMismatch(f"Tus-Resumable is {said}; this server speaks tus {TUS_VERSION}")


def parse_length(value: str | None, max_bytes: int) -> int:
    """``Upload-Length``: the whole upload's size, at least one byte and at most ``max_bytes``."""
    if value is None:
        raise BadRequest("Upload-Length is missing: send the file's size (deferred lengths are unsupported)")
    length = _number(value, "Upload-Length")
    if length == 0:
        raise InvalidMedia("the uploaded file is empty")
    if length > max_bytes:
        raise PayloadTooLarge(f"the upload is larger than the limit of {max_bytes / 1024 / 1024:g} MB")
    return length


def parse_offset(value: str | None) -> int:
    if value is None:
        raise BadRequest("Upload-Offset is missing: send the offset HEAD answered")
    return _number(value, "Upload-Offset")


def _number(value: str, name: str) -> int:
    if not NUMBER.fullmatch(value.strip()):
        raise BadRequest(f"{name} must be a whole number of bytes, not {value[:30]!r}")
    return int(value.strip())


def check_offset_stream(content_type: str | None) -> None:
    kind = (content_type or "").partition(";")[0].strip().lower()
    if kind != OFFSET_STREAM:
        raise UnsupportedMediaType(
            f"a PATCH body must be Content-Type: {OFFSET_STREAM}, not {(content_type or 'none')[:60]!r}"
        )


def parse_metadata(value: str | None) -> dict[str, str]:
    """``Upload-Metadata``: ``key base64value`` pairs separated by commas (a key may have no value)."""
    if value is None or not value.strip():
        return {}
    if len(value) > METADATA_MAX_CHARS:
        raise BadRequest(f"Upload-Metadata is longer than {METADATA_MAX_CHARS} characters")
    found: dict[str, str] = {}
    for pair in value.split(","):
        key, _, encoded = pair.strip().partition(" ")
        if not METADATA_KEY.fullmatch(key):
            raise BadRequest(f"Upload-Metadata: {key[:40]!r} is not a key (printable ASCII but ' ' and ',')")
        if key in found:
            raise BadRequest(f"Upload-Metadata: key {key!r} is given twice")
        try:
            found[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise BadRequest(f"Upload-Metadata: the value of {key!r} is not base64 of UTF-8 text") from None
    return found


def upload_fields(metadata: dict[str, str]) -> UploadFields:
    """The video's fields, checked as ``POST /v1/videos`` checks its form."""
    video = check_video_fields(
        metadata.get("title"), metadata.get("description"), metadata.get("visibility"), kind="metadata key"
    )
    translate_to = metadata.get("translate_to", metadata.get("translate-to"))
    return UploadFields(video=video, translate_to=parse_translate_to(translate_to))


def parse_checksum(value: str | None) -> tuple[str, bytes] | None:
    """``Upload-Checksum: sha1 <base64 digest>`` -> ``("sha1", digest)``; None without the header."""
    if value is None:
        return None
    name, _, encoded = value.strip().partition(" ")
    name = name.lower()
    if name not in CHECKSUMS:
        raise BadRequest(f"Upload-Checksum: {name[:20]!r} is not one of {', '.join(CHECKSUMS)}")
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise BadRequest("Upload-Checksum: the digest is not base64") from None
    if len(digest) != CHECKSUMS[name]().digest_size:
        raise BadRequest(f"Upload-Checksum: a {name} digest has {CHECKSUMS[name]().digest_size} bytes")
    return name, digest


def http_date(moment: datetime) -> str:
    """``Upload-Expires``'s form (RFC 9110): ``Wed, 25 Jun 2026 17:03:00 GMT``."""
    return format_datetime(moment, usegmt=True)


def options_headers(max_bytes: int) -> dict[str, str]:
    """What ``OPTIONS /v1/uploads`` answers: the version, extensions, limit and checksums."""
    return {
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": ",".join(EXTENSIONS),
        "Tus-Max-Size": str(max_bytes),
        "Tus-Checksum-Algorithm": ",".join(CHECKSUMS),
    }
