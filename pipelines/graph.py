"""A video's job as data: the task specs a plan produces. Pure: no I/O, no Ray.

Every spec names its Ray task, its step, the storage keys it reads and the keys it writes.
A spec depends on whichever specs write its inputs, so the graph needs no other edges, and
the job gathers results by output key: adding a step (subtitles next) is adding a spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from cluster import layout
from pipelines.video.plan import Chunk, Plan
from pipelines.video.tiles import Storyboard, plan_storyboard

PACKAGE_CPUS = 1.0
MEDIA_CPUS = 1.0
"""Audio, MP3 and poster: one single-threaded ffmpeg each. The same CPUs as a one-thread encode,
so Ray queues them with the encodes and starts them in the order the job submits them."""
LIGHT_CPUS = 0.5
"""Subtitles: mostly waiting on text files and the translator."""
DECODE_COST = 0.25
"""Decoding a frame of the source for a task, in frames of its top rendition encoded (a guess
good enough to order tasks by; a task's own renditions cost their pixels)."""
# What the whole-title tasks cost in the same unit as ``encode_cost`` (encoded pixels), from
# CPU times measured on this machine (x264 veryfast: ~12 ns a pixel): only their order matters.
AUDIO_COST_PER_S = {"audio": 2.3e6, "mp3": 0.9e6}
POSTER_COST = 1.7e7
STORYBOARD_DECODE_COST = 0.08
"""The storyboard's decode of one frame, in frames of the top rendition encoded: it skips
non-reference frames and deblocking (1.9 ms a 1080p frame here, a chunk's 1080p ladder 46 ms)."""
STORYBOARD_SEEK_FRAMES = 140
"""A long title's storyboard usually seeks to each tile: one costs about as much as 140 frames
of the one pass (a new ffmpeg, decoding from the keyframe before the tile; measured with one
every 10 s). Only the job's order depends on it."""


@dataclass(frozen=True)
class SubtitleJob:
    """What the subtitles step reads besides the source: its text tracks and the target languages."""

    tracks: tuple[tuple[int, str, str], ...]
    """``MediaInfo.subtitle_tracks``: (stream index, codec, language tag)."""
    translate_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskSpec:
    name: str
    """The Ray task name an operator reads in the dashboard (``encode:{vid}:00003``)."""
    step: str
    inputs: tuple[str, ...]
    """Storage keys read: the source, or outputs of other specs."""
    outputs: tuple[str, ...]
    """Storage keys written, each whole or not at all (a task whose outputs exist is skipped)."""
    num_cpus: float
    renditions: tuple[str, ...] = ()
    chunk: Chunk | None = None
    subtitles: SubtitleJob | None = None
    storyboard: Storyboard | None = None

    @property
    def output(self) -> str:
        """The key a result is gathered by (the first output)."""
        return self.outputs[0]


def encode_cost(plan: Plan, spec: TaskSpec) -> float:
    """Relative cost of an encode spec: its frames times the pixels it encodes and decodes."""
    assert spec.chunk is not None
    pixels = {r.name: r.width * r.height for r in plan.renditions}
    decode = DECODE_COST * max(pixels.values())
    return spec.chunk.frames * (sum(pixels[name] for name in spec.renditions) + decode)


def encode_specs(
    video_id: str, plan: Plan, source: str, work: str, strategy: str, threads: int, slots: int = 0
) -> list[TaskSpec]:
    """One task per chunk for every rendition (``split``), or per chunk and rendition.

    With ``split`` and ``slots`` encodes running at once, chunks that would run in a last,
    part-full wave are encoded per rendition instead: a few more decodes, but CPUs that
    would idle while the last chunks finish take a rendition each.
    """
    names = [r.name for r in plan.renditions]
    by_length = sorted(plan.chunks, key=lambda c: (-c.frames, c.index))
    tail = len(by_length) % slots if strategy == "split" and slots > 1 and len(names) > 1 else 0
    split_alone = {chunk.index for chunk in by_length[len(by_length) - tail :]}
    specs = []
    for chunk in plan.chunks:
        alone = strategy != "split" or chunk.index in split_alone
        for group in [[name] for name in names] if alone else [names]:
            label = f"{group[0]}:{chunk.name}" if alone else chunk.name
            specs.append(
                TaskSpec(
                    name=f"encode:{video_id}:{label}",
                    step="encode",
                    inputs=(source,),
                    outputs=tuple(chunk.key(work, name) for name in group),
                    num_cpus=float(threads),
                    renditions=tuple(group),
                    chunk=chunk,
                )
            )
    return specs


def task_cost(plan: Plan, spec: TaskSpec) -> float:
    """A spec's expected CPU time, in ``encode_cost``'s unit: what the job orders tasks by."""
    if spec.step == "encode":
        return encode_cost(plan, spec)
    if spec.step in AUDIO_COST_PER_S:
        return AUDIO_COST_PER_S[spec.step] * plan.duration_s
    if spec.step == "storyboard" and spec.storyboard is not None:
        top = plan.renditions[-1]
        board = spec.storyboard
        seeking = board.tiles * STORYBOARD_SEEK_FRAMES if board.may_seek else plan.total_frames
        frames = min(plan.total_frames, seeking)
        return STORYBOARD_DECODE_COST * top.width * top.height * frames
    return POSTER_COST


def storyboard_spec(video_id: str, board: Storyboard) -> TaskSpec:
    """``storyboard:{vid}``: the seek-bar previews, published straight beside the manifests
    (``media/{vid}/storyboard.jpg`` and ``.vtt``), so a job or a backfill that finds both skips it."""
    return TaskSpec(
        name=f"storyboard:{video_id}",
        step="storyboard",
        inputs=(layout.source_key(video_id),),
        outputs=layout.storyboard_keys(video_id),
        num_cpus=MEDIA_CPUS,
        storyboard=board,
    )


def job_specs(
    video_id: str,
    plan: Plan,
    *,
    strategy: str = "split",
    threads: int = 1,
    slots: int = 0,
    subtitles: SubtitleJob | None = None,
) -> tuple[TaskSpec, ...]:
    """Every task of one video's job after probing, in an order where inputs come first:
    the longest first (on many CPUs, the whole-title audio may be longer than a chunk), so
    the short ones fill the last wave; packaging last. ``slots``: encodes the cluster runs
    at once (see ``encode_specs``).

    With ``subtitles``, a ``subtitles:{vid}`` task reads the text tracks and sidecar files and
    translates them; packaging waits for it and publishes its languages with the manifests.
    The ``storyboard:{vid}`` task publishes its own files and packaging does not read them, so
    packaging does not wait for it (the job does, before the video turns ready).
    """
    source = layout.source_key(video_id)
    work = layout.work_prefix(video_id, plan.plan_id)
    specs = encode_specs(video_id, plan, source, work, strategy, threads, slots)
    # AAC and MP3 are two tasks, not one: on many CPUs the whole-title audio is the longest task.
    audio = [("audio", layout.aac_key(work)), ("mp3", layout.mp3_key(work))] if plan.has_audio else []
    specs += [
        TaskSpec(name=f"{step}:{video_id}", step=step, inputs=(source,), outputs=(key,), num_cpus=MEDIA_CPUS)
        for step, key in [*audio, ("poster", layout.poster_key(work))]
    ]
    # The stream's duration (whole frames, what the metadata says), so the last cue ends with it.
    board = plan_storyboard(plan.total_frames / plan.fps, Fraction(plan.display_aspect))
    specs.append(storyboard_spec(video_id, board))
    specs.sort(key=lambda spec: -task_cost(plan, spec))
    if subtitles is not None:
        specs.append(
            TaskSpec(
                name=f"subtitles:{video_id}",
                step="subtitles",
                inputs=(source,),
                outputs=(layout.subtitles_record_key(work),),
                num_cpus=LIGHT_CPUS,
                subtitles=subtitles,
            )
        )
    made = tuple(key for spec in specs if spec.step != "storyboard" for key in spec.outputs)
    specs.append(
        TaskSpec(
            name=f"package:{video_id}",
            step="package",
            inputs=made,
            outputs=(layout.media_key(video_id, layout.MPD_NAME),),
            num_cpus=PACKAGE_CPUS,
        )
    )
    return tuple(specs)
