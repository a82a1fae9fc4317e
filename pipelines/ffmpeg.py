"""Every ffmpeg and ffprobe command vodray runs, and the one place that runs them.

Builders are pure: they return argv lists (asserted exactly by unit tests) and never touch
the disk. ``run`` executes an ffmpeg argv, turns ``-progress pipe:1`` into fractions of the
expected duration, and raises ``FFmpegError`` with the last line that explains the failure.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cluster import layout
from cluster.errors import VodError

if TYPE_CHECKING:
    from pipelines.plan import Chunk, Plan, Rendition

Source = Path | str
"""What ffmpeg reads an upload from: a local path, or an ``https://`` presigned URL it seeks in."""

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"

# Every ffmpeg command starts the same way: no prompts, no banner, only errors on stderr
# (so the tail is the reason), machine-readable progress on stdout.
_FFMPEG_PREFIX = (
    FFMPEG, "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-progress", "pipe:1", "-nostats",
)  # fmt: skip

# Demuxers an upload may be read with: real containers that hold their media inside the
# file. Playlists (hls, dash), concat lists, image sequences (image2), SDP/RTP and the like
# open further files or URLs that an upload must never reach (another user's media). ffmpeg
# accepts a demuxer when ANY of its names is listed ("mov" matches "mov,mp4,m4a,3gp,3g2,mj2").
SOURCE_DEMUXERS = ("mov", "matroska", "avi", "mpegts", "mpeg", "flv", "mxf", "asf", "ogg")

# A source in S3 is read through a presigned URL (ranged reads, no whole download per task):
# those protocols and nothing else; a local source may use the file protocol only.
REMOTE_SOURCE_PROTOCOLS = "https,http,tls,tcp"

# Encodes stop at the first damaged packet or frame (ffmpeg would otherwise exit 0 and a
# truncated upload would be published shorter than it is, without a word).
_STRICT_DECODE = ("-xerror",)

SEEK_MARGIN_S = 1.0
"""A chunk decodes from this far before its first frame, so the fps filter picks the same
source frame for that first output slot as one long encode would (on a VFR source the frame
shown at a seam may have started well before it)."""

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


def seconds_arg(seconds: float) -> str:
    """Seconds for ffmpeg, truncated to whole microseconds (ffmpeg's own resolution).

    Truncating, not rounding, matters for ``-seg_duration``: a nominal length a hair longer
    than the keyframe grid would make the muxer skip the boundary keyframe.
    """
    micros = int(round(seconds * 1_000_000, 3))
    whole, frac = divmod(micros, 1_000_000)
    return f"{whole}.{frac:06d}".rstrip("0").rstrip(".") if frac else str(whole)


def fps_arg(fps: float) -> str:
    """A frame rate as the exact rational ffmpeg wants (29.97... -> ``30000/1001``)."""
    rate = Fraction(fps).limit_denominator(1001)
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


# --- ffprobe -------------------------------------------------------------------------------


def probe_argv(path: Source) -> list[str]:
    return [
        FFPROBE, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", *input_args(path),
    ]  # fmt: skip


def output_probe_argv(path: Path) -> list[str]:
    """ffprobe's JSON for a file vodray made itself (MP3, JPEG, segments): never for an upload."""
    return [FFPROBE, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)]


def first_frames_argv(path: Source, seconds: float = 3.0) -> list[str]:
    """Decode the start of the first video stream: a stream ffprobe can describe may still not decode."""
    return [
        FFPROBE, "-v", "error", "-select_streams", "v:0", "-read_intervals", f"%+{seconds_arg(seconds)}",
        "-show_entries", "frame=pts_time", "-print_format", "json", *input_args(path),
    ]  # fmt: skip


def packets_argv(path: Path) -> list[str]:
    """Video packets with presentation time and flags (``K`` = keyframe)."""
    return [
        FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags",
        "-print_format", "json", str(path),
    ]  # fmt: skip


