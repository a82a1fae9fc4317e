"""Resumable uploads (tus 1.0) from creation until they become a video, are terminated or expire.

The row is the upload's truth for every API replica: ``received`` counts the bytes stored for
good, and ``storage`` says where they are (``cluster.resumable`` writes and reads it: an S3
multipart upload's id and its parts). Storage may hold more than ``received`` (a PATCH cut off
before its bytes were recorded, a chunk whose checksum failed); what is past ``received`` is
never read and is overwritten by the next PATCH.

Progress is recorded by compare-and-set on ``received``, so a writer that lost its lease (a
stalled PATCH whose turn another request took) cannot move an upload backwards or sideways.
The upload slot is reserved in the same transaction as the row (``catalog.quotas``), and given
back (abandoned) in the same transaction as the row goes. The last byte makes the video and its
job in one transaction with marking the row finished, so a retried finish never makes two.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from catalog import quotas
from catalog.database import dict_rows, to_db
from catalog.videos import VideoMethods, insert_video
from cluster.errors import Conflict, NotFound


def _parsed(row: dict[str, Any]) -> dict[str, Any]:
    row["fields"] = json.loads(row["fields"])
    row["storage"] = json.loads(row["storage"]) if row["storage"] else {}
    return row


class UploadMethods(VideoMethods):
    """Part of ``CatalogStore``: rows of the ``uploads`` table."""

    def create_upload(
        self,
        upload_id: str,
        owner_id: str,
        length: int,
        fields: Mapping[str, Any],
        metadata: str,
        expires_at: datetime,
        *,
        per_hour: int,
        in_flight: int,
    ) -> tuple[str, int] | dict[str, Any]:
        """Reserve an upload slot and record the upload, in one transaction; the new row, or
        ``(reason, retry_after_s)`` if a limit refused it (nothing is recorded then). The same
        call made again (``catalog.client``, across a catalog restart) answers the row it made."""
        now = self._now()
        made = self.get_upload(upload_id)
        if made is not None and made["owner_id"] == owner_id and made["length"] == length:
            return made
        with self._writing() as cur:
            refusal = quotas.reserve_upload(cur, now, upload_id, owner_id, per_hour, in_flight)
            if refusal is not None:
                return refusal.reason, refusal.retry_after_s
            cur.execute(
                "INSERT INTO uploads (id, owner_id, length, received, fields, metadata, storage,"
                " created_at, updated_at, expires_at) VALUES (?, ?, ?, 0, ?, ?, '{}', ?, ?, ?)",
                [upload_id, owner_id, length, json.dumps(dict(fields)), metadata, now, now]
                + [to_db(expires_at)],
            )
        row = self.get_upload(upload_id)
        assert row is not None
        return row

    def get_upload(self, upload_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM uploads WHERE id = ?", [upload_id])
        return None if row is None else _parsed(row)

    def record_upload_progress(
        self,
        upload_id: str,
        expected_received: int,
        received: int,
        storage: Mapping[str, Any],
        expires_at: datetime,
    ) -> bool:
        """Move ``received`` forward from ``expected_received``, with where the bytes now are; False
        (nothing changed) if the upload is gone, finished, no longer at ``expected_received``, or
        ``received`` is behind it or past the length. True, changing nothing, if it is at
        ``received`` with ``storage`` already: this very call, made again after it committed."""
        with self._writing() as cur:
            done = cur.execute(
                "SELECT received = ? AND storage = ? AND finished_at IS NULL FROM uploads WHERE id = ?",
                [received, json.dumps(dict(storage)), upload_id],
            ).fetchone()
            if done is not None and done[0] and received != expected_received:
                return True
            row = cur.execute(
                "UPDATE uploads SET received = ?, storage = ?, updated_at = ?, expires_at = ?"
                " WHERE id = ? AND received = ? AND finished_at IS NULL AND ? BETWEEN received AND length"
                " RETURNING id",
                [received, json.dumps(dict(storage)), self._now(), to_db(expires_at)]
                + [upload_id, expected_received, received],
            ).fetchone()
        return row is not None

    def finish_upload(self, upload_id: str, source_key: str, expires_at: datetime) -> dict[str, Any]:
        """Every byte is in ``source_key``: make the queued video (and job) from the upload's
        fields, in one transaction with marking it finished. Idempotent: a finished upload's
        video is returned as it is. The row stays until ``expires_at``, for a client that lost
        the answer to learn the video's id from a HEAD."""
        now = self._now()
        with self._writing() as cur:
            found = dict_rows(cur.execute("SELECT * FROM uploads WHERE id = ?", [upload_id]))
            if not found:
                raise NotFound(f"no upload with id {upload_id!r}")
            row = _parsed(found[0])
            if row["finished_at"] is None:
                if row["received"] != row["length"]:
                    raise Conflict(f"upload {upload_id} has {row['received']} of {row['length']} bytes")
                fields = row["fields"]
                insert_video(
                    cur, now, upload_id, row["owner_id"], fields["title"], fields["description"],
                    fields["visibility"], source_key, row["length"], fields.get("translate_to", ()),
                )  # fmt: skip
                cur.execute(
                    "UPDATE uploads SET finished_at = ?, updated_at = ?, expires_at = ? WHERE id = ?",
                    [now, now, to_db(expires_at), upload_id],
                )
        video = self.get_video(upload_id)
        if video is None:  # finished, then the video was deleted
            raise NotFound(f"upload {upload_id} became a video that has since been deleted")
        return dict(video)

    def drop_upload(self, upload_id: str, *, expired_before: datetime | None = None) -> bool:
        """Remove the upload's row (termination, expiry); an unfinished upload's slot is given
        back (its reservation is abandoned: no longer in flight, still counted in the hour).
        With ``expired_before``, only if it still expires before then (a PATCH may have just
        renewed it). False if nothing was removed."""
        with self._writing() as cur:
            condition, params = "", []
            if expired_before is not None:
                condition, params = " AND expires_at < ?", [to_db(expired_before)]
            row = cur.execute(
                f"DELETE FROM uploads WHERE id = ?{condition} RETURNING finished_at", [upload_id, *params]
            ).fetchone()
            if row is not None and row[0] is None:
                quotas.abandon_upload(cur, upload_id)
        return row is not None

    def expired_uploads(self, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
        """Uploads whose time ran out before ``now``, oldest first (for the sweeper)."""
        with self._reading() as cur:
            rows = dict_rows(
                cur.execute(
                    "SELECT * FROM uploads WHERE expires_at < ? ORDER BY expires_at LIMIT ?",
                    [to_db(now), limit],
                )
            )
        return [_parsed(row) for row in rows]

    def uploads_of(self, owner_id: str) -> list[dict[str, Any]]:
        """An owner's uploads, newest first (for operators and tests)."""
        with self._reading() as cur:
            rows = dict_rows(
                cur.execute("SELECT * FROM uploads WHERE owner_id = ? ORDER BY created_at DESC", [owner_id])
            )
        return [_parsed(row) for row in rows]
