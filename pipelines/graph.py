"""A video's job as data: the task specs a plan produces. Pure: no I/O, no Ray.

Every spec names its Ray task, its step, the storage keys it reads and the keys it writes.
A spec depends on whichever specs write its inputs, so the graph needs no other edges, and
the job gathers results by output key: adding a step (subtitles next) is adding a spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cluster import layout
from pipelines.plan import Chunk, Plan

PACKAGE_CPUS = 1.0
LIGHT_CPUS = 0.5
"""Poster: one decoded frame, a JPEG."""


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

    @property
    def output(self) -> str:
        """The key a result is gathered by (the first output)."""
        return self.outputs[0]


def encode_specs(
    video_id: str, plan: Plan, source: str, work: str, strategy: str, threads: int
) -> list[TaskSpec]:
    """One task per chunk for every rendition (``split``), or per chunk and rendition."""
    names = [r.name for r in plan.renditions]
    groups: list[list[str]] = [names] if strategy == "split" else [[name] for name in names]
    specs = []
    for chunk in plan.chunks:
        for group in groups:
            label = chunk.name if strategy == "split" else f"{group[0]}:{chunk.name}"
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


def job_specs(
    video_id: str,
    plan: Plan,
    *,
    strategy: str = "split",
    threads: int = 1,
    subtitles: SubtitleJob | None = None,
) -> tuple[TaskSpec, ...]:
    """Every task of one video's job after probing, in an order where inputs come first.

    With ``subtitles``, a ``subtitles:{vid}`` task reads the text tracks and sidecar files and
    translates them; packaging waits for it and publishes its languages with the manifests.
    """
    source = layout.source_key(video_id)
    work = layout.work_prefix(video_id, plan.plan_id)
    specs = encode_specs(video_id, plan, source, work, strategy, threads)
    if plan.has_audio:
        # Two tasks, not one: on many CPUs the whole-title audio is the longest single task.
        specs += [
            TaskSpec(
                name=f"audio:{video_id}",
                step="audio",
                inputs=(source,),
                outputs=(layout.aac_key(work),),
                num_cpus=1.0,
            ),
            TaskSpec(
                name=f"mp3:{video_id}",
                step="mp3",
                inputs=(source,),
                outputs=(layout.mp3_key(work),),
                num_cpus=1.0,
            ),
        ]
    specs.append(
        TaskSpec(
            name=f"poster:{video_id}",
            step="poster",
            inputs=(source,),
            outputs=(layout.poster_key(work),),
            num_cpus=LIGHT_CPUS,
        )
    )
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
    made = tuple(key for spec in specs for key in spec.outputs)
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


def producers(specs: Sequence[TaskSpec]) -> dict[str, TaskSpec]:
    """Output key -> the spec that writes it."""
    return {key: spec for spec in specs for key in spec.outputs}


def dependencies(spec: TaskSpec, by_output: dict[str, TaskSpec]) -> list[TaskSpec]:
    """The specs that must finish before ``spec`` starts, each once, in input order."""
    found: dict[str, TaskSpec] = {}
    for key in spec.inputs:
        upstream = by_output.get(key)
        if upstream is not None:
            found.setdefault(upstream.name, upstream)
    return list(found.values())