# --- ffmpeg --------------------------------------------------------------------------------


def input_args(src: Source, seek_s: float = 0.0) -> list[str]:
    """The options that open an upload, for every command that reads one (one place to harden).

    ``-ss`` before ``-i`` seeks in the input (by HTTP range on a URL) and, when transcoding,
    drops the frames before ``seek_s`` exactly. Only real container demuxers and the
    protocols a source needs (``file`` locally; a presigned URL's in S3) may open anything:
    a playlist, concat list or image pattern can never make ffmpeg open another file.
    """
    seek = ["-ss", seconds_arg(seek_s)] if seek_s > 0 else []
    protocols = "file" if isinstance(src, Path) else REMOTE_SOURCE_PROTOCOLS
    return [
        *seek,
        "-protocol_whitelist",
        protocols,
        "-format_whitelist",
        ",".join(SOURCE_DEMUXERS),
        "-i",
        str(src),
    ]


def _x264_args(plan: Plan, rendition: Rendition, threads: int) -> list[str]:
    """x264 at the rendition's rate, keyframes on the segment grid and nowhere else."""
    return [
        "-c:v", "libx264", "-preset", plan.x264_preset, "-threads", str(threads), "-pix_fmt", "yuv420p",
        "-b:v", f"{rendition.video_kbps}k", "-maxrate", f"{rendition.maxrate_kbps}k",
        "-bufsize", f"{rendition.bufsize_kbps}k",
        "-g", str(plan.gop_frames), "-keyint_min", str(plan.gop_frames), "-sc_threshold", "0",
        "-force_key_frames", f"expr:gte(t,n_forced*{seconds_arg(plan.segment_s)})",
    ]  # fmt: skip


def encode_chunk_argv(
    src: Source, outputs: Sequence[tuple[Rendition, Path]], plan: Plan, chunk: Chunk, threads: int
) -> list[str]:
    """Exactly ``chunk.frames`` output frames of one chunk, in one or more renditions.

    The input is seeked to ``SEEK_MARGIN_S`` before the chunk; ``fps`` lays the output grid
    from that point (``start_time=0`` pads a late first frame like a long encode would) and
    ``trim`` drops the margin, so the chunk's frames are the ones a whole-title encode makes
    for the same slots. Timestamps start at 0: the stitch rebases them. With several
    renditions, one decode feeds all of them through ``split``. ``threads`` is what the task
    reserves: decoder, filters and each x264 encoder keep to it.
    """
    margin = min(chunk.start_frame, round(SEEK_MARGIN_S * plan.fps))
    seek_s = (chunk.start_frame - margin) / plan.fps
    names = [f"v{i}" for i in range(len(outputs))]
    graph = f"[0:v:0]fps={fps_arg(plan.fps)}:start_time=0,trim=start_frame={margin},setpts=PTS-STARTPTS"
    graph += f",split={len(outputs)}" + "".join(f"[s{i}]" for i in range(len(outputs)))
    for i, (rendition, _) in enumerate(outputs):
        graph += (
            f";[s{i}]scale={rendition.width}:{rendition.height},"
            f"setdar=dar={plan.display_aspect}:max=100000,format=yuv420p[{names[i]}]"
        )
    argv = [
        *_FFMPEG_PREFIX, *_STRICT_DECODE, "-threads", str(threads), *input_args(src, seek_s),
        "-filter_threads", str(threads), "-filter_complex", graph,
    ]  # fmt: skip
    for name, (rendition, out) in zip(names, outputs, strict=True):
        argv += [
            "-map", f"[{name}]", "-an", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1",
            *_x264_args(plan, rendition, threads), "-frames:v", str(chunk.frames), "-f", "mp4", str(out),
        ]  # fmt: skip
    return argv


