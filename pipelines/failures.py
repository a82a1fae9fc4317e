"""What a failed job tells the person who uploaded: one sentence, the details go to the log.

The sentence names the part that failed (step, rendition, chunk) and a reason a person can
read: never a traceback, a Ray wrapper's text, a server path or a storage URL, never terminal
escape codes (ffmpeg's stderr may carry any bytes an upload put in its metadata).
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Sequence
from dataclasses import dataclass

from ray.exceptions import RayError, RayTaskError

from cluster.errors import VodError
from pipelines.video.ffmpeg import FFmpegError, meaningful_line

MAX_REASON_CHARS = 240
# Steps whose ffmpeg inputs are the upload itself (elsewhere the inputs are our own files).
_READS_UPLOAD = {"probe", "encode", "audio", "mp3", "poster", "storyboard"}
_INTERNAL = "an internal error occurred (the server log has the details)"
# What ffmpeg says when the upload's data ends early or is garbled part way through.
_DAMAGE = re.compile(
    r"corrupt input packet|partial file|Invalid data found|Error splitting the input|Invalid NAL"
)

_ESCAPE_SEQUENCE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|.)?")
# C0 and C1 controls, DEL, and the bidi overrides that can make a line read backwards.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+")
_ABSOLUTE_PATH = re.compile(r"(?<![\w.-])~?/[^\s'\",;:)\]]+")
_STORAGE_KEY = re.compile(r"\b(?:sources|work|media|catalog)/[^\s'\",;:)\]]+")


@dataclass(frozen=True)
class FailedPart:
    """Where a job failed: the step, and for encodes the rendition and (later) the chunk."""

    step: str
    rendition: str | None = None
    chunk: int | None = None

    def describe(self) -> str:
        if self.step == "encode" and (self.rendition or self.chunk is not None):
            # A chunk encoded in every rendition at once (the ``split`` strategy) has no one rendition.
            what = f"the {self.rendition} rendition" if self.rendition else "every rendition"
            if self.chunk is not None:
                what = f"chunk {self.chunk} of {what}"
            return f"encoding {what}"
        return _STEP_PHRASES.get(self.step, f"the {self.step} step")


_STEP_PHRASES = {
    "queued": "starting the job",
    "probe": "probing the upload",
    "encode": "encoding",
    "audio": "encoding the audio",
    "mp3": "making the MP3 download",
    "poster": "making the poster",
    "package": "packaging and publishing the stream",
    "subtitles": "reading the subtitles",
    "storyboard": "making the storyboard (seek-bar previews)",
}


def root_cause(exc: BaseException) -> BaseException:
    """The exception a Ray task raised, out of the RayTaskError(s) wrapping it."""
    for _ in range(8):  # a task that awaited a failed task wraps it again
        if not isinstance(exc, RayTaskError) or exc.cause is None:
            break
        exc = exc.cause
    return exc


def scrub(text: str, paths: Sequence[str] = (), *, upload_paths: Sequence[str] = ()) -> str:
    """``text`` as one printable line without server paths, storage URLs or escape codes."""
    text = _CONTROL.sub(" ", _ESCAPE_SEQUENCE.sub("", text))
    # Known paths first and longest first: they may hold spaces the patterns below cannot see.
    named = [(p, "the upload") for p in upload_paths] + [(p, "<file>") for p in paths]
    for path, label in sorted(named, key=lambda item: -len(item[0])):
        if len(path) > 1:
            text = text.replace(path, label)
    text = _URL.sub("<file>", text)
    text = _ABSOLUTE_PATH.sub("<file>", text)
    text = _STORAGE_KEY.sub("<file>", text)
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1].rstrip() + "…"


def _ffmpeg_reason(error: FFmpegError, reads_upload: bool) -> str:
    inputs = [error.argv[i + 1] for i, arg in enumerate(error.argv[:-1]) if arg == "-i"]
    others = [arg for arg in error.argv[1:] if "/" in arg and arg not in inputs]
    line = meaningful_line(error.stderr_tail)
    if line == "no error message":
        return f"ffmpeg stopped with exit code {error.returncode}"
    if not reads_upload:
        return scrub(line, [*inputs, *others])
    reason = scrub(line, others, upload_paths=inputs).removeprefix("the upload: ")
    if _DAMAGE.search(reason):
        return f"the upload is damaged or cut short ({reason})"
    return reason


def reason_of(exc: BaseException, part: FailedPart) -> str:
    """The readable reason for ``exc``: its own words when it has some, else a generic one."""
    cause = root_cause(exc)
    if isinstance(cause, FFmpegError):
        return _ffmpeg_reason(cause, part.step in _READS_UPLOAD)
    if isinstance(cause, VodError):
        return scrub(cause.detail) or _INTERNAL
    if isinstance(cause, RayError):  # a worker died, ran out of memory, lost an object...
        return "the worker running it stopped unexpectedly; the job can be run again"
    return _INTERNAL


def failure_sentence(part: FailedPart, exc: BaseException) -> str:
    """``"encoding the 720p rendition failed: <reason>"``: what a failed job's ``error`` says."""
    return f"{part.describe()} failed: {reason_of(exc, part)}"


def failure_details(exc: BaseException) -> str:
    """Everything for the log: the traceback (Ray's includes the remote one) and ffmpeg's side."""
    details = "".join(traceback.format_exception(exc))
    cause = root_cause(exc)
    if isinstance(cause, FFmpegError):
        details += f"\nargv: {cause.argv}\nexit code: {cause.returncode}\nstderr (tail):\n{cause.stderr_tail}"
    return details
