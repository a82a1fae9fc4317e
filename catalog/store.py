"""The catalog store: every table of the catalog's one DuckDB file, behind one class.

It is put together from one class per domain, all over the same connection and write lock
(``catalog.database``): users and logins (``catalog.users``), videos and jobs
(``catalog.videos``), cues and search (``catalog.cues``), Parquet snapshots
(``catalog.snapshots``). The catalog actor is this class, so its methods are the actor's.
"""

from __future__ import annotations

from catalog.cues import CueMethods
from catalog.snapshots import SnapshotMethods
from catalog.users import UserMethods
from catalog.videos import VideoMethods


class CatalogStore(UserMethods, VideoMethods, CueMethods, SnapshotMethods):
    """One DuckDB database file; ``clock`` exists so tests can move time."""

    def close(self) -> None:
        self.wait_for_compaction()
        super().close()