def concat_list(paths: Sequence[Path], frames: Sequence[int], fps: float) -> str:
    """A concat-demuxer list of our own chunk files, each lasting exactly its frames."""
    lines = ["ffconcat version 1.0"]
    for path, count in zip(paths, frames, strict=True):
        quoted = path.as_posix().replace("'", "'\\''")  # the chunks may sit under any data dir
        lines += [f"file '{quoted}'", f"duration {seconds_arg(count / fps)}"]
    return "\n".join(lines) + "\n"


CONCAT_SUFFIX = ".ffconcat"


def own_file_input(path: Path) -> list[str]:
    """Opens a file vodray wrote itself; a ``.ffconcat`` list of chunks reads as one stream.

    The concat demuxer joins the chunks by stream copy and rebases each one's timestamps.
    Its lists name only chunk files vodray wrote (never an upload), hence ``-safe 0``.
    """
    if path.suffix == CONCAT_SUFFIX:
        return ["-f", "concat", "-safe", "0", "-i", str(path)]
    return ["-i", str(path)]


def encode_rendition_argv(src: Path, out: Path, plan: Plan, rendition: Rendition) -> list[str]:
    """One video rendition: upright (ffmpeg autorotates), CFR, a keyframe on every segment boundary.

    The fps filter makes the output constant-rate whatever the source does; the fixed GOP,
    ``-sc_threshold 0`` and forced keyframes put keyframes on the segment grid and nowhere
    else, identically in every rendition.
    """
    video_filter = ",".join(
        [
            f"fps={fps_arg(plan.fps)}",
            f"scale={rendition.width}:{rendition.height}",
            # setdar approximates its ratio to terms <= max (default 100): 427/240 would become 89/50.
            f"setdar=dar={plan.display_aspect}:max=100000",
            "format=yuv420p",
        ]
    )
    return [
        *_FFMPEG_PREFIX, *_STRICT_DECODE, *input_args(src),
        "-map", "0:v:0", "-an", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1",
        "-vf", video_filter,
        "-c:v", "libx264", "-preset", plan.x264_preset, "-pix_fmt", "yuv420p",
        "-b:v", f"{rendition.video_kbps}k", "-maxrate", f"{rendition.maxrate_kbps}k",
        "-bufsize", f"{rendition.bufsize_kbps}k",
        "-g", str(plan.gop_frames), "-keyint_min", str(plan.gop_frames), "-sc_threshold", "0",
        "-force_key_frames", f"expr:gte(t,n_forced*{seconds_arg(plan.segment_s)})",
        "-f", "mp4", str(out),
    ]  # fmt: skip


def _whole_title_audio_argv(src: Source, out: Path, codec: str, kbps: int, container: str) -> list[str]:
    return [
        *_FFMPEG_PREFIX, *_STRICT_DECODE, *input_args(src),
        "-map", "0:a:0", "-vn", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1",
        "-c:a", codec, "-b:a", f"{kbps}k", "-ac", "2", "-ar", "48000",
        "-f", container, str(out),
    ]  # fmt: skip


def encode_aac_argv(src: Source, out: Path, plan: Plan) -> list[str]:
    """The stream's audio, once for the whole title (chunked audio clicks at the seams)."""
    return _whole_title_audio_argv(src, out, "aac", plan.audio_kbps, "mp4")


def encode_mp3_argv(src: Source, out: Path, plan: Plan) -> list[str]:
    """The MP3 download, from the whole title like the stream's audio."""
    return _whole_title_audio_argv(src, out, "libmp3lame", plan.mp3_kbps, "mp3")


def poster_argv(src: Source, out: Path, plan: Plan) -> list[str]:
    """One JPEG at ``plan.poster_at_s``, the size of the largest rendition."""
    top = plan.renditions[-1]
    return [
        *_FFMPEG_PREFIX, *input_args(src, plan.poster_at_s),
        "-map", "0:v:0", "-frames:v", "1", "-vf", f"scale={top.width}:{top.height},setsar=1",
        "-q:v", "3", "-f", "image2", "-update", "1", str(out),
    ]  # fmt: skip


