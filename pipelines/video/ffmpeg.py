"""The one place that runs ffmpeg and ffprobe, and the error they raise.

``run`` executes an argv built by ``pipelines.video.argv`` (nothing else assembles ffmpeg
arguments) and raises ``FFmpegError`` with the last line that explains the failure. A job's
progress is counted in chunks done (``pipelines.job``), so nothing reads ffmpeg's own.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cluster.errors import VodError

Source = Path | str
"""What ffmpeg reads an upload from: a local path, or an ``https://`` presigned URL it seeks in."""

# Lines ffmpeg prints after the real reason; they explain nothing on their own.
_GENERIC_STDERR = ("Conversion failed!", "Exiting normally", "Error closing output")
_LOG_CONTEXT = re.compile(r"^\[[^\]]+ @ 0x[0-9a-f]+\]\s*")


class FFmpegError(VodError):
    """ffmpeg or ffprobe exited non-zero; ``detail`` names the tool, the code and the reason."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr_tail: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        tool = Path(self.argv[0]).name if self.argv else "ffmpeg"
        super().__init__(f"{tool} failed (exit {returncode}): {meaningful_line(stderr_tail)}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Ray pickles a task's exception to send it back; rebuild from the original arguments.
        return (type(self), (self.argv, self.returncode, self.stderr_tail))


def meaningful_line(stderr: str) -> str:
    """The last stderr line that says what went wrong, without ffmpeg's ``[mov @ 0x..]`` prefix."""
    for raw in reversed(stderr.splitlines()):
        line = _LOG_CONTEXT.sub("", raw.strip())
        if line and not line.startswith(_GENERIC_STDERR):
            return line
    return "no error message"


def run(argv: Sequence[str]) -> None:
    """Run an ffmpeg argv; raise ``FFmpegError`` with the reason if it fails."""
    stderr_tail: deque[str] = deque(maxlen=30)
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    assert proc.stderr is not None
    try:
        # Only errors reach stderr (``-loglevel error``); kept to the last lines, the reason.
        stderr_tail.extend(proc.stderr)
        returncode = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if returncode != 0:
        raise FFmpegError(argv, returncode, "".join(stderr_tail))


def run_json(argv: Sequence[str]) -> dict[str, Any]:
    """Run an ffprobe argv that prints JSON and return it parsed."""
    result = subprocess.run(
        list(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace"
    )
    if result.returncode != 0:
        raise FFmpegError(argv, result.returncode, result.stderr[-4000:])
    return json.loads(result.stdout or "{}")
