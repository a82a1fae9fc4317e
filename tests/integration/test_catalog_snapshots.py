"""`vodray catalog export` on the running catalog, read back with Ray Data as a notebook would."""

from __future__ import annotations

import re
import uuid
from typing import Any

import ray
from click.testing import CliRunner

from cluster.cli import main
from cluster.settings import Settings
from cluster.storage import Storage


def test_cli_export_is_read_by_ray_data_partitioned_by_language(
    settings: Settings, deployment: Any, catalog: Any, storage: Storage, monkeypatch: Any
) -> None:
    monkeypatch.setenv("VODRAY_DATA_DIR", str(settings.data_dir))
    video_id = uuid.uuid4().hex
    ray.get(catalog.create_video.remote(video_id, "owner", "exported", "", "public", "k", 1))
    english = [
        {"start_s": 1.0, "end_s": 2.0, "text": "first"},
        {"start_s": 2.5, "end_s": 4.0, "text": "second"},
    ]
    ray.get(catalog.put_cues.remote(video_id, "en", "en", english))
    ray.get(
        catalog.put_cues.remote(video_id, "fr", "en", [{"start_s": 1.0, "end_s": 2.0, "text": "premier"}])
    )

    exported = CliRunner().invoke(main, ["catalog", "export"])

    assert exported.exit_code == 0, exported.output
    # Other tests share this catalog: its export holds their videos and languages too.
    counted = re.search(r"exported (\d+) videos and (\d+) cues \(([^)]*)\) to ", exported.output)
    assert counted, exported.output
    assert int(counted[1]) >= 1 and int(counted[2]) >= 3 and {"en", "fr"} <= set(counted[3].split(", "))
    named = re.search(r"/catalog/snapshots/(\d{8}T\d{6}Z)", exported.output)  # Ray may log in between
    assert named, exported.output
    snapshot = named[1]
    cues = ray.data.read_parquet(storage.path(f"catalog/snapshots/{snapshot}/cues"))  # hive folders: lang=xx
    mine = sorted(
        (row["lang"], row["idx"], row["start_s"], row["end_s"], row["text"], row["source_lang"])
        for row in cues.filter(lambda row: row["video_id"] == video_id).take_all()
    )
    assert mine == [
        ("en", 0, 1.0, 2.0, "first", "en"),
        ("en", 1, 2.5, 4.0, "second", "en"),
        ("fr", 0, 1.0, 2.0, "premier", "en"),
    ]
    videos = ray.data.read_parquet(storage.path(f"catalog/snapshots/{snapshot}/videos.parquet"))
    assert [row["title"] for row in videos.filter(lambda row: row["id"] == video_id).take_all()] == [
        "exported"
    ]

    # Importing the same snapshot again changes nothing that a user would see.
    imported = CliRunner().invoke(main, ["catalog", "import", snapshot])
    assert imported.exit_code == 0, imported.output
    assert ray.get(catalog.get_cues.remote(video_id)) == [
        {
            "video_id": video_id,
            "lang": lang,
            "source_lang": "en",
            "idx": idx,
            "start_s": s,
            "end_s": e,
            "text": t,
        }
        for lang, idx, s, e, t, _ in mine
    ]
    missing = CliRunner().invoke(main, ["catalog", "import", "19990101T000000Z"])
    assert missing.exit_code == 1 and "no snapshot '19990101T000000Z'" in missing.output
    ray.get(catalog.delete_video.remote(video_id))