def package_argv(videos: Sequence[Path], audio: Path | None, manifest: Path, plan: Plan) -> list[str]:
    """Stream-copy renditions (+ audio) into one CMAF segment set with an MPD and HLS playlists.

    Segment names use the stream index (``$RepresentationID$``), the only per-stream name
    the dash muxer knows; ``pipelines.media.package`` renames them to rendition names.
    The muxer does not create directories: the caller makes ``0/``, ``1/``... first.
    """
    sources = [(path, "v") for path in videos] + ([(audio, "a")] if audio else [])
    inputs: list[str] = []
    maps: list[str] = []
    for index, (path, kind) in enumerate(sources):
        inputs += own_file_input(path)
        maps += ["-map", f"{index}:{kind}:0"]
    adaptation_sets = "id=0,streams=v" + (" id=1,streams=a" if audio else "")
    return [
        *_FFMPEG_PREFIX, *inputs, *maps, "-c", "copy",
        "-f", "dash", "-dash_segment_type", "mp4", "-seg_duration", seconds_arg(plan.segment_s),
        "-use_template", "1", "-use_timeline", "1", "-hls_playlist", "1",
        "-adaptation_sets", adaptation_sets,
        "-init_seg_name", layout.MUXER_INIT_TEMPLATE, "-media_seg_name", layout.MUXER_SEGMENT_TEMPLATE,
        str(manifest),
    ]  # fmt: skip


def single_command_ladder_argv(src: Path, out_dir: Path, plan: Plan) -> list[str]:
    """The plain alternative benchmarks measure vodray against: ONE ffmpeg that decodes once,
    encodes every rendition with the same settings as ``encode_rendition_argv``, muxes DASH +
    HLS and writes the MP3. No Ray, no storage, no catalog. The caller makes ``0/``, ``1/``..."""
    split = f"[0:v]fps={fps_arg(plan.fps)},split={len(plan.renditions)}" + "".join(
        f"[s{i}]" for i in range(len(plan.renditions))
    )
    scaled = [
        f"[s{i}]scale={r.width}:{r.height},setdar=dar={plan.display_aspect}:max=100000,format=yuv420p[v{i}]"
        for i, r in enumerate(plan.renditions)
    ]
    argv = [*_FFMPEG_PREFIX, *input_args(src), "-filter_complex", ";".join([split, *scaled])]
    for i, r in enumerate(plan.renditions):
        argv += [
            "-map", f"[v{i}]", f"-b:v:{i}", f"{r.video_kbps}k", f"-maxrate:v:{i}", f"{r.maxrate_kbps}k",
            f"-bufsize:v:{i}", f"{r.bufsize_kbps}k",
        ]  # fmt: skip
    if plan.has_audio:
        argv += ["-map", "0:a:0", "-c:a", "aac", "-b:a", f"{plan.audio_kbps}k", "-ac", "2", "-ar", "48000"]
    argv += [
        "-c:v", "libx264", "-preset", plan.x264_preset,
        "-g", str(plan.gop_frames), "-keyint_min", str(plan.gop_frames), "-sc_threshold", "0",
        "-force_key_frames", f"expr:gte(t,n_forced*{seconds_arg(plan.segment_s)})",
        "-f", "dash", "-dash_segment_type", "mp4", "-seg_duration", seconds_arg(plan.segment_s),
        "-use_template", "1", "-use_timeline", "1", "-hls_playlist", "1",
        "-adaptation_sets", "id=0,streams=v" + (" id=1,streams=a" if plan.has_audio else ""),
        "-init_seg_name", layout.MUXER_INIT_TEMPLATE, "-media_seg_name", layout.MUXER_SEGMENT_TEMPLATE,
        str(out_dir / layout.MPD_NAME),
    ]  # fmt: skip
    if plan.has_audio:
        argv += [
            "-map", "0:a:0", "-c:a", "libmp3lame", "-b:a", f"{plan.mp3_kbps}k", "-ac", "2", "-ar", "48000",
            "-f", "mp3", str(out_dir / layout.MP3_NAME),
        ]  # fmt: skip
    return argv


