"""The dispatcher: one detached, named async actor that runs jobs, a bounded number at a time.

On start (and after Ray restarts it) it resumes every job the catalog says is unfinished,
so a restart loses nothing: finished work files are skipped by the tasks themselves.

The job code is imported when the actor starts, not when the first job runs: a node whose
install is broken (a missing module) makes ``start_dispatcher`` fail with that reason, instead
of every job waiting forever on a job that died before it could record anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from typing import Any

import ray
from ray.util import metrics

from cluster.errors import Unavailable, VodError
from cluster.settings import Settings

log = logging.getLogger(__name__)

DISPATCHER_ACTOR = "vodray-dispatcher"
INTERNAL_ERROR = "an internal error stopped the job; the operator's log has the details"
RERUN_AFTER_S = 30.0
"""How long a job that could not reach the catalog (past ``VODRAY_CATALOG_RETRY_S``) waits before
it runs again; it stays unfinished in the catalog meanwhile, never failed."""


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class Dispatcher:
    def __init__(self, settings: Settings) -> None:
        from catalog.actor import get_catalog
        from pipelines.job import Job  # here, not per job: a broken install fails the start

        self._job_type = Job
        self._settings = settings
        self._catalog = get_catalog(settings)
        self._slots = asyncio.Semaphore(settings.pipeline.jobs_in_flight)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._jobs: dict[str, Any] = {}  # video id -> running pipelines.job.Job
        self._processed = metrics.Counter(
            "vodray_videos_processed", "Videos that finished processing, by result.", tag_keys=("result",)
        )
        self._queue_depth = metrics.Gauge("vodray_queue_depth", "Videos waiting for a processing slot.")
        self._in_flight = metrics.Gauge("vodray_jobs_in_flight", "Videos being processed now.")
        self._published = metrics.Counter("vodray_published_bytes", "Bytes of media published to storage.")
        self._speed = metrics.Histogram(
            "vodray_encode_seconds_per_output_second",
            "Wall seconds of processing per second of output video.",
            boundaries=[0.1, 0.25, 0.5, 1, 2, 4, 8, 16],
        )
        # An async actor's constructor runs in its event loop: resume right away, on the first
        # start and on every restart Ray makes after a crash.
        self._resumed = asyncio.get_running_loop().create_task(self._resume())
        self._sweeping = asyncio.get_running_loop().create_task(self._sweep_uploads())
        self._scratch_sweeping = asyncio.get_running_loop().create_task(
            self._sweep_every(settings.pipeline.scratch_sweep_s)
        )

    async def resume(self) -> list[str]:
        """Wait until the unfinished jobs found at start are submitted; returns their ids."""
        return await self._resumed

    async def _resume(self) -> list[str]:
        # Retried while the catalog (re)starts, e.g. after a cluster restart (``catalog.client``).
        pending: list[str] = await self._catalog.unfinished_jobs.remote()
        for vid in pending:
            self._start(vid)
        if pending:
            log.info("resumed %d unfinished jobs", len(pending))
        return pending

    async def _sweep_uploads(self) -> None:
        """Remove expired resumable uploads now and every ``VODRAY_UPLOAD_SWEEP_S`` (a video
        whose finish a crash cut short is made and started instead: ``cluster.upload_lifecycle``)."""
        from cluster.storage import Storage
        from cluster.upload_lifecycle import sweep_expired_uploads

        storage, http = Storage(self._settings.storage), self._settings.http
        while True:
            try:
                for video_id in await sweep_expired_uploads(storage, self._catalog, http.upload_expiry_s):
                    self._start(video_id)
            except Exception:  # noqa: BLE001 - the catalog or storage away: the next sweep tries again
                log.warning("sweeping expired uploads failed", exc_info=True)
            await asyncio.sleep(http.upload_sweep_s)

    async def sweep_scratch(self, grace_s: float | None = None) -> list[str]:
        """Remove, on every node, the scratch dirs of tasks whose worker is gone (``cluster.scratch``;
        ``grace_s``: its default unless given); returns what was removed."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from cluster.scratch import GRACE_S
        from pipelines.tasks import sweep_scratch

        nodes = [node["NodeID"] for node in await asyncio.to_thread(ray.nodes) if node.get("Alive")]
        refs = [
            sweep_scratch.options(
                name=f"sweep:{node[:12]}",
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node, soft=False),
            ).remote(GRACE_S if grace_s is None else grace_s)
            for node in nodes
        ]
        removed: list[str] = []
        for outcome in await asyncio.gather(*refs, return_exceptions=True):
            if isinstance(outcome, BaseException):
                log.warning("sweeping scratch dirs failed on a node: %s", outcome)
            else:
                removed += outcome
        return removed

    async def _sweep_every(self, interval_s: float) -> None:
        while True:
            try:
                await self.sweep_scratch()
            except Exception:  # noqa: BLE001 - a sweep that failed is tried again next time
                log.warning("sweeping scratch dirs failed", exc_info=True)
            await asyncio.sleep(interval_s)

    async def submit(self, video_id: str) -> None:
        await self.resume()
        self._start(video_id)

    def _start(self, video_id: str) -> None:
        if video_id in self._tasks:
            return
        task = asyncio.ensure_future(self._run(video_id))
        self._tasks[video_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(video_id, None))
        self._update_gauges()

    async def _run(self, video_id: str) -> None:
        async with self._slots:
            job = self._job_type(video_id, self._settings, self._catalog)
            self._jobs[video_id] = job
            self._update_gauges()
            try:
                summary = await job.run()
            except asyncio.CancelledError:
                log.info("job %s cancelled", video_id)
                raise
            except (VodError, ray.exceptions.RayError) as exc:
                # The catalog stayed away past VODRAY_CATALOG_RETRY_S: the job is unfinished in
                # the catalog (never failed for it) and runs again after a pause.
                log.exception(
                    "job %s could not reach the catalog; again in %g s: %s", video_id, RERUN_AFTER_S, exc
                )
                asyncio.get_running_loop().call_later(RERUN_AFTER_S, self._start, video_id)
                return
            except Exception:  # noqa: BLE001 - a bug must end the job with a sentence, not hang it
                log.exception("job %s stopped on an internal error", video_id)
                await self._catalog.mark_failed.remote(video_id, INTERNAL_ERROR)
                summary = None
            finally:
                self._jobs.pop(video_id, None)
                self._update_gauges()
        self._processed.inc(tags={"result": "ready" if summary else "failed"})
        if summary:
            self._published.inc(summary["media_bytes"])
            if summary["duration_s"] > 0:
                self._speed.observe(summary["encode_s"] / summary["duration_s"])

    async def cancel(self, video_id: str) -> bool:
        """Stop a video's job and its running tasks; True if one was running or queued."""
        task = self._tasks.get(video_id)
        if task is None:
            return False
        job = self._jobs.get(video_id)
        if job is not None:
            job.cancel_tasks()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return True

    async def stats(self) -> dict[str, Any]:
        running = sorted(self._jobs)
        queued = sorted(set(self._tasks) - set(running))
        return {"running": running, "queued": queued, "slots": self._settings.pipeline.jobs_in_flight}

    async def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Block until no job is queued or running (for tests and scripts)."""
        await self.resume()  # after a restart, the resumed jobs count too
        deadline = time.monotonic() + timeout_s
        while self._tasks and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        return not self._tasks

    def _update_gauges(self) -> None:
        self._in_flight.set(len(self._jobs))
        self._queue_depth.set(len(self._tasks) - len(self._jobs))


def start_dispatcher(settings: Settings, **options: Any) -> Any:
    """Start (or find) the dispatcher and let it resume unfinished jobs; returns its handle.

    ``Unavailable`` with the reason if it cannot start (its code does not import on this node).
    ``options`` go to Ray's actor options (tests start a second dispatcher by another name).
    """
    handle = Dispatcher.options(  # type: ignore[attr-defined]
        **{
            "name": DISPATCHER_ACTOR,
            "namespace": settings.ray.namespace,
            "lifetime": "detached",
            "get_if_exists": True,
            **options,
        }
    ).remote(settings)
    try:
        ray.get(handle.resume.remote())
    except ray.exceptions.RayActorError as exc:
        raise Unavailable(f"the dispatcher could not start: {creation_error(exc)}") from exc
    return handle


def creation_error(exc: BaseException) -> str:
    """The reason an actor's constructor failed, as its last line (``ModuleNotFoundError: ...``)."""
    cause = getattr(exc, "error_msg", None) or str(exc)
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^\w+(Error|Exception): ", line)]
    return errors[-1] if errors else (lines[-1] if lines else "unknown reason")


def get_dispatcher(settings: Settings) -> Any:
    return ray.get_actor(DISPATCHER_ACTOR, namespace=settings.ray.namespace)
