"""Pure planning: what to encode for one source, as frozen data. No I/O, no Ray.

Everything downstream hangs off one grid: ``gop_frames`` frames at ``fps`` make one segment
of ``segment_s`` seconds, and every rendition has a keyframe at every multiple of it. Chunks
are cut on the same grid, so chunk seams are segment boundaries and every chunk starts with a
keyframe: stitching them by stream copy gives the stream one long encode would have.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, replace
from fractions import Fraction

from cluster import layout
from cluster.errors import InvalidMedia
from cluster.settings import PipelineSettings, Rung
from pipelines.video.media_info import MediaInfo

PLAN_FORMAT = 2
"""Bump when encode or package commands change what the same plan produces (new plan ids)."""

# Frame rates cameras and broadcasters use; a measured rate this close to one is that one.
STANDARD_FPS = (24000 / 1001, 24.0, 25.0, 30000 / 1001, 30.0, 48.0, 50.0, 60000 / 1001, 60.0)
_SNAP_TOLERANCE = 0.005
# Above this an r_frame_rate is a timebase artefact, not a frame rate worth encoding at.
_MAX_BASE_FPS = 120.0
MIN_SIDE_PX = 16
MAXRATE_FACTOR = 1.25
"""Peak bitrate allowed above the target: what HLS BANDWIDTH and player buffers plan for."""
BUFSIZE_FACTOR = 2.0
"""VBV buffer in seconds of target bitrate: how far the rate may swing within a segment."""
MIN_VIDEO_KBPS = 64
CHUNKS_PER_CPU = 3
"""At least this many chunks per CPU (when the title allows): a slow chunk or a lost worker
then costs a fraction of a CPU's share, not all of it."""
CHUNK_OVERHEAD_SEGMENTS = 0.25
"""What starting one chunk costs, in segments of encoding: a process, a second of decoding
before the chunk, x264's lookahead filling up."""


@dataclass(frozen=True)
class Rendition:
    name: str
    width: int
    height: int
    video_kbps: int
    maxrate_kbps: int
    bufsize_kbps: int


@dataclass(frozen=True)
class Chunk:
    """A run of output frames ``[start_frame, end_frame)`` on the keyframe grid."""

    index: int
    start_frame: int
    end_frame: int

    @property
    def name(self) -> str:
        return layout.chunk_name(self.index)

    @property
    def frames(self) -> int:
        return self.end_frame - self.start_frame

    def key(self, work: str, rendition: str) -> str:
        """Where this chunk of ``rendition`` is kept under the plan's work prefix."""
        return layout.chunk_key(work, rendition, self.index)


@dataclass(frozen=True)
class Plan:
    plan_id: str
    fps: float
    """One output rate for every rendition (CFR; also what fixes a VFR source)."""
    segment_s: float
    """Exactly ``gop_frames / fps``, so segment boundaries land on frames."""
    gop_frames: int
    duration_s: float
    renditions: tuple[Rendition, ...]
    """Smallest first."""
    has_audio: bool
    audio_kbps: int
    mp3_kbps: int
    poster_at_s: float
    x264_preset: str
    display_aspect: str
    """The source's display aspect ratio, given to every rendition (``setdar``): rounding to
    even sizes would otherwise leave e.g. 854x480 a hair off 16:9, and DASH keeps
    renditions in one switchable set only when their aspect ratios are identical."""
    chunk_frames: int = 0
    """Frames per encode chunk, a whole number of segments (the last chunk may be shorter)."""
    chunks: tuple[Chunk, ...] = ()
    """The title cut on the keyframe grid, in order, covering every frame once."""

    @property
    def total_frames(self) -> int:
        return max(1, round(self.duration_s * self.fps))

    @property
    def segment_count(self) -> int:
        return math.ceil(self.total_frames / self.gop_frames)

    def rendition(self, name: str) -> Rendition:
        for rendition in self.renditions:
            if rendition.name == name:
                return rendition
        raise KeyError(name)


def segment_starts(plan: Plan) -> list[float]:
    """Where every segment, hence every keyframe, starts (seconds), the same in every rendition."""
    return [index * plan.gop_frames / plan.fps for index in range(plan.segment_count)]


def _even(value: float) -> int:
    """Nearest even integer, halves up (x264 and yuv420p need even sizes)."""
    return max(2, 2 * math.floor(value / 2 + 0.5))


def _even_down(value: float) -> int:
    return max(2, 2 * math.floor(value / 2))


def _snap_fps(rate: float) -> float:
    nearest = min(STANDARD_FPS, key=lambda standard: abs(rate - standard))
    if abs(rate - nearest) / nearest < _SNAP_TOLERANCE:
        return nearest
    if rate >= 1 and abs(rate - round(rate)) / rate < 0.01:
        return float(round(rate))
    return max(1.0, round(rate, 2))


def output_fps(info: MediaInfo, max_fps: float) -> float:
    """The source's rate, made standard, brought under ``max_fps`` by an integer divisor.

    A VFR source is planned at its base rate (its fast stretches), not its average, so motion
    stays smooth. Dividing (50 -> 25, 59.94 -> 29.97) rather than clamping (50 -> 30) drops
    whole frames evenly instead of juddering.
    """
    source = info.fps
    if info.variable_fps:
        # The average of uneven frames is no rate a camera used; the nearest whole one is closer.
        source = info.base_fps if info.fps < info.base_fps <= _MAX_BASE_FPS else float(round(info.fps))
    fps = _snap_fps(source)
    if fps > max_fps:
        fps = fps / math.ceil(fps / max_fps - 1e-9)
    return fps


