"""The catalog store: every table of the catalog's one DuckDB file, behind one class.

It is put together from one class per domain, all over the same connection and write lock
(``catalog.database``): users and logins (``catalog.users``), videos and jobs
(``catalog.videos``), resumable uploads (``catalog.uploads``), cues and search
(``catalog.cues``; the index is Tantivy beside the file, brought in step inside every write
transaction, just before it commits), Parquet snapshots (``catalog.snapshots``), the outbox
of events and their deliveries (``catalog.outbox``), webhook endpoints (``catalog.webhooks``) and email
addresses (``catalog.mailing``). The catalog actor is this class, so its methods are the
actor's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb

from catalog.cues import CueMethods
from catalog.database import utc_now
from catalog.mailing import MailingMethods
from catalog.outbox import OutboxMethods
from catalog.snapshots import SnapshotMethods
from catalog.uploads import UploadMethods
from catalog.users import UserMethods
from catalog.videos import VideoMethods
from catalog.webhooks import WebhookMethods


class CatalogStore(
    UserMethods,
    UploadMethods,
    VideoMethods,
    OutboxMethods,
    WebhookMethods,
    MailingMethods,
    CueMethods,
    SnapshotMethods,
):
    """One DuckDB database file; ``clock`` exists so tests can move time."""

    def __init__(self, path: Path | str, *, clock: Callable[[], datetime] = utc_now) -> None:
        super().__init__(path, clock=clock)
        try:  # the search index beside the file is opened (or rebuilt) before anyone is answered
            self._open_search()
        except BaseException:
            self._close_search()  # release the index's writer lock as well as the file's
            super().close()
            raise

    def _before_commit(self, cursor: duckdb.DuckDBPyConnection) -> None:
        self._reindex_dirty(cursor)

    def _after_failed_commit(self) -> None:
        self._reindex_committed()

    def close(self) -> None:
        self._close_search()
        super().close()
