"""Videos and their processing jobs, and the upload slots that come before a video exists.

A video row and its job row are made together and change together: moving a job to a state
moves its video's status with it (``update_job``, ``mark_ready``, ``mark_failed``). Whether an
upload may start is decided in ``catalog.quotas``; who may see a video in ``catalog.visibility``.

Every write may be made twice with the same arguments (``catalog.client`` repeats a call the
catalog's restart interrupted): ``reserve_upload`` and ``create_video`` know their own upload
id again, ``abandon_upload`` only moves a streaming reservation, and the job writes
(``update_job``, ``mark_ready``, ``mark_failed``, ``delete_video``) set the same values again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb

from catalog import quotas
from catalog.cues import delete_video_search
from catalog.database import CatalogDatabase, dict_rows, to_db, update_columns
from catalog.outbox import record_event, record_video_event, snapshot_video, status_of
from catalog.search.index import mark_dirty
from catalog.visibility import VISIBILITIES, VISIBLE_TO_SQL
from cluster.errors import BadRequest, Conflict

JOB_STATES = ("queued", "running", "done", "failed")
# Moving a job to one of these states moves its video along with it.
_VIDEO_STATUS_OF_JOB_STATE = {"queued": "queued", "running": "processing", "failed": "failed"}

_JOB_COLUMNS = (
    "state", "step", "progress", "error", "plan_id", "attempts", "chunks_done", "chunks_total", "updated_at",
)  # fmt: skip
# Job columns come back prefixed (job_state...) and are nested under "job" by _nest_job().
_SELECT_VIDEOS = (
    "SELECT v.*, "
    + ", ".join(f"j.{column} AS job_{column}" for column in _JOB_COLUMNS)
    + " FROM videos v LEFT JOIN jobs j ON j.video_id = v.id"
)


def _json_or_null(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _nest_job(row: dict[str, Any]) -> dict[str, Any]:
    """A joined videos+jobs row -> the video dict with its ``job`` nested."""
    job = {c: row.pop(f"job_{c}") for c in _JOB_COLUMNS}
    row["renditions"] = json.loads(row["renditions"]) if row["renditions"] else []
    row["translate_to"] = json.loads(row["translate_to"]) if row.get("translate_to") else []
    # The subtitle record as its JSON (``pipelines.subtitles.record.SubtitleRecord.from_json``).
    row["subtitles"] = json.loads(row["subtitles"]) if row.get("subtitles") else {}
    row["storyboard"] = json.loads(row["storyboard"]) if row.get("storyboard") else None
    row["job"] = job if job["state"] is not None else None
    return row


def insert_video(
    cur: duckdb.DuckDBPyConnection,
    now: datetime,
    video_id: str,
    owner_id: str,
    title: str,
    description: str,
    visibility: str,
    source_key: str,
    source_bytes: int,
    translate_to: Sequence[str] = (),
) -> None:
    """Insert a queued video and its queued job, settle its upload reservation and record its
    ``video.created`` event (in ``cur``'s transaction: ``create_video``, and a resumable upload's
    last byte, ``catalog.uploads``)."""
    if visibility not in VISIBILITIES:
        raise BadRequest(f"visibility must be one of {', '.join(VISIBILITIES)}, not {visibility!r}")
    try:
        cur.execute(
            "INSERT INTO videos (id, owner_id, title, description, visibility, status, source_key,"
            " source_bytes, translate_to, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
            [video_id, owner_id, title, description, visibility, source_key, source_bytes]
            + [json.dumps(list(translate_to)), now, now],
        )
    except duckdb.ConstraintException as exc:
        raise Conflict(f"video {video_id!r} already exists") from exc
    cur.execute(
        "INSERT INTO jobs (video_id, state, step, progress, created_at, updated_at)"
        " VALUES (?, 'queued', 'queued', 0, ?, ?)",
        [video_id, now, now],
    )
    quotas.settle_upload(cur, now, video_id, owner_id)
    record_video_event(cur, now, "video.created", video_id)


class VideoMethods(CatalogDatabase):
    """Part of ``CatalogStore``: upload slots, videos and their jobs."""

    # -- upload slots (rules in catalog.quotas) ------------------------------------------------

    def reserve_upload(
        self, upload_id: str, owner_id: str, per_hour: int, in_flight: int
    ) -> tuple[str, int] | None:
        """Reserve an upload slot before the body is read; ``(reason, retry_after_s)`` if refused."""
        with self._writing() as cur:
            refusal = quotas.reserve_upload(cur, self._now(), upload_id, owner_id, per_hour, in_flight)
        return None if refusal is None else (refusal.reason, refusal.retry_after_s)

    def abandon_upload(self, upload_id: str) -> None:
        """The upload failed before its video existed: no longer in flight, still counted."""
        with self._writing() as cur:
            quotas.abandon_upload(cur, upload_id)

    # -- videos and jobs -------------------------------------------------------------------

    def create_video(
        self,
        video_id: str,
        owner_id: str,
        title: str,
        description: str,
        visibility: str,
        source_key: str,
        source_bytes: int,
        translate_to: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Insert a queued video and its queued job together; its upload reservation is settled.

        ``translate_to``: languages this upload asked for, on top of the configured ones."""
        now = self._now()
        try:
            with self._writing() as cur:
                insert_video(
                    cur, now, video_id, owner_id, title, description, visibility, source_key, source_bytes,
                    translate_to,
                )  # fmt: skip
        except Conflict:
            existing = self.get_video(video_id)
            if existing is None or (existing["owner_id"], existing["source_key"], existing["title"]) != (
                owner_id, source_key, title,
            ):  # fmt: skip
                raise
            return existing  # this very call, made again after it committed
        video = self.get_video(video_id)
        assert video is not None
        return video

    def get_video(self, video_id: str) -> dict[str, Any] | None:
        with self._reading() as cur:
            rows = dict_rows(cur.execute(f"{_SELECT_VIDEOS} WHERE v.id = ?", [video_id]))
        return _nest_job(rows[0]) if rows else None

    def list_videos(self, viewer_id: str | None, limit: int, offset: int) -> dict[str, Any]:
        """The viewer's own videos and everyone's public ones, newest first (``None``: public only)."""
        if limit < 0 or offset < 0:
            raise BadRequest("limit and offset must not be negative")
        with self._reading() as cur:
            cur.begin()  # one snapshot, so the page and the total agree
            rows = dict_rows(
                cur.execute(
                    f"{_SELECT_VIDEOS} WHERE {VISIBLE_TO_SQL} ORDER BY v.created_at DESC, v.id DESC"
                    " LIMIT ? OFFSET ?",
                    [viewer_id, limit, offset],
                )
            )
            total = cur.execute(
                f"SELECT count(*) FROM videos v WHERE {VISIBLE_TO_SQL}", [viewer_id]
            ).fetchone()
            cur.commit()
        return {"items": [_nest_job(row) for row in rows], "total": total[0] if total else 0}

    def list_recent_videos(self, limit: int) -> list[dict[str, Any]]:
        """Every user's newest videos, for operators (``vodray status``); not for the API."""
        with self._reading() as cur:
            rows = dict_rows(
                cur.execute(f"{_SELECT_VIDEOS} ORDER BY v.created_at DESC, v.id DESC LIMIT ?", [limit])
            )
        return [_nest_job(row) for row in rows]

    def cue_languages(self) -> dict[str, dict[str, str]]:
        """Every ready video's cue languages, each with the language it was translated from
        (itself for an original track): what a backfill looks at."""
        with self._reading() as cur:
            rows = cur.execute(
                "SELECT c.video_id, c.lang, any_value(c.source_lang) FROM cues c"
                " JOIN videos v ON v.id = c.video_id WHERE v.status = 'ready'"
                " GROUP BY c.video_id, c.lang ORDER BY c.video_id, c.lang"
            ).fetchall()
        found: dict[str, dict[str, str]] = {}
        for video_id, lang, source_lang in rows:
            found.setdefault(video_id, {})[lang] = source_lang
        return found

    def count_uploads_since(self, owner_id: str, since: datetime) -> int:
        with self._reading() as cur:
            row = cur.execute(
                "SELECT count(*) FROM videos WHERE owner_id = ? AND created_at >= ?",
                [owner_id, to_db(since)],
            ).fetchone()
        return row[0] if row else 0

    def update_job(
        self,
        video_id: str,
        *,
        state: str | None = None,
        step: str | None = None,
        progress: float | None = None,
        error: str | None = None,
        plan_id: str | None = None,
        attempts: int | None = None,
        chunks_done: int | None = None,
        chunks_total: int | None = None,
    ) -> None:
        """Change only the fields given. A job (re)entering queued/running drops the old error."""
        if state is not None and state not in JOB_STATES:
            raise ValueError(f"job state must be one of {JOB_STATES}, not {state!r}")
        if progress is not None:
            progress = min(max(float(progress), 0.0), 1.0)  # display only: never show 101 %
        given = {
            "state": state, "step": step, "progress": progress, "plan_id": plan_id, "attempts": attempts,
            "chunks_done": chunks_done, "chunks_total": chunks_total,
        }  # fmt: skip
        changes: dict[str, Any] = {column: value for column, value in given.items() if value is not None}
        if error is not None:
            changes["error"] = error
        elif state in ("queued", "running"):
            changes["error"] = None
        now = self._now()
        video_status = _VIDEO_STATUS_OF_JOB_STATE.get(state or "")
        with self._writing() as cur:
            was = status_of(cur, video_id)
            update_columns(cur, "jobs", "video_id", video_id, {**changes, "updated_at": now})
            if video_status is not None:
                video_changes = {"status": video_status, "updated_at": now}
                if "error" in changes:
                    video_changes["error"] = changes["error"]
                update_columns(cur, "videos", "id", video_id, video_changes)
                mark_dirty(cur, [video_id])  # in search only while ready
                if video_status == "failed" and was != "failed":
                    record_video_event(cur, now, "video.failed", video_id)

    def mark_ready(
        self,
        video_id: str,
        *,
        duration_s: float,
        width: int,
        height: int,
        renditions: list[dict[str, Any]],
        has_audio: bool,
        media_bytes: int,
        storyboard: dict[str, Any] | None = None,
    ) -> None:
        """``storyboard``: the grid of the seek-bar previews published with it, None for none."""
        now = self._now()
        with self._writing() as cur:
            was = status_of(cur, video_id)
            cur.execute(
                "UPDATE videos SET status = 'ready', duration_s = ?, width = ?, height = ?, renditions = ?,"
                " has_audio = ?, media_bytes = ?, storyboard = ?, error = NULL, updated_at = ?, ready_at = ?"
                " WHERE id = ?",
                [duration_s, width, height, json.dumps(renditions), has_audio, media_bytes]
                + [_json_or_null(storyboard), now, now, video_id],
            )
            cur.execute(
                "UPDATE jobs SET state = 'done', step = 'done', progress = 1, error = NULL, updated_at = ?"
                " WHERE video_id = ?",
                [now, video_id],
            )
            mark_dirty(cur, [video_id])  # searchable the moment this returns
            if was != "ready":
                record_video_event(cur, now, "video.ready", video_id)

    def set_storyboard(self, video_id: str, storyboard: dict[str, Any]) -> bool:
        """A ready video's storyboard, published after it turned ready (a backfill); False if
        the video is gone or not ready (deleted meanwhile: nothing to record)."""
        with self._writing() as cur:
            found = cur.execute(
                "UPDATE videos SET storyboard = ? WHERE id = ? AND status = 'ready' RETURNING id",
                [json.dumps(storyboard), video_id],
            ).fetchall()
        return bool(found)

    def storyboard_candidates(self) -> list[dict[str, Any]]:
        """Every ready video, oldest first, with what a storyboard backfill needs: ``id``,
        ``duration_s``, ``width``, ``height`` and ``has_storyboard``."""
        with self._reading() as cur:
            return dict_rows(
                cur.execute(
                    "SELECT id, duration_s, width, height, storyboard IS NOT NULL AS has_storyboard"
                    " FROM videos WHERE status = 'ready' ORDER BY created_at, id"
                )
            )

    def mark_failed(self, video_id: str, error: str) -> None:
        """Fail the job and the video with the same reason; the step it failed at is kept."""
        now = self._now()
        with self._writing() as cur:
            was = status_of(cur, video_id)
            cur.execute(
                "UPDATE videos SET status = 'failed', error = ?, updated_at = ? WHERE id = ?",
                [error, now, video_id],
            )
            cur.execute(
                "UPDATE jobs SET state = 'failed', error = ?, updated_at = ? WHERE video_id = ?",
                [error, now, video_id],
            )
            mark_dirty(cur, [video_id])
            if was not in (None, "failed"):
                record_video_event(cur, now, "video.failed", video_id)

    def unfinished_jobs(self) -> list[str]:
        """Ids of videos whose job is queued or running, oldest first: the dispatcher's resume list."""
        with self._reading() as cur:
            rows = cur.execute(
                "SELECT video_id FROM jobs WHERE state IN ('queued', 'running') ORDER BY created_at, video_id"
            ).fetchall()
        return [row[0] for row in rows]

    def delete_video(self, video_id: str) -> bool:
        """Remove the video and everything keyed by it; False if there was no such video."""
        with self._writing() as cur:
            last = snapshot_video(cur, video_id)  # what its video.deleted event shows
            cur.execute("DELETE FROM jobs WHERE video_id = ?", [video_id])
            delete_video_search(cur, video_id)
            deleted = cur.execute("DELETE FROM videos WHERE id = ?", [video_id]).fetchone()
            if last is not None:
                record_event(cur, self._now(), "video.deleted", last)
        return bool(deleted and deleted[0])