def demo_clip_argv(
    out: Path,
    *,
    seconds: float,
    width: int,
    height: int,
    fps: int,
    audio: bool,
    subtitles_srt: Path | None,
    vfr: bool,
) -> list[str]:
    """A test clip: moving test pattern, a 440 Hz tone, an optional mov_text subtitle track."""
    argv = [*_FFMPEG_PREFIX, "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}"]
    maps = ["-map", "0:v"]
    if audio:
        argv += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
        maps += ["-map", "1:a"]
    if subtitles_srt is not None:
        argv += ["-i", str(subtitles_srt)]
        maps += ["-map", f"{1 + audio}:s"]
    argv += maps
    if vfr:
        # Full rate for the first third, then every third frame: r_frame_rate != avg_frame_rate.
        argv += ["-vf", f"select='lt(t,{seconds_arg(seconds / 3)})+not(mod(n,3))'", "-fps_mode", "vfr"]
    argv += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        argv += ["-c:a", "aac", "-b:a", "96k"]
    if subtitles_srt is not None:
        argv += ["-c:s", "mov_text", "-metadata:s:s:0", "language=eng"]
    return [*argv, "-t", seconds_arg(seconds), "-f", "mp4", str(out)]


def set_rotation_argv(src: Path, out: Path, degrees: int) -> list[str]:
    """Stream copy with a rotation tag, like a phone video.

    ffmpeg 5.1 turns ``rotate`` into a display matrix only when stream copying; on an
    encode it silently drops it, hence a second pass.
    """
    return [
        *_FFMPEG_PREFIX, "-i", str(src), "-map", "0", "-c", "copy",
        "-metadata:s:v:0", f"rotate={degrees}", "-f", "mp4", str(out),
    ]  # fmt: skip


# --- running -------------------------------------------------------------------------------


def run(
    argv: Sequence[str],
    *,
    duration_s: float | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> None:
    """Run an ffmpeg argv; report progress as a fraction of ``duration_s``; raise ``FFmpegError``."""
    stderr_tail: deque[str] = deque(maxlen=30)
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    assert proc.stdout is not None and proc.stderr is not None
    # stderr is drained on its own thread so a chatty ffmpeg can never block on a full pipe.
    drain = threading.Thread(target=stderr_tail.extend, args=(proc.stderr,), daemon=True)
    drain.start()
    try:
        done = 0.0
        for line in proc.stdout:
            key, _, value = line.strip().partition("=")
            if on_progress is None:
                continue
            if key == "out_time_us" and duration_s and value.lstrip("-").isdigit():
                done = max(done, min(1.0, int(value) / 1_000_000 / duration_s))
                on_progress(done)
            elif key == "progress" and value == "end":
                on_progress(1.0)
        returncode = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        drain.join(timeout=5)
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


def probe_json(path: Source) -> dict[str, Any]:
    """ffprobe's description of every stream and the container."""
    return run_json(probe_argv(path))


# --- subtitles -----------------------------------------------------------------------------


def extract_subtitles_argv(src: Source, outputs: Sequence[tuple[int, str, str, Path]]) -> list[str]:
    """Text subtitle streams of ``src`` (an upload: opened by ``input_args``) to files in one
    run (the source is read once).

    ``outputs``: (stream index, encoder, container, path) per stream, e.g.
    ``(2, "srt", "srt", out)`` for mov_text to SRT, ``(3, "copy", "ass", out)`` for ASS.
    """
    argv = [*_FFMPEG_PREFIX, *input_args(src)]
    for index, encoder, container, path in outputs:
        argv += ["-map", f"0:{index}", "-c:s", encoder, "-f", container, str(path)]
    return argv
