"""The core of the catalog store: one DuckDB file, migrated on open, a cursor per call, one writer.

Synchronous and thread-safe: the catalog actor calls it from up to 16 threads. Each call
takes its own cursor (a DuckDB connection of its own to the same database). Writes also
take one lock: DuckDB's optimistic concurrency fails the second of two transactions that
touch the same row (a progress update racing ``mark_failed``), and a single writer that
waits is simpler than retrying. Reads never wait for it.

Every method of the store returns plain Python (dicts, lists, str, int, float, bool, aware UTC
datetimes), so results pickle out of the actor unchanged. Times are stored as naive UTC.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from catalog.schema import migrate
from cluster.settings import private_dir


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_db(moment: datetime) -> datetime:
    """Aware -> naive UTC, as stored; a naive value is taken to be UTC already."""
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def from_db(value: Any) -> Any:
    """A stored naive UTC datetime -> aware; any other value unchanged."""
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) else value


def dict_rows(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The rows of the statement just executed, as dicts with aware datetimes."""
    names = [column[0] for column in cursor.description or ()]
    return [{n: from_db(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()]


def update_columns(
    cur: duckdb.DuckDBPyConnection, table: str, key: str, value: str, changes: dict[str, Any]
) -> None:
    """``UPDATE table SET changes WHERE key = value``."""
    # Table and column names are the store's own constants, never a caller's text.
    assignments = ", ".join(f"{column} = ?" for column in changes)
    cur.execute(f"UPDATE {table} SET {assignments} WHERE {key} = ?", [*changes.values(), value])


class CatalogDatabase:
    """One DuckDB database file; ``clock`` exists so tests can move time.

    The domain classes (``catalog.users``, ``catalog.videos``) build on it; ``CatalogStore``
    puts them together.
    """

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
        self._db.close()

    def _now(self) -> datetime:
        return to_db(self._clock())

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
                self._before_commit(cursor)
            except BaseException:
                cursor.rollback()
                raise
            try:
                self._commit(cursor)
            except BaseException:
                self._after_failed_commit()
                raise
            self._after_write(cursor)

    def _commit(self, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.commit()

    def _before_commit(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """Run last inside each write transaction, under the write lock: the search index takes
        the change here (``CatalogStore``), so no reader sees a change in the tables before
        search has it (a video ready in its metadata is found by a search made next)."""

    def _after_failed_commit(self) -> None:
        """The commit failed after ``_before_commit``: undo what it did outside the database."""

    def _after_write(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """Run after each write transaction commits, still under the write lock."""

    def _one(self, sql: str, params: list[Any]) -> dict[str, Any] | None:
        with self._reading() as cur:
            rows = dict_rows(cur.execute(sql, params))
        return rows[0] if rows else None

    def ping(self) -> bool:
        with self._reading() as cur:
            return cur.execute("SELECT 1").fetchone() == (1,)
