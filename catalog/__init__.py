"""The catalog: users, logins, upload and login limits, videos, jobs, cues and search in one
DuckDB file behind one actor.

Import from here; ``catalog.schema`` and the store's helpers may change freely.
"""

from __future__ import annotations

from catalog.actor import CATALOG_ACTOR, CatalogActor, get_catalog, start_catalog
from catalog.query import parse_query
from catalog.schema import SCHEMA_VERSION
from catalog.sessions import RefreshStatus
from catalog.snapshots import list_snapshots
from catalog.store import CatalogStore
from catalog.videos import JOB_STATES
from catalog.visibility import VISIBILITIES

__all__ = [
    "CATALOG_ACTOR",
    "JOB_STATES",
    "SCHEMA_VERSION",
    "VISIBILITIES",
    "CatalogActor",
    "CatalogStore",
    "RefreshStatus",
    "get_catalog",
    "list_snapshots",
    "parse_query",
    "start_catalog",
]
