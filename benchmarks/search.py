"""Search at scale: vodray's search (Tantivy beside the catalog) side by side with DuckDB ``fts``.

    python benchmarks/search.py                 # 1,000,000 cues over 10,000 videos
    python benchmarks/search.py --cues 200000   # a smaller run (videos scale with it)
    python benchmarks/search.py --http          # also through the HTTP API (starts Ray + Serve)

Synthetic cues: 4-12 words each, drawn from a 50,000-word vocabulary with a Zipf distribution
(s = 1.1), like words in real speech; the first ranks are real English function words. vodray
is measured through ``CatalogStore`` (what the catalog actor runs), fts on the same catalog
file; each query runs on both:
    * terms    1-2 words of a random cue (so common words come up as often as they are spoken)
    * phrases  2-3 consecutive words of a random cue, in quotes
    * prefixes the first 3-5 letters of a word of a random cue, with ``*``
The fts side matches the same way (conjunctive BM25, no stemmer, no stop words); its phrases
are the words' match checked against the text, its prefixes the terms of its dictionary that
start so.  Prints build times (vodray: loaded as a backfill would, through ``put_many_cues``,
and rebuilt whole from the catalog's tables as an open does when the index is lost), the time
to make one new 500-cue video searchable, and p50/p99 wall and CPU per query kind.
"""

from __future__ import annotations

import argparse
import importlib.resources
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from catalog.search.query import parse_query, phrase_pattern  # noqa: E402
from catalog.store import CatalogStore  # noqa: E402

VOCABULARY = 50_000
ZIPF_S = 1.1
FUNCTION_WORDS = [
    "the",
    "you",
    "i",
    "to",
    "a",
    "and",
    "it",
    "of",
    "that",
    "is",
    "in",
    "what",
    "we",
    "me",
    "this",
    "he",
    "for",
    "my",
    "on",
    "have",
    "your",
]
SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["an", "er", "in", "on", "or", "us"]
OWNERS = ("a" * 32, "b" * 32)
NEW_VIDEO_CUES = 500


def vocabulary(rng: random.Random) -> list[str]:
    words = list(FUNCTION_WORDS)
    seen = set(words)
    while len(words) < VOCABULARY:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def make_cues(words: list[str], count: int, seed: int) -> list[list[dict[str, Any]]]:
    """``count`` cues per video... as a list of videos' cue lists (100 cues a video)."""
    gen = np.random.default_rng(seed)
    ranks = np.arange(1, len(words) + 1)
    weights = 1.0 / ranks**ZIPF_S
    weights /= weights.sum()
    lengths = gen.integers(4, 13, size=count)
    drawn = gen.choice(len(words), size=int(lengths.sum()), p=weights)
    cues, at = [], 0
    for i, length in enumerate(lengths):
        text = " ".join(words[w] for w in drawn[at : at + length])
        at += length
        cues.append({"start_s": 2.0 * (i % 100), "end_s": 2.0 * (i % 100) + 1.8, "text": text})
    return [cues[i : i + 100] for i in range(0, count, 100)]


