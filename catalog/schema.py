"""The catalog's DDL, as numbered migrations applied once each in order.

A database records the number of migrations it has seen in ``schema_version``; opening it
applies the missing ones in one transaction. A later issue adds a table (cues, the search
index) by appending a migration, never by editing one that has shipped.

Conventions: timestamps are ``TIMESTAMP`` holding naive UTC (DuckDB hands ``TIMESTAMPTZ``
back through pytz, which vodray does not depend on); the store attaches UTC on the way out.
There are no foreign keys: DuckDB checks them eagerly and turns some updates of referenced
rows into spurious violations, and the store deletes children itself.
"""

from __future__ import annotations

import duckdb

from cluster.errors import ServerError

_V1 = """
CREATE TABLE users (
    id            VARCHAR PRIMARY KEY,
    username      VARCHAR NOT NULL UNIQUE,
    password_hash VARCHAR NOT NULL,
    created_at    TIMESTAMP NOT NULL
);

CREATE TABLE refresh_tokens (
    jti        VARCHAR PRIMARY KEY,
    user_id    VARCHAR NOT NULL,
    family_id  VARCHAR NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE videos (
    id           VARCHAR PRIMARY KEY,
    owner_id     VARCHAR NOT NULL,
    title        VARCHAR NOT NULL,
    description  VARCHAR NOT NULL DEFAULT '',
    visibility   VARCHAR NOT NULL CHECK (visibility IN ('public', 'private')),
    status       VARCHAR NOT NULL,
    source_key   VARCHAR NOT NULL,
    source_bytes BIGINT NOT NULL,
    duration_s   DOUBLE,
    width        INTEGER,
    height       INTEGER,
    renditions   JSON NOT NULL DEFAULT '[]',
    has_audio    BOOLEAN,
    media_bytes  BIGINT,
    error        VARCHAR,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    ready_at     TIMESTAMP
);
CREATE INDEX videos_owner_created ON videos (owner_id, created_at);

-- One job per video; its row is what the dispatcher resumes from after a restart.
CREATE TABLE jobs (
    video_id   VARCHAR PRIMARY KEY,
    state      VARCHAR NOT NULL,
    step       VARCHAR NOT NULL,
    progress   DOUBLE NOT NULL DEFAULT 0,
    error      VARCHAR,
    plan_id    VARCHAR,
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
"""

# Limits that hold under concurrency, and logins with an end. Each is checked and recorded in
# one transaction of the single writer, so racing requests cannot all slip under a limit.
_V2 = """
-- One row per login (a refresh-token family): its absolute end, and whether it was revoked.
CREATE TABLE sessions (
    family_id  VARCHAR PRIMARY KEY,
    user_id    VARCHAR NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX sessions_user ON sessions (user_id);
INSERT INTO sessions
    SELECT family_id, any_value(user_id), max(expires_at), max(revoked_at)
    FROM refresh_tokens GROUP BY family_id;

-- The ledger of upload starts: reserved before the body is read, kept when the video is
-- deleted or fails, so the hourly limit counts every upload a user started.
CREATE TABLE upload_reservations (
    id         VARCHAR PRIMARY KEY,
    owner_id   VARCHAR NOT NULL,
    started_at TIMESTAMP NOT NULL,
    state      VARCHAR NOT NULL CHECK (state IN ('streaming', 'created', 'abandoned'))
);
CREATE INDEX upload_reservations_owner ON upload_reservations (owner_id, started_at);
INSERT INTO upload_reservations SELECT id, owner_id, created_at, 'created' FROM videos;

-- Login and registration attempts per username and per client address, in a sliding window.
CREATE TABLE auth_attempts (
    id    VARCHAR PRIMARY KEY,
    scope VARCHAR NOT NULL,
    key   VARCHAR NOT NULL,
    tried_at TIMESTAMP NOT NULL
);
CREATE INDEX auth_attempts_key ON auth_attempts (scope, key);
"""

_JOB_CHUNKS = """
-- Encode progress a person can read: chunks finished of the chunks the plan has.
ALTER TABLE jobs ADD COLUMN chunks_done INTEGER DEFAULT 0;
ALTER TABLE jobs ADD COLUMN chunks_total INTEGER DEFAULT 0;
"""


