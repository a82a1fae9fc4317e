"""Backfill with Ray Data: seek-bar previews for every ready video made before storyboards.

From a notebook (with vodray running, or ``address=`` in ``VODRAY_RAY_ADDRESS``)::

    from cluster.settings import load_settings
    from pipelines.storyboard_backfill import backfill_storyboards

    summary = backfill_storyboards(load_settings())

or ``vodray backfill storyboards``. Every ready video the catalog lists without a storyboard
goes through Ray Data (``map``, one CPU and one video per task, Ray Data's progress bar): the
same step as a job's ``storyboard:{id}`` task (``pipelines.tasks.make_storyboard``) reads its
source by range, makes the sheet and the WebVTT and publishes them beside the manifests. Then,
video by video (a tqdm bar), the catalog records it and the metadata lists ``storyboard_url``.

Safe to re-run: a video whose storyboard is recorded is skipped; one whose files were published
but not recorded (an interrupted run) reuses them. A video that fails is reported with the
reason and left without one; the others go on. A video deleted meanwhile keeps no file.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from cluster import layout
from cluster.settings import Settings
from cluster.storage import Storage
from pipelines import graph, tasks
from pipelines.failures import FailedPart, failure_details, failure_sentence
from pipelines.video.tiles import plan_storyboard

log = logging.getLogger(__name__)


@dataclass
class StoryboardSummary:
    made: list[str] = field(default_factory=list)
    """Videos that got a storyboard in this run."""
    skipped: list[str] = field(default_factory=list)
    """Videos that had one already."""
    failed: dict[str, str] = field(default_factory=dict)
    """Video -> why its storyboard could not be made."""
    seconds: float = 0.0

    def __str__(self) -> str:
        return (
            f"storyboards: {len(self.made)} video(s) made, {len(self.skipped)} skipped (already there),"
            f" {len(self.failed)} failed, in {self.seconds:.1f} s"
        )


def make_one(row: dict[str, Any], storage: Storage) -> dict[str, Any]:
    """The ``map`` function: one video's storyboard published; ``storyboard`` (its grid, as
    JSON) or ``error`` (a sentence) in the row it returns."""
    video_id = str(row["id"])
    try:
        board = plan_storyboard(float(row["duration_s"]), Fraction(int(row["width"]), int(row["height"])))
        spec = graph.storyboard_spec(video_id, board)
        result = tasks.make_storyboard(storage, None, spec)[spec.output]
    except Exception as exc:  # noqa: BLE001 - one video's failure is reported, the others go on
        sentence = failure_sentence(FailedPart("storyboard"), exc)
        log.warning("storyboard backfill, video %s: %s\n%s", video_id, sentence, failure_details(exc))
        return {"id": video_id, "storyboard": "", "error": sentence}
    return {"id": video_id, "storyboard": json.dumps(result["storyboard"]), "error": ""}


def backfill_storyboards(settings: Settings, *, progress: bool = True) -> StoryboardSummary:
    """A storyboard for every ready video without one; see the module's docstring."""
    import ray.data

    from catalog.actor import get_catalog, start_catalog
    from cluster.runtime import connect

    started = time.perf_counter()
    connect(settings)
    start_catalog(settings)
    catalog = get_catalog(settings)  # its calls are retried while the catalog restarts
    summary = StoryboardSummary()
    todo: list[dict[str, Any]] = []
    videos: list[dict[str, Any]] = catalog.storyboard_candidates.remote().result()
    for video in videos:
        if video["has_storyboard"]:
            summary.skipped.append(video["id"])
        elif not video["duration_s"] or not video["width"] or not video["height"]:
            summary.failed[video["id"]] = "the catalog has no duration or size for it"
        else:
            todo.append({key: video[key] for key in ("id", "duration_s", "width", "height")})
    if todo:
        storage = Storage(settings.storage)
        ray.data.DataContext.get_current().enable_progress_bars = progress
        made = ray.data.from_items(todo, override_num_blocks=len(todo)).map(
            functools.partial(make_one, storage=storage), num_cpus=1
        )
        for row in _bar(made.iter_rows(), len(todo), progress):
            video_id = str(row["id"])
            if row["error"]:
                summary.failed[video_id] = str(row["error"])
            elif catalog.set_storyboard.remote(video_id, json.loads(row["storyboard"])).result():
                summary.made.append(video_id)
            else:  # deleted (or no longer ready) while its storyboard was made: keep nothing
                for key in layout.storyboard_keys(video_id):
                    storage.delete(key)
    summary.seconds = time.perf_counter() - started
    log.info("backfill %s", summary)
    return summary


def _bar(rows: Any, total: int, progress: bool) -> Any:
    if not progress:
        return rows
    from tqdm.auto import tqdm

    return tqdm(rows, total=total, desc="recording storyboards", unit="video")
