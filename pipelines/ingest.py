"""Submitting a local file without HTTP: for the CLI, scripts and notebooks.

Needs a running catalog and dispatcher (``cluster.deploy.start_backend``).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, cast

import ray
from tqdm.auto import tqdm

from catalog.credentials import username_to_look_up
from catalog.validation import check_video_fields
from cluster.errors import InvalidMedia, NotFound
from cluster.layout import source_key
from cluster.settings import Settings
from cluster.storage import Storage

FINISHED = ("ready", "failed")


def ingest_file(
    settings: Settings,
    path: Path,
    *,
    title: str,
    owner: str,
    description: str = "",
    visibility: str = "private",
) -> str:
    """Copy ``path`` in as a new video of user ``owner`` and queue its job; returns the id."""
    from catalog.actor import get_catalog
    from pipelines.dispatcher import get_dispatcher

    fields = check_video_fields(title, description, visibility)
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"no such file: {path}")
    size = path.stat().st_size
    if size == 0:
        raise InvalidMedia(f"{path} is empty")
    catalog = get_catalog(settings)
    user = cast("dict[str, Any] | None", catalog.get_user_by_name.remote(username_to_look_up(owner)).result())
    if user is None:
        raise NotFound(f"no user named {owner!r}: create one with `vodray users create {owner}`")
    video_id = uuid.uuid4().hex
    Storage(settings.storage).put_file(path, source_key(video_id))
    catalog.create_video.remote(
        video_id,
        user["id"],
        fields.title,
        fields.description,
        fields.visibility,
        source_key(video_id),
        size,
    ).result()
    ray.get(get_dispatcher(settings).submit.remote(video_id))
    return video_id


def wait_until_finished(
    settings: Settings, video_id: str, *, timeout_s: float | None = None, show_progress: bool = True
) -> dict[str, Any]:
    """Poll the catalog until the video is ``ready`` or ``failed``, with a progress bar."""
    from catalog.actor import get_catalog

    catalog = get_catalog(settings)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    with tqdm(total=100, desc=video_id[:8], unit="%", disable=not show_progress, leave=False) as bar:
        while True:
            video = cast("dict[str, Any] | None", catalog.get_video.remote(video_id).result())
            if video is None:
                raise NotFound(f"video {video_id!r} not found")
            job = video["job"]
            bar.set_postfix_str(job["step"])
            bar.update(round(100 * float(job["progress"] or 0)) - bar.n)
            if video["status"] in FINISHED:
                return video
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"video {video_id} still {video['status']} after {timeout_s} s")
            time.sleep(0.5)