def _rendition(name: str, width: int, height: int, video_kbps: int) -> Rendition:
    return Rendition(
        name=name,
        width=width,
        height=height,
        video_kbps=video_kbps,
        maxrate_kbps=round(video_kbps * MAXRATE_FACTOR),
        bufsize_kbps=round(video_kbps * BUFSIZE_FACTOR),
    )


def plan_renditions(width: int, height: int, ladder: tuple[Rung, ...]) -> tuple[Rendition, ...]:
    """Rungs at or below the display height, widths from the display aspect, never upscaled.

    A source shorter than the lowest rung gets one rendition at its own (even) size, with the
    lowest rung's bitrate scaled down by pixel count.
    """
    rungs = {rung.height: rung for rung in reversed(ladder)}  # first rung wins per height
    fitting = [rungs[h] for h in sorted(rungs) if h <= height]
    if not fitting:
        lowest = rungs[min(rungs)]
        out_w, out_h = _even_down(width), _even_down(height)
        kbps = max(MIN_VIDEO_KBPS, round(lowest.video_kbps * (out_h / lowest.height) ** 2))
        return (_rendition(f"{out_h}p", out_w, out_h, kbps),)
    return tuple(
        _rendition(
            rung.name,
            min(_even(rung.height * width / height), _even_down(width)),
            rung.height,
            rung.video_kbps,
        )
        for rung in fitting
    )


def _clock(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _check_limits(info: MediaInfo, settings: PipelineSettings) -> None:
    if info.duration_s > settings.max_duration_s:
        raise InvalidMedia(
            f"the video is {_clock(info.duration_s)} long; the limit is {_clock(settings.max_duration_s)}"
        )
    if max(info.width, info.height) > settings.max_height_px:
        raise InvalidMedia(
            f"the video is {info.width}x{info.height}; the largest accepted dimension is "
            f"{settings.max_height_px} px"
        )
    if min(info.width, info.height) < MIN_SIDE_PX:
        raise InvalidMedia(
            f"the video is {info.width}x{info.height}; the smallest accepted side is {MIN_SIDE_PX} px"
        )


def plan_id_of(plan: Plan) -> str:
    """Short stable hash of everything that shapes the output files (all fields but the id)."""
    fields = asdict(plan)
    del fields["plan_id"]
    payload = json.dumps({"plan_format": PLAN_FORMAT, **fields}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def chunk_frames_for(
    total_frames: int, gop_frames: int, fps: float, cluster_cpus: int, pinned_s: float = 0.0
) -> int:
    """Frames per chunk: whole segments, ``pinned_s`` if set, else enough chunks for every CPU.

    Never shorter than one segment: a chunk must start on a keyframe, and below that the
    fixed cost of a process (seek, x264 lookahead) outweighs the parallelism it buys.
    """
    if pinned_s > 0:
        return max(1, round(pinned_s * fps / gop_frames)) * gop_frames
    segments = math.ceil(total_frames / gop_frames)
    cpus = max(1, cluster_cpus)

    def finish(per_chunk: int) -> float:
        # Chunks run in waves of ``cpus``; a wave lasts one chunk and its start-up cost.
        waves = math.ceil(math.ceil(segments / per_chunk) / cpus)
        return waves * (per_chunk + CHUNK_OVERHEAD_SEGMENTS)

    # Among lengths giving enough chunks, the one whose last wave is fullest; ties: longer.
    longest = max(1, math.ceil(segments / (cpus * CHUNKS_PER_CPU)))
    return min(range(1, longest + 1), key=lambda n: (finish(n), -n)) * gop_frames


def plan_chunks(total_frames: int, chunk_frames: int) -> tuple[Chunk, ...]:
    """Consecutive chunks of ``chunk_frames`` covering ``[0, total_frames)``; the last takes the rest."""
    return tuple(
        Chunk(index=index, start_frame=start, end_frame=min(start + chunk_frames, total_frames))
        for index, start in enumerate(range(0, total_frames, chunk_frames))
    )


def plan_video(
    info: MediaInfo, settings: PipelineSettings, cluster_cpus: int = 1, chunk_frames: int | None = None
) -> Plan:
    """The whole encode of one source; InvalidMedia if it is over the configured limits.

    ``chunk_frames`` keeps an earlier plan's chunking (a resumed job on a cluster that changed
    size reuses its chunks); otherwise it follows ``settings.chunk_s`` and ``cluster_cpus``.
    """
    _check_limits(info, settings)
    fps = output_fps(info, settings.max_fps)
    gop_frames = max(1, round(fps * settings.segment_s))
    # A moment in skips a black lead-in, but never past the last frame.
    poster_at_s = round(max(0.0, min(info.duration_s * 0.1, 10.0, info.duration_s - 1 / fps)), 3)
    draft = Plan(
        plan_id="",
        fps=fps,
        segment_s=gop_frames / fps,
        gop_frames=gop_frames,
        duration_s=info.duration_s,
        renditions=plan_renditions(info.width, info.height, settings.ladder),
        has_audio=info.has_audio,
        audio_kbps=settings.audio_kbps,
        mp3_kbps=settings.mp3_kbps,
        poster_at_s=poster_at_s,
        x264_preset=settings.x264_preset,
        display_aspect=display_aspect(info.width, info.height),
    )
    if chunk_frames is None or chunk_frames <= 0 or chunk_frames % gop_frames:
        chunk_frames = chunk_frames_for(draft.total_frames, gop_frames, fps, cluster_cpus, settings.chunk_s)
    draft = replace(draft, chunk_frames=chunk_frames, chunks=plan_chunks(draft.total_frames, chunk_frames))
    return replace(draft, plan_id=plan_id_of(draft))


def display_aspect(width: int, height: int) -> str:
    """``"16/9"`` for 1280x720: the exact ratio, reduced."""
    ratio = Fraction(width, height)
    return f"{ratio.numerator}/{ratio.denominator}"
