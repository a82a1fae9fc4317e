"""One video's job as a graph of named Ray tasks: probe -> plan -> encode x renditions,
audio, poster -> package and publish -> catalog ``ready``.

A ``Job`` runs inside the dispatcher's event loop. It keeps the refs it is waiting on so a
cancel can stop them, and turns every failure into a readable reason on the job row.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any

import ray

from cluster.errors import ClientError
from cluster.settings import Settings
from cluster.storage import Storage
from pipelines import tasks
from pipelines.failures import FailedPart, failure_details, failure_sentence, root_cause
from pipelines.plan import Plan, plan_video

log = logging.getLogger(__name__)

# Share of the progress bar each phase fills; encode dominates wall time.
PROBE_WEIGHT = 0.03
ENCODE_WEIGHT = 0.82
PACKAGE_WEIGHT = 0.15


class JobProgress:
    """Overall progress 0..1 from the fractions of weighted parts."""

    def __init__(self) -> None:
        self._weights: dict[str, float] = {"probe": PROBE_WEIGHT}
        self._done: dict[str, float] = {}

    def add_parts(self, weights: dict[str, float]) -> None:
        self._weights.update(weights)

    def set(self, part: str, fraction: float) -> None:
        if part in self._weights:
            self._done[part] = max(self._done.get(part, 0.0), min(max(fraction, 0.0), 1.0))

    @property
    def total(self) -> float:
        value = sum(self._weights[p] * f for p, f in self._done.items())
        return round(min(value, 1.0), 4)


def encode_weights(plan: Plan) -> dict[str, float]:
    """Encode share per rendition, by pixel count (a 720p encode costs ~4x a 360p one)."""
    pixels = {f"encode:{r.name}": float(r.width * r.height) for r in plan.renditions}
    total = sum(pixels.values())
    return {part: ENCODE_WEIGHT * n / total for part, n in pixels.items()}


class Job:
    def __init__(self, video_id: str, settings: Settings, catalog: Any, dispatcher: Any) -> None:
        self.video_id = video_id
        self.settings = settings
        self.storage = Storage(settings.storage)
        self.catalog = catalog
        self.dispatcher = dispatcher
        self.progress = JobProgress()
        self.step = "queued"
        self.started = time.monotonic()
        self._refs: set[ray.ObjectRef] = set()
        self._failed_part: FailedPart | None = None

    def _options(self, name: str) -> dict[str, Any]:
        return {"name": name, "max_retries": self.settings.pipeline.task_retries}

    async def _await(self, ref: ray.ObjectRef, part: FailedPart) -> Any:
        self._refs.add(ref)
        try:
            return await ref
        except Exception:
            # The first part to fail is the one the job's error names (gather raises it first).
            self._failed_part = self._failed_part or part
            raise
        finally:
            self._refs.discard(ref)

    async def _enter(self, step: str) -> None:
        self.step = step
        await self.catalog.update_job.remote(self.video_id, step=step, progress=self.progress.total)

    def cancel_tasks(self) -> None:
        for ref in list(self._refs):
            ray.cancel(ref, force=True)

    async def run(self) -> dict[str, Any] | None:
        """Run the job to ``ready`` or ``failed``; returns the published summary when ready."""
        vid = self.video_id
        video = await self.catalog.get_video.remote(vid)
        if video is None:  # deleted while queued
            return None
        attempts = int(video["job"].get("attempts") or 0) + 1
        await self.catalog.update_job.remote(
            vid, state="running", step="probe", progress=0.0, attempts=attempts
        )
        try:
            summary = await self._run(video["source_key"])
        except asyncio.CancelledError:
            self.cancel_tasks()
            raise
        except Exception as exc:  # noqa: BLE001 - every failure must end as a readable job status
            part = self._failed_part or FailedPart(self.step)
            sentence = failure_sentence(part, exc)
            # The user gets the sentence; the log gets it all, under the job's video id.
            if isinstance(root_cause(exc), ClientError):
                log.info("job %s failed: %s", vid, sentence)
            else:
                log.error("job %s failed: %s\n%s", vid, sentence, failure_details(exc))
            await self._fail(sentence)
            return None
        await self._remove_work_files()
        return summary

    async def _fail(self, reason: str) -> None:
        self.cancel_tasks()
        await self.catalog.mark_failed.remote(self.video_id, reason)
        # The source stays (the job can be re-run); half-made work files do not.
        await self._remove_work_files()

    async def _remove_work_files(self) -> None:
        # Off the dispatcher's event loop: on S3 this is many requests, and other jobs wait on it.
        await asyncio.to_thread(self.storage.delete_prefix, f"work/{self.video_id}")

    async def _run(self, source_key: str) -> dict[str, Any]:
        vid, storage = self.video_id, self.storage
        self.step = "probe"
        info = await self._await(
            tasks.probe_source.options(**self._options(f"probe:{vid}")).remote(storage, source_key),
            FailedPart("probe"),
        )
        plan = plan_video(info, self.settings.pipeline)
        self.progress.set("probe", 1.0)
        self.progress.add_parts(encode_weights(plan))
        self.progress.add_parts({"package": PACKAGE_WEIGHT})
        await self.catalog.update_job.remote(vid, plan_id=plan.plan_id)
        await self._enter("encode")

        work = tasks.work_prefix(vid, plan)
        encodes: dict[str, Awaitable[str]] = {}
        for rendition in plan.renditions:
            reporter = tasks.ProgressReporter(self.dispatcher, vid, f"encode:{rendition.name}")
            ref = tasks.encode_rendition.options(**self._options(f"encode:{vid}:{rendition.name}")).remote(
                storage, source_key, plan, rendition, work, reporter
            )
            encodes[rendition.name] = self._await(ref, FailedPart("encode", rendition.name))
        audio_ref = None
        if plan.has_audio:
            audio_ref = self._await(
                tasks.encode_audio.options(**self._options(f"audio:{vid}")).remote(
                    storage, source_key, plan, work
                ),
                FailedPart("audio"),
            )
        poster_ref = self._await(
            tasks.make_poster.options(**self._options(f"poster:{vid}")).remote(
                storage, source_key, plan, work
            ),
            FailedPart("poster"),
        )
        names = list(encodes)
        results = await asyncio.gather(*encodes.values(), *([audio_ref] if audio_ref else []), poster_ref)
        rendition_keys = dict(zip(names, results[: len(names)], strict=True))
        audio_keys = results[len(names)] if audio_ref else None
        poster_key = results[-1]

        await self._enter("package")
        summary: dict[str, Any] = await self._await(
            tasks.package_and_publish.options(**self._options(f"package:{vid}")).remote(
                storage, plan, rendition_keys, audio_keys, poster_key, tasks.media_prefix(vid)
            ),
            FailedPart("package"),
        )
        self.progress.set("package", 1.0)
        await self.catalog.mark_ready.remote(
            vid,
            duration_s=summary["duration_s"],
            width=plan.renditions[-1].width,
            height=plan.renditions[-1].height,
            renditions=summary["renditions"],
            has_audio=plan.has_audio,
            media_bytes=summary["media_bytes"],
        )
        summary["encode_s"] = time.monotonic() - self.started
        return summary
