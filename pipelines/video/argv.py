"""Every ffmpeg and ffprobe command vodray runs, as argv lists.

Builders are pure: they return argv lists (asserted exactly by unit tests) and never touch
the disk; ``pipelines.video.ffmpeg.run`` runs them. One function, ``x264_args``, says how
every video rendition is encoded, so the chunk encodes and the plain alternatives the
benchmarks measure against cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from cluster import layout
from pipelines.video.ffmpeg import Source
from pipelines.video.plan import Chunk, Plan, Rendition
from pipelines.video.tiles import Storyboard

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"

# Every ffmpeg command starts the same way: no prompts, no banner, no stats line, only errors on
# stderr (so its last lines are the reason).
FFMPEG_PREFIX = (FFMPEG, "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats")

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
STRICT_DECODE = ("-xerror",)

STORYBOARD_JPEG_QUALITY = 8
"""mjpeg's ``-q:v`` (2 best .. 31). 100 tiles of a busy test pattern (testsrc2) make 240 KB at 8,
317 KB at 5, with no difference to see at 160x90; the page fetches the sheet before a hover."""

SEEK_MARGIN_S = 1.0
"""A chunk decodes from this far before its first frame, so the fps filter picks the same
source frame for that first output slot as one long encode would (on a VFR source the frame
shown at a seam may have started well before it)."""


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


def x264_args(plan: Plan, rendition: Rendition, threads: int | None = None, stream: str = "") -> list[str]:
    """x264 at the rendition's rate, keyframes on the segment grid and nowhere else.

    The fixed GOP, ``-sc_threshold 0`` and forced keyframes put a keyframe on every segment
    boundary and nowhere else, identically in every rendition. ``stream`` is a stream
    specifier (``:v:1``) when one output file holds several renditions; ``threads`` None
    leaves x264's own choice.
    """
    option = {
        "-c": "libx264", "-preset": plan.x264_preset,
        **({"-threads": str(threads)} if threads is not None else {}),
        "-pix_fmt": "yuv420p", "-b": f"{rendition.video_kbps}k", "-maxrate": f"{rendition.maxrate_kbps}k",
        "-bufsize": f"{rendition.bufsize_kbps}k", "-g": str(plan.gop_frames),
        "-keyint_min": str(plan.gop_frames), "-sc_threshold": "0",
        "-force_key_frames": f"expr:gte(t,n_forced*{seconds_arg(plan.segment_s)})",
    }  # fmt: skip
    specifier = stream or ":v"
    argv: list[str] = []
    for name, value in option.items():
        # -c and -b need the stream type; the others are per-stream with or without it.
        argv += [f"{name}{specifier}" if name in ("-c", "-b") or stream else name, value]
    return argv


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
        *FFMPEG_PREFIX, *STRICT_DECODE, "-threads", str(threads), *input_args(src, seek_s),
        "-filter_threads", str(threads), "-filter_complex", graph,
    ]  # fmt: skip
    for name, (rendition, out) in zip(names, outputs, strict=True):
        argv += [
            "-map", f"[{name}]", "-an", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1",
            *x264_args(plan, rendition, threads), "-frames:v", str(chunk.frames), "-f", "mp4", str(out),
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


def _whole_title_audio_argv(src: Source, out: Path, codec: str, kbps: int, container: str) -> list[str]:
    return [
        *FFMPEG_PREFIX, *STRICT_DECODE, *input_args(src),
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
        *FFMPEG_PREFIX, *input_args(src, plan.poster_at_s),
        "-map", "0:v:0", "-frames:v", "1", "-vf", f"scale={top.width}:{top.height},setsar=1",
        "-q:v", "3", "-f", "image2", "-update", "1", str(out),
    ]  # fmt: skip


def storyboard_argv(src: Source, out: Path, board: Storyboard) -> list[str]:
    """The storyboard's sprite sheet (JPEG) in one pass over the source (unless seeking to each
    tile costs less: ``storyboard_tile_argv``).

    ``fps`` keeps one frame per tile: with ``round=up`` the frame on screen at each tile's
    start (``start_time=0`` repeats the first frame if the video starts late), ``scale``
    shrinks only those, ``tile`` lays them out; a title whose video ends early leaves its last
    tiles black. Decoding is the whole cost, so it skips what a 160-pixel tile cannot show:
    non-reference frames (the tile shows the reference frame a few frames earlier) and the
    deblocking filter. One thread, like the one CPU the task reserves.
    """
    graph = (
        f"fps=fps={board.rate}:start_time=0:round=up,"
        f"scale={board.tile_width}:{board.tile_height}:flags=area,setsar=1,"
        f"tile={board.columns}x{board.rows}"
    )
    return [
        *FFMPEG_PREFIX, "-threads", "1", "-skip_frame", "noref", "-skip_loop_filter", "all", *input_args(src),
        "-map", "0:v:0", "-an", "-sn", "-dn", "-map_metadata", "-1", "-filter_threads", "1", "-vf", graph,
        "-frames:v", "1", "-c:v", "mjpeg", "-q:v", str(STORYBOARD_JPEG_QUALITY),
        "-f", "image2", "-update", "1", str(out),
    ]  # fmt: skip


def keyframes_before_argv(src: Source, board: Storyboard) -> list[str]:
    """Where a seek to each tile lands: the first video packet read after seeking to its moment
    is the keyframe at or before it. Reads the index and one packet a tile, nothing else."""
    intervals = ",".join(f"{seconds_arg(board.start_s(index))}%+#1" for index in range(board.tiles))
    return [
        FFPROBE, "-v", "error", "-select_streams", "v:0", "-read_intervals", intervals,
        "-show_entries", "packet=pts_time", "-print_format", "json", *input_args(src),
    ]  # fmt: skip


def storyboard_tile_argv(src: Source, out: Path, board: Storyboard, index: int) -> list[str]:
    """One tile of a long title's storyboard, read by seeking: the first frame from its moment
    (decoding from the keyframe before it), scaled, as a lossless PNG."""
    return [
        *FFMPEG_PREFIX, "-threads", "1", "-skip_frame", "noref", "-skip_loop_filter", "all",
        *input_args(src, board.start_s(index)), "-map", "0:v:0", "-an", "-sn", "-dn", "-map_metadata", "-1",
        "-filter_threads", "1", "-vf", f"scale={board.tile_width}:{board.tile_height}:flags=area,setsar=1",
        "-frames:v", "1", "-c:v", "png", "-f", "image2", "-update", "1", str(out),
    ]  # fmt: skip


def storyboard_sheet_argv(tiles: Path, out: Path, board: Storyboard) -> list[str]:
    """The sheet of a long title from its tiles (vodray's own PNGs, ``tile-%03d.png``: a missing
    one ends the sequence and leaves the rest black, as a one pass does past the video's end)."""
    return [
        *FFMPEG_PREFIX, "-f", "image2", "-start_number", "0", "-i", str(tiles),
        "-vf", f"tile={board.columns}x{board.rows}", "-frames:v", "1",
        "-c:v", "mjpeg", "-q:v", str(STORYBOARD_JPEG_QUALITY), "-f", "image2", "-update", "1", str(out),
    ]  # fmt: skip


def package_argv(videos: Sequence[Path], audio: Path | None, manifest: Path, plan: Plan) -> list[str]:
    """Stream-copy renditions (+ audio) into one CMAF segment set with an MPD and HLS playlists.

    Segment names use the stream index (``$RepresentationID$``), the only per-stream name
    the dash muxer knows; ``pipelines.video.package.package`` renames them to rendition names.
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
        *FFMPEG_PREFIX, *inputs, *maps, "-c", "copy",
        "-f", "dash", "-dash_segment_type", "mp4", "-seg_duration", seconds_arg(plan.segment_s),
        "-use_template", "1", "-use_timeline", "1", "-hls_playlist", "1",
        "-adaptation_sets", adaptation_sets,
        "-init_seg_name", layout.MUXER_INIT_TEMPLATE, "-media_seg_name", layout.MUXER_SEGMENT_TEMPLATE,
        str(manifest),
    ]  # fmt: skip


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
    argv = [*FFMPEG_PREFIX, "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}"]
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
        *FFMPEG_PREFIX, "-i", str(src), "-map", "0", "-c", "copy",
        "-metadata:s:v:0", f"rotate={degrees}", "-f", "mp4", str(out),
    ]  # fmt: skip


# --- subtitles -----------------------------------------------------------------------------


def extract_subtitles_argv(src: Source, outputs: Sequence[tuple[int, str, str, Path]]) -> list[str]:
    """Text subtitle streams of ``src`` (an upload: opened by ``input_args``) to files in one
    run (the source is read once).

    ``outputs``: (stream index, encoder, container, path) per stream, e.g.
    ``(2, "srt", "srt", out)`` for mov_text to SRT, ``(3, "copy", "ass", out)`` for ASS.
    """
    argv = [*FFMPEG_PREFIX, *input_args(src)]
    for index, encoder, container, path in outputs:
        argv += ["-map", f"0:{index}", "-c:s", encoder, "-f", container, str(path)]
    return argv
