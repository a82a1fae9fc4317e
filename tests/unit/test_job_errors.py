"""A failed job's error is one sentence for its owner: step, rendition, chunk, readable reason."""

from __future__ import annotations

import pickle

import pytest
from ray.exceptions import RayTaskError, WorkerCrashedError

from cluster.errors import InvalidMedia, NotFound, ServerError
from pipelines.failures import FailedPart, failure_details, failure_sentence, root_cause, scrub
from pipelines.video.argv import encode_chunk_argv, probe_argv
from pipelines.video.ffmpeg import FFmpegError
from pipelines.video.plan import Chunk
from tests.unit.test_ffmpeg_argv import R180, make_plan

SOURCE = "/srv/vodray data/sources/0123456789abcdef/source"
OUT = "/tmp/vodray-enc-k2j3/.180p.mp4.partial"


def encode_error(stderr: str) -> FFmpegError:
    from pathlib import Path

    argv = encode_chunk_argv(Path(SOURCE), [(R180, Path(OUT))], make_plan(), Chunk(3, 150, 200), 1)
    return FFmpegError(argv, 1, stderr)


def in_ray_wrapper(cause: BaseException) -> RayTaskError:
    """What ``await ref`` raises in the dispatcher when the task raised ``cause``."""
    traceback_str = (
        "Traceback (most recent call last):\n"
        '  File "/work/main/pipelines/tasks.py", line 80, in encode_rendition\n'
        f"{type(cause).__name__}: {cause}"
    )
    wrapped = RayTaskError(
        "encode_rendition", traceback_str, cause, proctitle="ray::encode", pid=7, ip="10.0.0.5"
    )
    return wrapped.as_instanceof_cause()


def assert_is_a_clean_sentence(sentence: str) -> None:
    assert "/" not in sentence, sentence
    for forbidden in ("Traceback", "RayTaskError", "\x1b", "\n", "\r", "vodray-enc", "sources"):
        assert forbidden not in sentence, (forbidden, sentence)


def test_encode_failure_names_the_rendition_and_says_the_upload_not_its_path() -> None:
    error = encode_error(
        "[NULL @ 0x5592e30c1f80] Invalid NAL unit size (9707 > 9590).\n"
        f"{SOURCE}: corrupt input packet in stream 0\n"
    )
    sentence = failure_sentence(FailedPart("encode", "180p"), in_ray_wrapper(error))
    assert sentence == (
        "encoding the 180p rendition failed: "
        "the upload is damaged or cut short (corrupt input packet in stream 0)"
    )
    assert_is_a_clean_sentence(sentence)


def test_ffmpeg_output_paths_and_unknown_paths_become_file() -> None:
    error = encode_error(
        f"[mp4 @ 0x55] Could not write header for {OUT}: No space left\nConversion failed!\n"
    )
    sentence = failure_sentence(FailedPart("encode", "180p"), error)
    assert sentence == "encoding the 180p rendition failed: Could not write header for <file>: No space left"
    other = FFmpegError(["ffmpeg", "-i", "/x/in.mp4"], 1, "Error opening /var/lib/other/file.mp4: denied\n")
    assert reason_text(FailedPart("package"), other) == "Error opening <file>: denied"


def reason_text(part: FailedPart, exc: BaseException) -> str:
    return failure_sentence(part, exc).split(" failed: ", 1)[1]


def test_terminal_escape_codes_and_controls_from_stderr_never_reach_the_sentence() -> None:
    # ffmpeg echoes metadata from the upload: a title can carry ESC sequences and bidi overrides.
    error = encode_error(
        "\x1b[31mInvalid data\x1b[0m found\x07 when \u202eprocessing\x1b]0;pwned\x07 input\r\n"
    )
    sentence = failure_sentence(FailedPart("audio"), error)
    assert sentence == (
        "encoding the audio failed: "
        "the upload is damaged or cut short (Invalid data found when processing input)"
    )
    assert_is_a_clean_sentence(sentence)


def test_probe_failure_keeps_the_readable_reason_through_ray() -> None:
    reason = "the file is a playlist (M3U8), not a video: upload the video file itself"
    sentence = failure_sentence(FailedPart("probe"), in_ray_wrapper(InvalidMedia(reason)))
    assert sentence == f"probing the upload failed: {reason}"


def test_a_chunk_index_joins_the_rendition_when_there_is_one() -> None:
    error = encode_error("Error while decoding stream #0:0: Invalid data found when processing input\n")
    assert failure_sentence(FailedPart("encode", "720p", chunk=3), error) == (
        "encoding chunk 3 of the 720p rendition failed: the upload is damaged or cut short "
        "(Error while decoding stream #0:0: Invalid data found when processing input)"
    )


@pytest.mark.parametrize(
    ("part", "exc", "expected"),
    [
        (FailedPart("poster"), KeyError("/srv/x"), "making the poster failed: an internal error occurred"),
        (
            FailedPart("package"),
            ServerError("packaging: unexpected segment reference '/tmp/vodray-pkg-1/0/seg.m4s'"),
            "packaging and publishing the stream failed: packaging: unexpected segment reference '<file>'",
        ),
        (FailedPart("encode", "360p"), NotFound("no such file: sources/abc/source"), "no such file: <file>"),
        (FailedPart("encode", "360p"), WorkerCrashedError(), "the worker running it stopped unexpectedly"),
        (FailedPart("queued"), OSError(2, "No such file", "/data/x"), "starting the job failed: an internal"),
    ],
)
def test_other_failures_read_as_sentences(part: FailedPart, exc: BaseException, expected: str) -> None:
    sentence = failure_sentence(part, in_ray_wrapper(exc) if isinstance(exc, KeyError) else exc)
    assert expected in sentence, sentence
    assert_is_a_clean_sentence(sentence)


def test_scrub_replaces_urls_home_paths_and_storage_keys_and_caps_the_length() -> None:
    assert scrub("got s3://bucket/prefix/media/x/a.m4s and file:///etc/passwd") == "got <file> and <file>"
    assert scrub("see ~/vodray/catalog.duckdb, work/abc/plan/180p.mp4") == "see <file>, <file>"
    assert scrub("rate 30000/1001 and H264/90000 stay") == "rate 30000/1001 and H264/90000 stay"
    long = scrub("x" * 1000)
    assert len(long) == 240 and long.endswith("…")


def test_details_for_the_log_keep_everything_the_sentence_drops() -> None:
    error = encode_error(f"{SOURCE}: corrupt input packet in stream 0\n")
    wrapped = in_ray_wrapper(error)
    assert root_cause(wrapped) is wrapped.cause
    details = failure_details(wrapped)
    # Ray's text: the remote traceback (and its own colour codes, which must stay in the log).
    assert "in encode_rendition" in details and "RayTaskError(FFmpegError)" in details and "\x1b[" in details
    assert SOURCE in details and "exit code: 1" in details
    # What Ray sends across processes (the plain wrapper, pickled) unwraps to the same cause.
    plain = RayTaskError(
        "encode_rendition", "Traceback ...", error, proctitle="ray::encode", pid=7, ip="10.0.0.5"
    )
    assert isinstance(root_cause(pickle.loads(pickle.dumps(plain))), FFmpegError)


def test_ffmpeg_error_without_stderr_gives_the_exit_code() -> None:
    from pathlib import Path

    error = FFmpegError(probe_argv(Path(SOURCE)), 234, "")
    assert (
        failure_sentence(FailedPart("probe"), error)
        == "probing the upload failed: ffmpeg stopped with exit code 234"
    )
