"""The tus 1.0.0 headers as ``serve.tus`` reads them: each bad header is the protocol's status
with a sentence naming it, and the metadata is checked by the rules ``POST /v1/videos`` uses."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest

from cluster.errors import BadRequest, InvalidMedia, PayloadTooLarge, PreconditionFailed, UnsupportedMediaType
from serve.tus import (
    check_offset_stream,
    check_resumable,
    http_date,
    options_headers,
    parse_checksum,
    parse_length,
    parse_metadata,
    parse_offset,
    upload_fields,
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_metadata_pairs_are_base64_utf8_and_a_key_may_have_no_value() -> None:
    header = (
        f"title {b64('Été à Paris, 2026')},filename {b64('a b.mp4')},is_draft, visibility {b64('public')}"
    )
    assert parse_metadata(header) == {
        "title": "Été à Paris, 2026",
        "filename": "a b.mp4",
        "is_draft": "",
        "visibility": "public",
    }
    assert parse_metadata(None) == {} and parse_metadata("  ") == {}


@pytest.mark.parametrize(
    ("header", "said"),
    [
        ("title dGl0bGU=,title dGl0bGU=", "key 'title' is given twice"),
        ("title not*base64", "the value of 'title' is not base64 of UTF-8 text"),
        ("title " + base64.b64encode(bytes([0xFF, 0xFE])).decode(), "not base64 of UTF-8 text"),
        ("ti\u00e9tle dGl0bGU=", "is not a key"),
        (",", "is not a key"),
        ("t" * 20_000, "longer than 16384 characters"),
    ],
)
def test_bad_metadata_is_a_400_naming_what_is_wrong(header: str, said: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_metadata(header)
    assert said in refused.value.detail


def test_fields_are_checked_as_the_upload_form_checks_them() -> None:
    fields = upload_fields({"title": "  Holiday ", "translate-to": "es, FR", "filetype": "video/mp4"})
    assert fields.to_json() == {
        "title": "Holiday",
        "description": "",
        "visibility": "private",
        "translate_to": ["es", "fr"],
    }
    assert upload_fields({"title": "t", "translate_to": "de"}).translate_to == ["de"]
    for metadata, said in [
        ({}, "missing metadata key 'title'"),
        ({"title": " "}, "metadata key 'title' must not be blank"),
        ({"title": "t", "visibility": "friends"}, "metadata key 'visibility' must be 'public' or 'private'"),
        ({"title": "a\x1bb"}, "metadata key 'title' must not contain control characters (found U+001B)"),
        ({"title": "t", "translate_to": "english"}, "translate_to: 'english' is not a language code"),
    ]:
        with pytest.raises(BadRequest) as refused:
            upload_fields(metadata)
        assert refused.value.detail.startswith(said), refused.value.detail


def test_tus_resumable_must_be_1_0_0_and_the_412_names_the_version() -> None:
    check_resumable("1.0.0")
    for sent in (None, "0.2.2", "", "1.0.0,0.2.2"):
        with pytest.raises(PreconditionFailed) as refused:
            check_resumable(sent)
        assert refused.value.status_code == 412
        assert refused.value.headers == {"Tus-Version": "1.0.0"}  # type: ignore[attr-defined]


def test_lengths_and_offsets() -> None:
    assert parse_length("1048576", 2**30) == 1048576
    assert parse_offset("0") == 0 and parse_offset(" 42 ") == 42
    with pytest.raises(InvalidMedia, match="empty"):
        parse_length("0", 100)
    with pytest.raises(PayloadTooLarge, match="larger than the limit of 1 MB"):
        parse_length(str(2**20 + 1), 2**20)
    for bad in ("-1", "1e6", "١٢", "²", "12345678901234567890", "0x10"):
        with pytest.raises(BadRequest, match="must be a whole number of bytes"):
            parse_length(bad, 2**62)
    with pytest.raises(BadRequest, match="Upload-Length is missing"):
        parse_length(None, 100)
    with pytest.raises(BadRequest, match="Upload-Offset is missing"):
        parse_offset(None)


def test_checksums_sha1_and_sha256() -> None:
    chunk = b"some bytes of a video"
    sha1 = base64.b64encode(hashlib.sha1(chunk).digest()).decode()
    sha256 = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
    assert parse_checksum(f"sha1 {sha1}") == ("sha1", hashlib.sha1(chunk).digest())
    assert parse_checksum(f"SHA256 {sha256}") == ("sha256", hashlib.sha256(chunk).digest())
    assert parse_checksum(None) is None
    for bad, said in [
        (f"md5 {sha1}", "'md5' is not one of sha1, sha256"),
        ("sha1 ***", "the digest is not base64"),
        (f"sha1 {sha256}", "a sha1 digest has 20 bytes"),
    ]:
        with pytest.raises(BadRequest) as refused:
            parse_checksum(bad)
        assert said in refused.value.detail


def test_patch_bodies_are_offset_streams_only() -> None:
    check_offset_stream("application/offset+octet-stream")
    check_offset_stream("Application/Offset+Octet-Stream; charset=binary")
    for other in (None, "application/octet-stream", "multipart/form-data; boundary=x"):
        with pytest.raises(UnsupportedMediaType) as refused:
            check_offset_stream(other)
        assert refused.value.status_code == 415


def test_options_and_dates() -> None:
    assert options_headers(4096 * 2**20) == {
        "Tus-Version": "1.0.0",
        "Tus-Extension": "creation,expiration,termination,checksum",
        "Tus-Max-Size": str(4096 * 2**20),
        "Tus-Checksum-Algorithm": "sha1,sha256",
    }
    assert http_date(datetime(2026, 6, 25, 17, 3, tzinfo=UTC)) == "Thu, 25 Jun 2026 17:03:00 GMT"