def build_catalog(path: Path, videos: list[list[dict[str, Any]]], batch: int = 100) -> float:
    """Bulk load: the video rows (ready, every third private), then ``put_many_cues`` per
    ``batch`` videos, as a backfill would (one index commit per call); returns seconds."""
    store = CatalogStore(path)
    started = time.perf_counter()
    for first in range(0, len(videos), batch):
        numbers = range(first, min(first + batch, len(videos)))
        rows = pa.table(
            {
                "id": [f"{n:032x}" for n in numbers],
                "owner_id": [OWNERS[n % 2] for n in numbers],
                "title": [f"video {n} {videos[n][0]['text']}" for n in numbers],
                "visibility": ["private" if n % 3 == 0 else "public" for n in numbers],
            }
        )
        with store._writing() as cur:
            cur.register("new_videos", rows)
            cur.execute(
                "INSERT INTO videos (id, owner_id, title, visibility, status, source_key, source_bytes,"
                " created_at, updated_at)"
                " SELECT id, owner_id, title, visibility, 'ready', 'k', 1, now(), now() FROM new_videos"
            )
            cur.unregister("new_videos")
        store.put_many_cues([(f"{n:032x}", "en", "en", videos[n]) for n in numbers])  # indexes them too
        if (first // batch) % 20 == 19:
            print(f"  {numbers[-1] + 1:,} videos, {time.perf_counter() - started:.0f} s", flush=True)
    store.close()
    return time.perf_counter() - started


def rebuild_index(path: Path) -> float:
    """Remove the index beside the catalog and open the store: it rebuilds it from the tables."""
    shutil.rmtree(path.with_name(path.name + ".search"))
    started = time.perf_counter()
    CatalogStore(path).close()
    return time.perf_counter() - started


def make_queries(videos: list[list[dict[str, Any]]], count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    queries = []
    for n in range(count):
        words = rng.choice(rng.choice(videos))["text"].split()
        kind = n % 3
        if kind == 0:
            queries.append(" ".join(rng.sample(words, rng.randint(1, 2))))
        elif kind == 1:
            length = rng.randint(2, 3)
            start = rng.randrange(len(words) - length + 1)
            queries.append('"' + " ".join(words[start : start + length]) + '"')
        else:
            long_words = [w for w in words if len(w) >= 3] or ["the"]
            queries.append(rng.choice(long_words)[: rng.randint(3, 5)] + "*")
    return queries


def p50_p99(times: list[float]) -> tuple[float, float]:
    ms = sorted(t * 1000 for t in times)
    return statistics.median(ms), ms[min(len(ms) - 1, int(len(ms) * 0.99))]


def percentiles(times: list[float]) -> str:
    p50, p99 = p50_p99(times)
    return f"p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   max {max(times) * 1000:7.1f} ms"


def timed(run: Callable[[str], Any], queries: list[str]) -> tuple[list[float], list[float], int]:
    """Wall-clock and CPU seconds per query, and how many found something. On a shared machine
    the wall clock also counts the time other processes held the CPU; the CPU time does not."""
    wall, cpu, hits = [], [], 0
    for query in queries:
        started, started_cpu = time.perf_counter(), time.process_time()
        found = run(query)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
        hits += bool(found)
    return wall, cpu, hits


def report(engine: str, queries: list[str], run: Callable[[str], Any]) -> tuple[float, float]:
    """Prints the percentiles of every kind of query; returns the wall p50 and p99 of all (ms)."""
    wall, cpu, hits = timed(run, queries)
    print(f"{engine}: {len(queries)} queries in-process ({hits} with hits)")
    for kind, start in (("all", None), ("terms", 0), ("phrases", 1), ("prefixes", 2)):
        part = slice(None) if start is None else slice(start, None, 3)
        print(f"    {kind:<9} wall {percentiles(wall[part])}")
        print(f"    {'':<9} CPU  {percentiles(cpu[part])}")
    return p50_p99(wall)


# -- DuckDB fts on the same cues -------------------------------------------------------------


def fts_connect(path: Path) -> duckdb.DuckDBPyConnection:
    """The catalog file with the fts extension loaded from the installed wheel, never downloaded."""
    db = duckdb.connect(str(path), config={"autoinstall_known_extensions": "false"})
    package = importlib.resources.files("duckdb_extension_fts")
    extension = package / "extensions" / f"v{duckdb.__version__}" / "fts.duckdb_extension"
    db.execute(f"INSTALL '{extension}'")
    db.execute("LOAD fts")
    return db


def fts_build(db: duckdb.DuckDBPyConnection) -> float:
    started = time.perf_counter()
    db.execute("CREATE OR REPLACE TABLE fts_cues AS SELECT row_number() OVER () AS doc_id, * FROM cues")
    db.execute(
        "PRAGMA create_fts_index('fts_cues', 'doc_id', 'text', stemmer='none', stopwords='none',"
        " ignore='[^\\p{L}\\p{N}_]+', strip_accents=0, lower=1, overwrite=1)"
    )
    return time.perf_counter() - started


def fts_search(db: duckdb.DuckDBPyConnection, text: str, limit: int = 20) -> list[Any]:
    query = parse_query(text)
    words, conjunctive, patterns = [], 1, []
    for clause in query.clauses:
        if clause.kind == "prefix":
            expanded = db.execute(
                "SELECT term FROM fts_main_fts_cues.dict WHERE starts_with(term, ?)"
                " ORDER BY df DESC LIMIT 64",
                [clause.words[0]],
            ).fetchall()
            words += [row[0] for row in expanded]
            conjunctive = 0 if len(query.clauses) == 1 else conjunctive
        else:
            words += clause.words
        if clause.kind == "phrase":
            patterns.append(phrase_pattern(clause.words))
    if not words:
        return []
    checks = "".join(" AND regexp_matches(c.text, ?)" for _ in patterns)
    sql = (
        "SELECT * FROM (SELECT c.video_id, c.idx, c.start_s, c.text, v.title,"
        " fts_main_fts_cues.match_bm25(c.doc_id, ?, conjunctive := ?) AS score"
        " FROM fts_cues c JOIN videos v ON v.id = c.video_id"
        f" WHERE v.status = 'ready' AND (v.owner_id = ? OR v.visibility = 'public'){checks})"
        " WHERE score IS NOT NULL ORDER BY score DESC LIMIT ?"
    )
    return db.execute(sql, [" ".join(words), conjunctive, OWNERS[0], *patterns, limit]).fetchall()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cues", type=int, default=1_000_000, help="cues in the catalog (100 per video)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--fts-queries", type=int, default=None, help="queries for fts (default: --queries)")
    parser.add_argument("--vodray-queries", type=int, default=None, help="default: --queries")
    parser.add_argument("--no-fts", action="store_true", help="skip DuckDB fts")
    parser.add_argument("--http", action="store_true", help="also query over HTTP (starts Ray and Serve)")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir)")
    parser.add_argument("--keep", type=Path, default=None, help="build the catalog here once and reuse it")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vodray-search-bench-", dir=args.dir) as tmp:
        path = args.keep or Path(tmp) / "catalog.duckdb"
        rng = random.Random(7)
        words = vocabulary(rng)
        videos = make_cues(words, args.cues, seed=7)
        queries = make_queries(videos, args.queries, seed=11)
        print(f"{args.cues:,} cues over {len(videos):,} videos; {len(queries):,} queries")

        if path.exists():
            print(f"vodray:   reusing {path}")
        else:
            build_s = build_catalog(path, videos)
            print(
                f"vodray:   loaded through put_many_cues in {build_s:.1f} s"
                f" ({args.cues / build_s:,.0f} cues/s)"
            )
        rebuild_s = rebuild_index(path)
        print(
            f"vodray:   index rebuilt whole from the catalog in {rebuild_s:.1f} s"
            " (what an open does when it finds the index lost)"
        )
        store = CatalogStore(path)
        viewer = OWNERS[0]
        new_video = uuid.uuid4().hex
        new_cues = make_cues(words, NEW_VIDEO_CUES, seed=99)
        flat = [cue for chunk in new_cues for cue in chunk]
        probe = f'"{flat[123]["text"]}"'
        started, started_cpu = time.perf_counter(), time.process_time()
        store.create_video(new_video, viewer, "the new one", "", "private", "k", 1)
        store.put_cues(new_video, "en", "en", flat)  # the subtitles step, before the video is ready
        store.mark_ready(
            new_video, duration_s=1000, width=1, height=1, renditions=[], has_audio=True, media_bytes=1
        )
        found = store.search(probe, viewer, limit=200)
        new_s, new_cpu_s = time.perf_counter() - started, time.process_time() - started_cpu
        assert any(item["video_id"] == new_video for item in found["items"]), "the new video is not found"
        print(
            f"vodray:   new {NEW_VIDEO_CUES}-cue video searchable in {new_s * 1000:.0f} ms wall,"
            f" {new_cpu_s * 1000:.0f} ms CPU (create_video, put_cues, mark_ready, a search that finds it)"
        )

        vodray_queries = queries[: len(queries) if args.vodray_queries is None else args.vodray_queries]
        vodray_ms = None
        if vodray_queries:
            vodray_ms = report("vodray", vodray_queries, lambda q: list(store.search(q, viewer)["items"]))
        started = time.perf_counter()
        store.delete_video(new_video)
        gone = store.search(probe, viewer, limit=200)
        assert not any(item["video_id"] == new_video for item in gone["items"])
        print(f"vodray:   deleted video gone from search in {(time.perf_counter() - started) * 1000:.0f} ms")
        store.close()

        if args.http:
            run_http(path, queries)

        if not args.no_fts:
            db = fts_connect(path)
            fts_s = fts_build(db)
            print(f"fts:      index built in {fts_s:.1f} s (a new video means rebuilding it: {fts_s:.1f} s)")
            fts_queries = queries[: args.fts_queries or len(queries)]
            fts_ms = report("fts", fts_queries, lambda q: fts_search(db, q))
            db.close()
            if vodray_ms:
                print(
                    f"fts / vodray (in-process wall): p50 {fts_ms[0] / vodray_ms[0]:.1f}x,"
                    f" p99 {fts_ms[1] / vodray_ms[1]:.1f}x"
                )


def run_http(path: Path, queries: list[str]) -> None:
    """The same queries through GET /v1/search of a real deployment (embedded Ray, Serve) whose
    catalog actor opens the benchmark's file; anonymous, so public videos only."""
    import httpx
    import ray
    from ray import serve

    from cluster.deploy import deploy
    from cluster.settings import load_settings
    from serve.deployment import free_port

    env = {"VODRAY_DATA_DIR": str(path.parent), "VODRAY_CATALOG_PATH": str(path), "HOME": str(path.parent),
           "VODRAY_HTTP_PORT": str(free_port())}  # fmt: skip
    deployment = deploy(load_settings(env))
    try:
        with httpx.Client(base_url=deployment.api_url, timeout=60) as client:

            def get(query: str) -> list[Any]:
                answer = client.get("/v1/search", params={"q": query})
                assert answer.status_code == 200, answer.text
                return list(answer.json()["items"])

            get(queries[0])  # the first request warms the replica up
            wall, _, hits = timed(get, queries)
        print(f"vodray:   {len(queries)} queries over HTTP ({hits} with hits)")
        for kind, start in (("all", None), ("terms", 0), ("phrases", 1), ("prefixes", 2)):
            part = slice(None) if start is None else slice(start, None, 3)
            print(f"    {kind:<9} wall {percentiles(wall[part])}")
    finally:
        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main()
