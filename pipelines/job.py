"""One video's job: probe, plan, then the plan's task specs as named Ray tasks, gathered by key.

A ``Job`` runs inside the dispatcher's event loop. It keeps the refs it is waiting on so a
cancel can stop them, and turns every failure into a sentence naming the step, the rendition
and the chunk. Finished work survives a failure: work files go when the job succeeds or when
its plan changes, so a retried or resumed job reuses every chunk already made.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import ray

from catalog.client import CatalogClient
from cluster import layout
from cluster.errors import CatalogUnavailable, ClientError, VodError
from cluster.settings import Settings
from cluster.storage import Storage
from pipelines import graph, tasks
from pipelines.failures import FailedPart, failure_details, failure_sentence, reason_of, root_cause
from pipelines.subtitles.publish import publish_late_sidecars
from pipelines.subtitles.record import SubtitleRecord
from pipelines.subtitles.step import catalog_tracks, translate_targets
from pipelines.video.media_info import MediaInfo
from pipelines.video.plan import Plan, plan_video

log = logging.getLogger(__name__)

# Share of the progress bar each phase fills; encode dominates wall time.
PROBE_WEIGHT = 0.03
ENCODE_WEIGHT = 0.82
PACKAGE_WEIGHT = 0.15

# How long a failing job waits for its other tasks to stop after interrupting them.
CANCEL_GRACE_S = 10.0


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


def encode_weights(plan: Plan, specs: tuple[graph.TaskSpec, ...]) -> dict[str, float]:
    """Encode share per task, by frames times pixels (a 720p chunk costs ~4x a 360p one)."""
    cost = {
        spec.name: float(
            spec.chunk.frames
            * sum(plan.rendition(n).width * plan.rendition(n).height for n in spec.renditions)
        )
        for spec in specs
        if spec.step == "encode" and spec.chunk is not None
    }
    total = sum(cost.values()) or 1.0
    return {name: ENCODE_WEIGHT * value / total for name, value in cost.items()}


class ChunkCount:
    """Chunks whose every rendition is encoded, of the plan's chunks."""

    def __init__(self, plan: Plan) -> None:
        self.total = len(plan.chunks)
        self._missing = {chunk.index: len(plan.renditions) for chunk in plan.chunks}

    def add(self, spec: graph.TaskSpec) -> None:
        if spec.chunk is not None:
            self._missing[spec.chunk.index] -= len(spec.renditions)

    @property
    def done(self) -> int:
        return sum(1 for left in self._missing.values() if left <= 0)


