"""Pure parts of media serving: Range parsing, media paths, cache headers."""

from __future__ import annotations

import pytest

from serve.routes.media import MEDIA_PATH, RangeNotSatisfiable, cache_control, parse_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 100)),
        ("bytes=100-199", (100, 200)),
        ("bytes=950-", (950, 1000)),
        ("bytes=-50", (950, 1000)),
        ("bytes=-5000", (0, 1000)),  # a suffix longer than the file is the whole file
        ("bytes=900-5000", (900, 1000)),  # an end past the file is clipped
        ("BYTES = 0-0", (0, 1)),
    ],
)
def test_single_ranges(header: str, expected: tuple[int, int]) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "items=0-5",
        "bytes=0-5,10-20",
        "bytes=abc",
        "bytes=5",
        "bytes=x-9",
        "bytes=-",
        "bytes=5-3",  # last < first: an invalid range, ignored (RFC 9110 14.1.1), not a 416
        "bytes=\xb2-",  # '²': str.isdigit() says yes, int() says no (was a 500)
        "bytes=\u0663-",  # an Arabic-Indic digit, the same trap
        "bytes=0-" + "9" * 5000,  # past int()'s 4300-digit limit (was a 500)
        "bytes=" + "9" * 20 + "-",  # more digits than any file's size has
        "bytes=+5-9",
        "bytes=5 - 9",
    ],
)
def test_ranges_we_do_not_serve_mean_the_whole_file(header: str | None) -> None:
    assert parse_range(header, 1000) is None


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=2000-3000", "bytes=-0", "bytes=999999-999999"])
def test_ranges_outside_the_file_are_416_with_its_size(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as raised:
        parse_range(header, 1000)
    assert raised.value.status_code == 416
    assert raised.value.headers == {"Content-Range": "bytes */1000"}


def test_any_range_of_an_empty_file_is_416() -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=-10", 0)


@pytest.mark.parametrize(
    "path", ["manifest.mpd", "master.m3u8", "360p/init.mp4", "360p/seg-00001.m4s", "audio/seg-00012.m4s"]
)
def test_published_paths_are_accepted(path: str) -> None:
    assert MEDIA_PATH.fullmatch(path)


@pytest.mark.parametrize(
    "path",
    ["../sources/x/source", "360p/../../x", "/etc/passwd", ".hidden", "a//b", "a/b/c/d/e", "a\\b", "a b"],
)
def test_path_like_or_odd_paths_are_refused(path: str) -> None:
    assert not MEDIA_PATH.fullmatch(path)


def test_manifests_revalidate_and_segments_are_immutable() -> None:
    assert cache_control(".mpd", "public") == "no-cache"
    assert cache_control(".m4s", "public") == "public, max-age=31536000, immutable"
    assert cache_control(".m4s", "private") == "private, max-age=31536000, immutable"
    assert cache_control(".jpg", "public") == "public, max-age=3600"