# Subtitle cues (original and translated) and the search index derived from them and from
# titles and descriptions (catalog.search.index keeps it in step; catalog.search reads it).
_CUES_AND_SEARCH = """
-- doc_id is the cue's search document: a page of hits fetches its cues through cues_doc.
CREATE TABLE cues (
    doc_id      BIGINT NOT NULL,
    video_id    VARCHAR NOT NULL,
    lang        VARCHAR NOT NULL,
    source_lang VARCHAR NOT NULL,
    idx         INTEGER NOT NULL,
    start_s     DOUBLE NOT NULL,
    end_s       DOUBLE NOT NULL,
    text        VARCHAR NOT NULL
);
CREATE INDEX cues_doc ON cues (doc_id);

-- One row per searchable text: a video's title, its description, or one cue.
CREATE SEQUENCE search_doc_ids;
CREATE TABLE search_docs (
    doc_id   BIGINT NOT NULL,
    video_id VARCHAR NOT NULL,
    field    VARCHAR NOT NULL,
    lang     VARCHAR,
    idx      INTEGER,
    length   INTEGER NOT NULL
);

-- Every term ever indexed; df counts the documents that hold it now.
CREATE SEQUENCE search_term_ids;
CREATE TABLE search_terms (
    term    VARCHAR PRIMARY KEY,
    term_id INTEGER NOT NULL,
    df      BIGINT NOT NULL
);

-- The postings: term, document, frequency, with the document's video, field, language and
-- length copied in so that a search ranks and filters from this table alone. New postings are
-- appended; compaction rewrites the table sorted by term, so the zone maps take a lookup
-- straight to a term's rows.
CREATE TABLE search_postings (
    term_id  INTEGER NOT NULL,
    doc_id   BIGINT NOT NULL,
    video_id VARCHAR NOT NULL,
    field    VARCHAR NOT NULL,
    lang     VARCHAR,
    tf       USMALLINT NOT NULL,
    length   USMALLINT NOT NULL
);
CREATE TABLE search_index_state (unsorted_postings BIGINT NOT NULL);
INSERT INTO search_index_state VALUES (0);
-- Documents and their total length per field, kept with the postings: BM25's N and avgdl.
CREATE TABLE search_field_stats (
    field        VARCHAR PRIMARY KEY,
    docs         BIGINT NOT NULL,
    total_length BIGINT NOT NULL
);
INSERT INTO search_field_stats VALUES ('title', 0, 0), ('description', 0, 0), ('subtitles', 0, 0);
"""

# Languages an upload asked its subtitles to be translated to (``translate_to=es,fr``), on top
# of the configured ones: a JSON list of language codes.
_TRANSLATE_TO = """
ALTER TABLE videos ADD COLUMN translate_to JSON DEFAULT '[]';
"""

# What the subtitles step found: published languages, unavailable ones, skipped image tracks
# and warnings (``pipelines.subtitles.step.SubtitleRecord``), shown in the video's metadata.
_SUBTITLES = """
ALTER TABLE videos ADD COLUMN subtitles JSON;
"""

# The search index's heads (catalog.search.index.compact): each common term's best postings,
# so a query of common words ranks a few thousand postings, not hundreds of thousands.
_SEARCH_HEADS = """
-- The postings of the common terms with the highest BM25 term weight (tf and length part) at
-- the last compaction, best first; cutoff is the lowest weight kept: none left out is higher.
CREATE TABLE search_heads (
    term_id  INTEGER NOT NULL,
    doc_id   BIGINT NOT NULL,
    video_id VARCHAR NOT NULL,
    field    VARCHAR NOT NULL,
    lang     VARCHAR,
    tf       USMALLINT NOT NULL,
    length   USMALLINT NOT NULL,
    weight   DOUBLE NOT NULL
);
CREATE TABLE search_head_terms (term_id INTEGER PRIMARY KEY, cutoff DOUBLE NOT NULL);
-- Documents below this id were in the last compaction; newer ones are in no head.
ALTER TABLE search_index_state ADD COLUMN compacted_below BIGINT DEFAULT 0;
-- The average length BM25 ranks with once the index has been compacted (the heads' weights
-- were computed with it); 0 until then, when the live average is used.
ALTER TABLE search_field_stats ADD COLUMN ranking_length DOUBLE DEFAULT 0;
"""

# Search moves to Tantivy beside the catalog (catalog.search.engine): the postings, heads and
# statistics kept in DuckDB go. The cues stay the truth the index is built from; search_dirty
# holds the videos changed but not yet reindexed (catalog.search.index.mark_dirty).
_TANTIVY_SEARCH = """
DROP TABLE search_heads;
DROP TABLE search_head_terms;
DROP TABLE search_postings;
DROP TABLE search_docs;
DROP TABLE search_terms;
DROP TABLE search_index_state;
DROP TABLE search_field_stats;
DROP SEQUENCE search_term_ids;
-- The cues without their search document id (a new table: DuckDB drops no indexed column).
CREATE TABLE cues_kept (
    video_id    VARCHAR NOT NULL,
    lang        VARCHAR NOT NULL,
    source_lang VARCHAR NOT NULL,
    idx         INTEGER NOT NULL,
    start_s     DOUBLE NOT NULL,
    end_s       DOUBLE NOT NULL,
    text        VARCHAR NOT NULL
);
INSERT INTO cues_kept SELECT video_id, lang, source_lang, idx, start_s, end_s, text FROM cues
    ORDER BY video_id, lang, idx;
DROP TABLE cues;
ALTER TABLE cues_kept RENAME TO cues;
DROP SEQUENCE search_doc_ids;
CREATE TABLE search_dirty (video_id VARCHAR PRIMARY KEY);
"""

