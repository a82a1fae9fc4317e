"""The catalog over one DuckDB file: users, refresh tokens, videos and their jobs.

Synchronous and thread-safe: the catalog actor calls it from up to 16 threads. Each call
takes its own cursor (a DuckDB connection of its own to the same database). Writes also
take one lock: DuckDB's optimistic concurrency fails the second of two transactions that
touch the same row (a progress update racing ``mark_failed``), and a single writer that
waits is simpler than retrying. Reads never wait for it.

Every method returns plain Python (dicts, lists, str, int, float, bool, aware UTC datetimes),
so results pickle out of the actor unchanged.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from catalog import quotas, sessions
from catalog.cues import CueMethods, delete_video_search
from catalog.schema import migrate
from catalog.search_index import index_video_text
from catalog.sessions import RefreshStatus
from catalog.snapshots import SnapshotMethods
from catalog.visibility import VISIBLE_TO_SQL
from cluster.errors import BadRequest, Conflict
from cluster.settings import private_dir

VISIBILITIES = ("public", "private")
JOB_STATES = ("queued", "running", "done", "failed")
# Moving a job to one of these states moves its video along with it.
_VIDEO_STATUS_OF_JOB_STATE = {"queued": "queued", "running": "processing", "failed": "failed"}

_JOB_COLUMNS = (
    "state", "step", "progress", "error", "plan_id", "attempts", "chunks_done", "chunks_total", "updated_at",
)  # fmt: skip
# Job columns come back prefixed (job_state...) and are nested under "job" by _video().
_SELECT_VIDEOS = (
    "SELECT v.*, "
    + ", ".join(f"j.{column} AS job_{column}" for column in _JOB_COLUMNS)
    + " FROM videos v LEFT JOIN jobs j ON j.video_id = v.id"
)
_VISIBLE_TO = VISIBLE_TO_SQL


def utc_now() -> datetime:
    return datetime.now(UTC)


def _to_db(moment: datetime) -> datetime:
    """Aware -> naive UTC, as stored; a naive value is taken to be UTC already."""
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def _from_db(value: Any) -> Any:
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) else value


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [column[0] for column in cursor.description or ()]
    return [{n: _from_db(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()]


def _video(row: dict[str, Any]) -> dict[str, Any]:
    """A joined videos+jobs row -> the video dict with its ``job`` nested."""
    job = {c: row.pop(f"job_{c}") for c in _JOB_COLUMNS}
    row["renditions"] = json.loads(row["renditions"]) if row["renditions"] else []
    row["translate_to"] = json.loads(row["translate_to"]) if row.get("translate_to") else []
    row["job"] = job if job["state"] is not None else None
    return row


def _update(
    cur: duckdb.DuckDBPyConnection, table: str, key: str, value: str, changes: dict[str, Any]
) -> None:
    # Table and column names are the store's own constants, never a caller's text.
    assignments = ", ".join(f"{column} = ?" for column in changes)
    cur.execute(f"UPDATE {table} SET {assignments} WHERE {key} = ?", [*changes.values(), value])


class CatalogStore(CueMethods, SnapshotMethods):
    """One DuckDB database file; ``clock`` exists so tests can move time."""

    def __init__(self, path: Path | str, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.path = Path(path)
        self._clock = clock
        # It holds password hashes and refresh tokens: owner-only, the folder too if made here.
        # (DuckDB refuses an empty file, so it cannot be made 0600 beforehand; the catalog
        # actor's process runs with umask 077, which also covers each new .wal file.)
        private_dir(self.path.parent)
        self._db = duckdb.connect(str(self.path))
        self.path.chmod(0o600)
        self._write_lock = threading.Lock()
        try:
            with self._db.cursor() as cursor:
                migrate(cursor)
        except BaseException:
            self._db.close()  # release the file lock: another process may want to open it
            raise

    def close(self) -> None:
        self.wait_for_compaction()
        self._db.close()

    def _now(self) -> datetime:
        return _to_db(self._clock())

    @contextmanager
    def _reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._db.cursor() as cursor:
            yield cursor

    @contextmanager
    def _writing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction under the write lock: all its statements land, or none."""
        with self._write_lock, self._db.cursor() as cursor:
            cursor.begin()
            try:
                yield cursor
            except BaseException:
                cursor.rollback()
                raise
            cursor.commit()

    def ping(self) -> bool:
        with self._reading() as cur:
            return cur.execute("SELECT 1").fetchone() == (1,)

    # -- users ---------------------------------------------------------------------------

    def create_user(self, username: str, password_hash: str) -> dict[str, Any]:
        user_id = uuid.uuid4().hex
        try:
            with self._writing() as cur:
                cur.execute(
                    "INSERT INTO users VALUES (?, ?, ?, ?)", [user_id, username, password_hash, self._now()]
                )
        except duckdb.ConstraintException as exc:
            raise Conflict(f"username {username!r} is taken") from exc
        user = self.get_user(user_id)
        assert user is not None
        return user

    def get_user(self, user_id: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM users WHERE id = ?", [user_id])

    def get_user_by_name(self, username: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM users WHERE username = ?", [username])

    def _one(self, sql: str, params: list[Any]) -> dict[str, Any] | None:
        with self._reading() as cur:
            rows = _dicts(cur.execute(sql, params))
        return rows[0] if rows else None

    # -- logins and refresh tokens (rules in catalog.sessions) --------------------------------

    def start_session(
        self, family_id: str, user_id: str, session_expires_at: datetime, jti: str, token_expires_at: datetime
    ) -> None:
        """Record a new login that ends at ``session_expires_at``, and its first refresh token."""
        with self._writing() as cur:
            sessions.start(
                cur,
                self._now(),
                family_id,
                user_id,
                _to_db(session_expires_at),
                jti,
                _to_db(token_expires_at),
            )

    def rotate_refresh_token(
        self, jti: str, family_id: str, user_id: str, new_jti: str, new_expires_at: datetime
    ) -> tuple[RefreshStatus, datetime | None]:
        """Use a refresh token once and record its successor, in one transaction.

        Returns ``("ok", successor's expiry)`` or the reason it was refused; a token used
        twice revokes its whole login.
        """
        with self._writing() as cur:
            status, expires_at = sessions.rotate(
                cur, self._now(), jti, family_id, user_id, new_jti, _to_db(new_expires_at)
            )
        return status, _from_db(expires_at)

    def revoke_family(self, family_id: str, user_id: str | None = None) -> bool:
        """End one login (only ``user_id``'s, when given); False if it was not open."""
        with self._writing() as cur:
            return sessions.revoke(cur, self._now(), family_id, user_id)

    def change_password(self, user_id: str, password_hash: str) -> int:
        """Set a new password hash and end every login of the user, together; returns logins ended."""
        with self._writing() as cur:
            cur.execute("UPDATE users SET password_hash = ? WHERE id = ?", [password_hash, user_id])
            return sessions.revoke_all(cur, self._now(), user_id)

    def refresh_tokens_of(self, family_id: str) -> list[dict[str, Any]]:
        """Every refresh token of one login, oldest expiry first (for operators and tests)."""
        with self._reading() as cur:
            return _dicts(
                cur.execute(
                    "SELECT * FROM refresh_tokens WHERE family_id = ? ORDER BY expires_at, jti", [family_id]
                )
            )

    # -- limits (rules in catalog.quotas) ------------------------------------------------

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

    def take_auth_attempts(
        self, keys: list[tuple[str, str, int]], window_s: int
    ) -> tuple[str, int] | list[str]:
        """An attempt under every ``(scope, key, limit)``: their ids, or ``(reason, retry_after_s)``."""
        with self._writing() as cur:
            taken = quotas.take_attempts(cur, self._now(), timedelta(seconds=window_s), keys)
        return (taken.reason, taken.retry_after_s) if isinstance(taken, quotas.Refusal) else taken

    def release_auth_attempts(self, attempt_ids: list[str]) -> None:
        with self._writing() as cur:
            quotas.release_attempts(cur, attempt_ids)

    # -- videos and jobs -----------------------------------------------------------------

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
        if visibility not in VISIBILITIES:
            raise BadRequest(f"visibility must be one of {', '.join(VISIBILITIES)}, not {visibility!r}")
        now = self._now()
        try:
            with self._writing() as cur:
                cur.execute(
                    "INSERT INTO videos (id, owner_id, title, description, visibility, status, source_key,"
                    " source_bytes, translate_to, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
                    [video_id, owner_id, title, description, visibility, source_key, source_bytes]
                    + [json.dumps(list(translate_to)), now, now],
                )
                index_video_text(cur, video_id, title, description)
                cur.execute(
                    "INSERT INTO jobs (video_id, state, step, progress, created_at, updated_at)"
                    " VALUES (?, 'queued', 'queued', 0, ?, ?)",
                    [video_id, now, now],
                )
                quotas.settle_upload(cur, now, video_id, owner_id)
        except duckdb.ConstraintException as exc:
            raise Conflict(f"video {video_id!r} already exists") from exc
        video = self.get_video(video_id)
        assert video is not None
        return video

    def get_video(self, video_id: str) -> dict[str, Any] | None:
        with self._reading() as cur:
            rows = _dicts(cur.execute(f"{_SELECT_VIDEOS} WHERE v.id = ?", [video_id]))
        return _video(rows[0]) if rows else None

    def list_videos(self, viewer_id: str | None, limit: int, offset: int) -> dict[str, Any]:
        """The viewer's own videos and everyone's public ones, newest first (``None``: public only)."""
        if limit < 0 or offset < 0:
            raise BadRequest("limit and offset must not be negative")
        with self._reading() as cur:
            cur.begin()  # one snapshot, so the page and the total agree
            rows = _dicts(
                cur.execute(
                    f"{_SELECT_VIDEOS} WHERE {_VISIBLE_TO} ORDER BY v.created_at DESC, v.id DESC"
                    " LIMIT ? OFFSET ?",
                    [viewer_id, limit, offset],
                )
            )
            total = cur.execute(f"SELECT count(*) FROM videos v WHERE {_VISIBLE_TO}", [viewer_id]).fetchone()
            cur.commit()
        return {"items": [_video(row) for row in rows], "total": total[0] if total else 0}

    def list_recent_videos(self, limit: int) -> list[dict[str, Any]]:
        """Every user's newest videos, for operators (``vodray status``); not for the API."""
        with self._reading() as cur:
            rows = _dicts(
                cur.execute(f"{_SELECT_VIDEOS} ORDER BY v.created_at DESC, v.id DESC LIMIT ?", [limit])
            )
        return [_video(row) for row in rows]

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
                [owner_id, _to_db(since)],
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
            _update(cur, "jobs", "video_id", video_id, {**changes, "updated_at": now})
            if video_status is not None:
                video_changes = {"status": video_status, "updated_at": now}
                if "error" in changes:
                    video_changes["error"] = changes["error"]
                _update(cur, "videos", "id", video_id, video_changes)

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
    ) -> None:
        now = self._now()
        with self._writing() as cur:
            cur.execute(
                "UPDATE videos SET status = 'ready', duration_s = ?, width = ?, height = ?, renditions = ?,"
                " has_audio = ?, media_bytes = ?, error = NULL, updated_at = ?, ready_at = ? WHERE id = ?",
                [duration_s, width, height, json.dumps(renditions), has_audio, media_bytes]
                + [now, now, video_id],
            )
            cur.execute(
                "UPDATE jobs SET state = 'done', step = 'done', progress = 1, error = NULL, updated_at = ?"
                " WHERE video_id = ?",
                [now, video_id],
            )

    def mark_failed(self, video_id: str, error: str) -> None:
        """Fail the job and the video with the same reason; the step it failed at is kept."""
        now = self._now()
        with self._writing() as cur:
            cur.execute(
                "UPDATE videos SET status = 'failed', error = ?, updated_at = ? WHERE id = ?",
                [error, now, video_id],
            )
            cur.execute(
                "UPDATE jobs SET state = 'failed', error = ?, updated_at = ? WHERE video_id = ?",
                [error, now, video_id],
            )

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
            cur.execute("DELETE FROM jobs WHERE video_id = ?", [video_id])
            delete_video_search(cur, video_id)
            deleted = cur.execute("DELETE FROM videos WHERE id = ?", [video_id]).fetchone()
        return bool(deleted and deleted[0])