class Job:
    """``catalog``: the catalog actor's handle or client; every call is retried while it restarts
    (``catalog.client``), so a catalog that dies during the job never fails it."""

    def __init__(self, video_id: str, settings: Settings, catalog: Any) -> None:
        self.video_id = video_id
        self.settings = settings
        self.storage = Storage(settings.storage)
        self.catalog = CatalogClient.wrap(catalog, settings.catalog.retry_s)
        self.progress = JobProgress()
        self.step = "queued"
        self.started = time.monotonic()
        self.results: dict[str, Any] = {}
        """Output key -> what the task that wrote it returned (reused or made, on which node)."""
        self._refs: set[ray.ObjectRef] = set()
        self._failed_part: FailedPart | None = None

    def _options(self, spec: graph.TaskSpec) -> dict[str, Any]:
        return {
            "name": spec.name,
            "num_cpus": spec.num_cpus,
            "max_retries": self.settings.pipeline.task_retries,
        }

    async def _await(self, ref: ray.ObjectRef, part: FailedPart) -> Any:
        self._refs.add(ref)
        try:
            return await ref
        except Exception:
            # The first part to fail is the one the job's error names.
            self._failed_part = self._failed_part or part
            raise
        finally:
            self._refs.discard(ref)

    async def _run_spec(self, spec: graph.TaskSpec, ref: ray.ObjectRef) -> tuple[graph.TaskSpec, Any]:
        self.step = spec.step
        return spec, await self._await(ref, failed_part(spec))

    def _start(self, spec: graph.TaskSpec, plan: Plan) -> Any:
        """The coroutine awaiting ``spec``'s task; subtitles (which take the settings) and the
        storyboard never fail the job."""
        runner = tasks.RUNNERS[spec.step].options(**self._options(spec))
        if spec.step == "subtitles":
            return self._run_subtitles(
                spec, runner.remote(self.storage, plan, spec, self.settings, self.video_id)
            )
        ref = runner.remote(self.storage, plan, spec)
        return self._run_storyboard(spec, ref) if spec.step == "storyboard" else self._run_spec(spec, ref)

    async def _run_storyboard(self, spec: graph.TaskSpec, ref: ray.ObjectRef) -> tuple[graph.TaskSpec, Any]:
        """The storyboard task's result; if it failed, none and a warning in the log: the video
        plays without seek-bar previews, and ``vodray backfill storyboards`` tries again."""
        self._refs.add(ref)
        try:
            return spec, await ref
        except Exception as exc:  # noqa: BLE001 - previews must never fail the video
            sentence = failure_sentence(FailedPart(spec.step), exc)
            log.warning("job %s: %s\n%s", self.video_id, sentence, failure_details(exc))
            return spec, {}
        finally:
            self._refs.discard(ref)

    async def _stop(self, futures: set[asyncio.Future[Any]]) -> None:
        """Interrupt every task of the job, and give those behind ``futures`` ``CANCEL_GRACE_S``
        to clean up their temp files before the job reports failure."""
        self.cancel_tasks(force=False)
        stopped, left = await asyncio.wait(futures, timeout=CANCEL_GRACE_S) if futures else (set(), set())
        for future in stopped:  # their errors are the cancellation's echo, not news
            _ = future.cancelled() or future.exception()
        for future in left:
            future.cancel()

    async def _run_subtitles(self, spec: graph.TaskSpec, ref: ray.ObjectRef) -> tuple[graph.TaskSpec, Any]:
        """The subtitles task's result; if it failed, a record holding the reason as a warning."""
        self._refs.add(ref)
        try:
            return spec, await ref
        except Exception as exc:  # noqa: BLE001 - subtitles must never fail the video
            sentence = failure_sentence(FailedPart(spec.step), exc)
            log.warning("job %s: %s\n%s", self.video_id, sentence, failure_details(exc))
            record = SubtitleRecord(warnings=(sentence,)).to_json()
            return spec, {spec.output: {"reused": False, "node": None, "subtitles": record, "cues": {}}}
        finally:
            self._refs.discard(ref)

    async def _catalog_subtitles(
        self, specs: tuple[graph.TaskSpec, ...], warnings: list[str]
    ) -> dict[str, Any]:
        """The subtitle record and the cues of every published language into the catalog, in
        one transaction (searchable once the video is ready); returns the record's JSON.

        ``warnings`` from packaging mean no track was published: the record lists none."""
        found = next((self.results.get(s.output) for s in specs if s.step == "subtitles"), None) or {}
        record = SubtitleRecord.from_json(found.get("subtitles")).for_catalog()
        if warnings:
            record = record.unpublished(warnings)
        tracks = catalog_tracks(self.video_id, record, found.get("cues") or {})
        try:
            await self.catalog.put_subtitles.remote(self.video_id, record.to_json(), tracks)
        except CatalogUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - a video without searchable lines still plays
            # The step checked every track with the catalog's rule: this is the catalog failing.
            reason = reason_of(exc, FailedPart("subtitles"))
            log.warning("job %s: subtitle cues not indexed: %s", self.video_id, reason)
            sentence = f"the subtitles could not be indexed for search: {reason}"
            record = record.with_warnings([sentence])
            await self.catalog.set_subtitles.remote(self.video_id, record.to_json())
        return record.to_json()

    async def _enter(self, step: str, **fields: Any) -> None:
        self.step = step
        await self.catalog.update_job.remote(self.video_id, step=step, progress=self.progress.total, **fields)

    def cancel_tasks(self, force: bool = True) -> None:
        """Stop the tasks this job waits on; ``force`` kills their workers instead of interrupting."""
        for ref in list(self._refs):
            ray.cancel(ref, force=force)

    async def run(self) -> dict[str, Any] | None:
        """Run the job to ``ready`` or ``failed``; returns the published summary when ready."""
        vid = self.video_id
        video = await self.catalog.get_video.remote(vid)
        if video is None:  # deleted while queued
            return None
        job = video["job"] or {}
        attempts = int(job.get("attempts") or 0) + 1
        limit = self.settings.pipeline.job_attempts
        if attempts > limit:
            last = job.get("error") or f"it stopped during {job.get('step') or 'processing'}"
            await self._fail(f"gave up after {limit} attempts; the last one: {last}")
            return None
        await self.catalog.update_job.remote(
            vid, state="running", step="probe", progress=0.0, attempts=attempts, chunks_done=0
        )
        try:
            targets = translate_targets(video, self.settings.subtitles)
            summary = await self._run(video["source_key"], targets)
        except (asyncio.CancelledError, CatalogUnavailable):
            # Cancelled, or the catalog stayed away past VODRAY_CATALOG_RETRY_S: not a failure of
            # the video. The job stays unfinished in the catalog and runs again (the dispatcher).
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
        await self._remove_work(keep=None)
        return summary

    async def _fail(self, reason: str) -> None:
        # Work files stay: a retried job reuses every finished chunk. The source stays too.
        self.cancel_tasks()
        await self.catalog.mark_failed.remote(self.video_id, reason)

    async def _remove_work(self, keep: str | None) -> None:
        """Work files of every plan but ``keep`` (all of them when ``None``)."""
        root = layout.work_root(self.video_id)

        def remove() -> None:
            if keep is None:
                self.storage.delete_prefix(root)
                return
            for plan_id in self._plans_on_disk():
                if plan_id != keep:
                    self.storage.delete_prefix(layout.work_prefix(self.video_id, plan_id))

        # Off the dispatcher's event loop: on S3 this is many requests, and other jobs wait on it.
        await asyncio.to_thread(remove)

    def _plans_on_disk(self) -> set[str]:
        root = layout.work_root(self.video_id)
        return {key[len(root) + 1 :].split("/", 1)[0] for key in self.storage.list(root)}

    def _choose_plan(self, info: MediaInfo) -> Plan:
        """The plan to run: an earlier run's, if only the cluster's size changed since, so its
        chunks are reused; else a fresh one cut for the CPUs the cluster has now."""
        pipeline = self.settings.pipeline
        cpus = encode_slots(self.settings)
        fresh = plan_video(info, pipeline, cluster_cpus=cpus)
        for plan_id in sorted(self._plans_on_disk() - {fresh.plan_id}):
            record = layout.plan_record_key(layout.work_prefix(self.video_id, plan_id))
            try:
                chunk_frames = int(json.loads(self.storage.read_bytes(record))["chunk_frames"])
            except (VodError, ValueError, KeyError, TypeError):
                continue
            earlier = plan_video(info, pipeline, cluster_cpus=cpus, chunk_frames=chunk_frames)
            if earlier.plan_id == plan_id:
                return earlier
        record = layout.plan_record_key(layout.work_prefix(self.video_id, fresh.plan_id))
        self.storage.write_bytes(record, json.dumps({"chunk_frames": fresh.chunk_frames}).encode())
        return fresh

    async def _run(self, source_key: str, translate_to: tuple[str, ...]) -> dict[str, Any]:
        vid, storage, pipeline = self.video_id, self.storage, self.settings.pipeline
        self.step = "probe"
        probe_ref = tasks.probe_source.options(name=f"probe:{vid}", max_retries=pipeline.task_retries).remote(
            storage, source_key
        )
        info = await self._await(probe_ref, FailedPart("probe"))
        plan = await asyncio.to_thread(self._choose_plan, info)
        await self._remove_work(keep=plan.plan_id)  # a changed plan's files never mix in
        specs = graph.job_specs(
            vid,
            plan,
            strategy=pipeline.chunk_strategy,
            threads=pipeline.encode_threads,
            slots=encode_slots(self.settings),
            subtitles=graph.SubtitleJob(info.subtitle_tracks, translate_to),
        )
        self.progress.set("probe", 1.0)
        self.progress.add_parts(encode_weights(plan, specs))
        self.progress.add_parts({"package": PACKAGE_WEIGHT})
        chunks = ChunkCount(plan)
        *parallel, package = specs
        # Submitted in the specs' order (Ray keeps it), before the catalog hears of them: the
        # CPUs start on the encodes while the status is written. Packaging waits for the tasks
        # whose outputs it reads; the others (the storyboard) run on beside it.
        started = {asyncio.ensure_future(self._start(spec, plan)): spec for spec in parallel}
        running = {future for future, spec in started.items() if set(spec.outputs) & set(package.inputs)}
        beside = set(started) - running
        try:
            await self._enter("encode", plan_id=plan.plan_id, chunks_total=chunks.total)
            while running:
                finished, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for future in finished:
                    spec, result = future.result()
                    self.results.update(result)
                    self.progress.set(spec.name, 1.0)
                    chunks.add(spec)
                await self.catalog.update_job.remote(
                    vid, progress=self.progress.total, chunks_done=chunks.done
                )
        finally:
            if running:  # a task failed: the rest would be wasted work (finished chunks stay)
                await self._stop(running | beside)
        try:
            ref = tasks.package_and_publish.options(**self._options(package)).remote(
                storage, plan, package, vid
            )
            await self._enter("package")
            _, summary = await self._run_spec(package, ref)
            self.results[package.output] = summary
            self.progress.set("package", 1.0)
            if not all(future.done() for future in beside):
                await self._enter("storyboard")
            for _, result in await asyncio.gather(*beside):
                self.results.update(result)
        except Exception:
            await self._stop(beside)  # (a cancelled job stops every task in ``run``)
            raise
        boards = [self.results[s.output] for s in parallel if s.storyboard and s.output in self.results]
        summary["storyboard"] = boards[0].get("storyboard") if boards else None
        summary["subtitles"] = await self._catalog_subtitles(specs, summary.pop("subtitle_warnings", []))
        await self.catalog.mark_ready.remote(
            vid,
            duration_s=summary["duration_s"],
            width=plan.renditions[-1].width,
            height=plan.renditions[-1].height,
            renditions=summary["renditions"],
            has_audio=plan.has_audio,
            media_bytes=summary["media_bytes"],
            storyboard=summary["storyboard"],
        )
        # Sidecars posted after the subtitles step read them: the API saw the video not ready yet.
        await asyncio.to_thread(
            publish_late_sidecars,
            storage,
            self.catalog,
            self.settings.subtitles,
            vid,
            self.results,
            summary["duration_s"],
        )
        summary["encode_s"] = time.monotonic() - self.started
        made = {k: v for k, v in self.results.items() if isinstance(v, dict) and "reused" in v}
        summary["reused"] = sorted(key for key, value in made.items() if value["reused"])
        summary["nodes"] = {key: value["node"] for key, value in made.items()}
        return summary


def encode_slots(settings: Settings) -> int:
    """Encode tasks the cluster runs at once: each reserves ``encode_threads`` CPUs."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)) // settings.pipeline.encode_threads)


def failed_part(spec: graph.TaskSpec) -> FailedPart:
    """What a failed spec's sentence names: its step, its one rendition, its chunk."""
    rendition = spec.renditions[0] if len(spec.renditions) == 1 else None
    return FailedPart(spec.step, rendition, spec.chunk.index if spec.chunk is not None else None)