# Resumable uploads (tus 1.0, ``POST /v1/uploads``): one row per upload until it becomes a video
# (kept a while after, so a client that lost the last answer can still learn the video's id) or
# is terminated or expires. The row, not the replica that served the last PATCH, holds where the
# bytes are: ``received`` bytes are stored for good, and ``storage`` says how
# (``cluster.resumable``: an S3 multipart upload's id and parts). The id becomes the video's.
_RESUMABLE_UPLOADS = """
CREATE TABLE uploads (
    id          VARCHAR PRIMARY KEY,
    owner_id    VARCHAR NOT NULL,
    length      BIGINT NOT NULL,
    received    BIGINT NOT NULL DEFAULT 0,
    fields      JSON NOT NULL,
    metadata    VARCHAR NOT NULL,
    storage     JSON NOT NULL DEFAULT '{}',
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);
"""

# Events and their delivery (catalog.outbox, catalog.webhooks, catalog.mailing): the outbox is
# written in the transaction of the change each event reports; the notifier reads it and keeps
# the state of every retry here, so a crash delays a delivery and never loses it.
_NOTIFY = """
-- Standard Webhooks endpoints. After a rotation the previous secret signs too, until
-- previous_secret_until, so a receiver can switch without losing a delivery.
CREATE TABLE webhook_endpoints (
    id                    VARCHAR PRIMARY KEY,
    owner_id              VARCHAR NOT NULL,
    url                   VARCHAR NOT NULL,
    events                JSON NOT NULL,
    secret                VARCHAR NOT NULL,
    previous_secret       VARCHAR,
    previous_secret_until TIMESTAMP,
    created_at            TIMESTAMP NOT NULL,
    disabled_at           TIMESTAMP,
    disabled_reason       VARCHAR
);

-- The outbox. video: the video's row when the event happened (a deleted one's last fields);
-- detail: what else the event says (the language of video.subtitles.ready...).
CREATE TABLE events (
    id          VARCHAR PRIMARY KEY,
    type        VARCHAR NOT NULL,
    video_id    VARCHAR,
    owner_id    VARCHAR NOT NULL,
    occurred_at TIMESTAMP NOT NULL,
    video       JSON,
    detail      JSON NOT NULL
);

-- One row per event and recipient (a webhook endpoint, or an email address), with the state
-- of its retries: what the notifier sends when next_attempt_at comes.
CREATE TABLE deliveries (
    id              VARCHAR PRIMARY KEY,
    event_id        VARCHAR NOT NULL,
    channel         VARCHAR NOT NULL CHECK (channel IN ('webhook', 'email')),
    endpoint_id     VARCHAR,
    user_id         VARCHAR NOT NULL,
    address         VARCHAR,
    state           VARCHAR NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL,
    manual          BOOLEAN NOT NULL,
    next_attempt_at TIMESTAMP,
    created_at      TIMESTAMP NOT NULL,
    finished_at     TIMESTAMP,
    last_error      VARCHAR
);

CREATE TABLE delivery_attempts (
    delivery_id VARCHAR NOT NULL,
    attempt     INTEGER NOT NULL,
    tried_at    TIMESTAMP NOT NULL,
    status_code INTEGER,
    error       VARCHAR,
    duration_ms INTEGER NOT NULL
);

-- A user's email address (confirmed once they follow the link mailed to it) and the events
-- that mail them.
ALTER TABLE users ADD COLUMN email VARCHAR;
ALTER TABLE users ADD COLUMN email_confirmed_at TIMESTAMP;
ALTER TABLE users ADD COLUMN email_events JSON DEFAULT '["video.ready", "video.failed"]';
"""

# The storyboard of seek-bar previews a video has (``pipelines.video.tiles.Storyboard.to_json``:
# interval, tiles, grid, tile size); NULL for none (made before storyboards, or its step failed).
_STORYBOARD = """
ALTER TABLE videos ADD COLUMN storyboard JSON;
"""

MIGRATIONS: tuple[str, ...] = (
    _V1,
    _V2,
    _JOB_CHUNKS,
    _CUES_AND_SEARCH,
    _TRANSLATE_TO,
    _SUBTITLES,
    _SEARCH_HEADS,
    _TANTIVY_SEARCH,
    _RESUMABLE_UPLOADS,
    _NOTIFY,
    _STORYBOARD,
)
"""``MIGRATIONS[n]`` takes a database from version ``n`` to ``n + 1``."""

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: duckdb.DuckDBPyConnection) -> int:
    """Bring ``db`` to ``SCHEMA_VERSION``; returns the version it was at before."""
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    db.begin()
    try:
        row = db.execute("SELECT max(version) FROM schema_version").fetchone()
        found = row[0] if row and row[0] is not None else 0
        if found > SCHEMA_VERSION:
            raise ServerError(
                f"the catalog is at schema version {found}, newer than this code's {SCHEMA_VERSION}"
            )
        for ddl in MIGRATIONS[found:]:
            db.execute(ddl)
        if found < SCHEMA_VERSION:
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION])
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return found
