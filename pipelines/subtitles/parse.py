"""Reading a subtitle file where it cannot hurt: its format from its name, the work bounded,
in a child process with a CPU-time limit.

pysubs2 is pure Python and some of its regexes backtrack: a regex holds the GIL for as long as
it runs, so a thread does not keep the API's event loop answering, and nothing in a Ray task
stops a parse that takes hours. So every subtitle input (a sidecar sent to the API, a sidecar
or an embedded track in a job) is parsed by ``python -m pipelines.subtitles.parse``:

- the format comes from the file name (``.srt``, ``.vtt``; ``.ass``/``.ssa`` for tracks ffmpeg
  extracted), never from the content, so a ``.srt`` holding TTML or JSON is read as SubRip and
  found to hold no cue, instead of reaching another parser;
- ``pipelines.subtitles.cues.normalise`` bounds the work before pysubs2 runs (a linear scan);
- the child sets ``RLIMIT_CPU`` to ``VODRAY_SUBTITLE_CPU_S`` before reading a byte; past it the
  kernel stops it and the caller gets ``InvalidMedia`` naming the file;
- any exception in the child comes back as a sentence, never a traceback or a 500.

The API awaits ``parse_subtitles_async`` (its event loop only moves bytes through pipes); jobs
and scripts call ``parse_subtitles``.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import PurePosixPath
from typing import Any

from cluster.errors import InvalidMedia, Unavailable, VodError
from cluster.settings import SubtitleSettings
from pipelines.subtitles.cues import Cue, Normalised, normalise

FORMAT_OF_SUFFIX = {".srt": "srt", ".vtt": "vtt", ".ass": "ass", ".ssa": "ass"}
WALL_FACTOR = 4
"""The child may wait for a CPU on a busy node: it is killed after this many times its CPU
limit (plus ``WALL_SLACK_S``) of wall time, which is the node's fault, not the file's."""
WALL_SLACK_S = 10.0


def format_of(name: str, allowed: tuple[str, ...] = ("srt", "vtt")) -> str:
    """The format a file's name says (``srt``, ``vtt``, or with ``allowed`` also ``ass``);
    ``InvalidMedia`` (422) for any other name."""
    suffix = PurePosixPath(name.replace("\\", "/")).suffix.lower()
    fmt = FORMAT_OF_SUFFIX.get(suffix)
    if fmt not in allowed:
        names = " or ".join(f"*.{ext}" for ext in allowed)
        raise InvalidMedia(f"subtitle file {name[:80]!r} must be named {names} (SubRip or WebVTT)")
    return fmt


def _command(fmt: str, settings: SubtitleSettings, duration_s: float | None) -> list[str]:
    config = {"format": fmt, "max_cues": settings.max_cues, "duration_s": duration_s, "cpu_s": settings.cpu_s}
    return [sys.executable, "-m", "pipelines.subtitles.parse", json.dumps(config)]


def _wall_s(settings: SubtitleSettings) -> float:
    return settings.cpu_s * WALL_FACTOR + WALL_SLACK_S


def _outcome(what: str, returncode: int, stdout: bytes, settings: SubtitleSettings) -> Normalised:
    """What the child said, or the sentence for how it died."""
    if returncode != 0:
        # SIGXCPU at the soft limit, SIGKILL at the hard one: the file took too long to read.
        raise InvalidMedia(f"{what} takes more than {settings.cpu_s} s of CPU to read: it was not read")
    try:
        found = json.loads(stdout)
    except ValueError:
        raise InvalidMedia(f"{what} cannot be read") from None
    if not found.get("ok"):
        raise InvalidMedia(f"{what}: {found.get('error') or 'it cannot be read'}")
    return Normalised(
        cues=[Cue(int(s), int(e), str(text)) for s, e, text in found["cues"]],
        dropped=int(found["dropped"]),
        repaired=int(found["repaired"]),
        warnings=[str(w) for w in found["warnings"]],
        encoding=str(found["encoding"]),
    )


def parse_subtitles(
    data: bytes,
    name: str,
    settings: SubtitleSettings,
    *,
    duration_s: float | None = None,
    formats: tuple[str, ...] = ("srt", "vtt"),
    what: str | None = None,
) -> Normalised:
    """The cues of the file ``name`` holding ``data``, parsed in a child process (blocking).

    ``InvalidMedia`` naming ``what`` (default: the file): a name of another format, content
    that cannot be read, or more CPU than ``settings.cpu_s``. ``Unavailable`` if the node was
    too busy to finish."""
    fmt = format_of(name, formats)
    what = what or f"subtitle file {name[:80]!r}"
    try:
        done = subprocess.run(
            _command(fmt, settings, duration_s),
            input=data,
            capture_output=True,
            timeout=_wall_s(settings),
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise Unavailable(f"reading {what} did not finish in time; try again") from None
    return _outcome(what, done.returncode, done.stdout, settings)


async def parse_subtitles_async(
    data: bytes, name: str, settings: SubtitleSettings, *, duration_s: float | None = None
) -> Normalised:
    """``parse_subtitles`` for an event loop: it awaits the child and never runs the parse."""
    import anyio

    fmt = format_of(name)
    try:
        with anyio.fail_after(_wall_s(settings)):
            done = await anyio.run_process(_command(fmt, settings, duration_s), input=data, check=False)
    except TimeoutError:
        raise Unavailable(f"reading subtitle file {name[:80]!r} did not finish in time; try again") from None
    return _outcome(f"subtitle file {name[:80]!r}", done.returncode, done.stdout, settings)


def _child(config: dict[str, Any], data: bytes) -> dict[str, Any]:
    try:
        result = normalise(
            data, str(config["format"]), max_cues=int(config["max_cues"]), duration_s=config["duration_s"]
        )
    except VodError as exc:
        return {"ok": False, "error": exc.detail}
    except RecursionError:
        return {"ok": False, "error": "it is nested too deeply to be subtitles"}
    except Exception as exc:  # noqa: BLE001 - any input must end as a sentence, never a traceback
        return {"ok": False, "error": f"it cannot be read ({type(exc).__name__})"}
    return {
        "ok": True,
        "cues": [[cue.start_ms, cue.end_ms, cue.text] for cue in result.cues],
        "dropped": result.dropped,
        "repaired": result.repaired,
        "warnings": result.warnings,
        "encoding": result.encoding,
    }


def main() -> None:
    config = json.loads(sys.argv[1])
    cpu_s = int(config["cpu_s"])
    # Soft limit: SIGXCPU stops the process; the hard one, a second later, is SIGKILL.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    out = _child(config, sys.stdin.buffer.read())
    sys.stdout.write(json.dumps(out))


if __name__ == "__main__":
    main()
