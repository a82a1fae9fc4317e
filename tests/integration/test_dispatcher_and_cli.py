"""The dispatcher resumes unfinished jobs after a restart; the CLI works without HTTP."""

from __future__ import annotations

import time
import uuid
from typing import Any

import ray
from click.testing import CliRunner

from cluster.cli import main
from pipelines.ingest import source_key


def test_restarted_dispatcher_resumes_unfinished_jobs(
    dispatcher: Any, catalog: Any, storage: Any, clip: Any, new_user: Any
) -> None:
    user = new_user()
    vid = uuid.uuid4().hex
    # A job the catalog knows but no dispatcher runs: what a crash between upload and submit leaves.
    storage.put_file(clip(seconds=3), source_key(vid))
    ray.get(catalog.create_video.remote(vid, user.id, "orphan", "", "private", source_key(vid), 1))
    assert vid in ray.get(catalog.unfinished_jobs.remote())

    ray.kill(dispatcher, no_restart=False)  # Ray restarts it (max_restarts=-1)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            ray.get(dispatcher.stats.remote(), timeout=10)  # the first call after the restart resumes
            break
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            time.sleep(0.5)
    assert ray.get(dispatcher.wait_idle.remote(180))
    video = ray.get(catalog.get_video.remote(vid))
    assert video["status"] == "ready", video
    assert video["job"]["attempts"] == 1


def test_cli_users_ingest_status(
    settings: Any, deployment: Any, catalog: Any, clip: Any, monkeypatch: Any
) -> None:
    for key, value in {
        "VODRAY_DATA_DIR": str(settings.data_dir),
        "VODRAY_LADDER": ",".join(f"{r.height}:{r.video_kbps}" for r in settings.pipeline.ladder),
    }.items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    name = f"cli{uuid.uuid4().hex[:8]}"
    created = runner.invoke(main, ["users", "create", name], env={"VODRAY_PASSWORD": "correct horse battery"})
    assert created.exit_code == 0, created.output
    assert f"created user {name}" in created.output
    duplicate = runner.invoke(
        main, ["users", "create", name], env={"VODRAY_PASSWORD": "correct horse battery"}
    )
    assert duplicate.exit_code == 1 and "taken" in duplicate.output

    ingested = runner.invoke(
        main, ["ingest", str(clip(seconds=3)), "--title", "from the cli", "--owner", name]
    )
    assert ingested.exit_code == 0, ingested.output
    vid = ingested.output.splitlines()[0].strip()
    assert "ready: 3.0 s, 180p, 360p" in ingested.output
    assert ray.get(catalog.get_video.remote(vid))["title"] == "from the cli"

    shown = runner.invoke(main, ["status", vid])
    assert shown.exit_code == 0 and vid in shown.output and "ready" in shown.output
    assert "2/2 chunks" in shown.output  # 3 s in 2 s segments: two chunks, both done
    unknown = runner.invoke(main, ["ingest", str(clip(seconds=3)), "--title", "x", "--owner", "nobody-here"])
    assert unknown.exit_code == 1 and "no user named 'nobody-here'" in unknown.output


def test_the_cli_and_the_api_name_users_alike(
    settings: Any, deployment: Any, catalog: Any, api: Any, clip: Any, monkeypatch: Any
) -> None:
    """A user made by `vodray users create` is the one the API logs in and `ingest --owner` finds,
    under the same case-insensitive name; each refuses the other's duplicate in the same words."""
    monkeypatch.setenv("VODRAY_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()
    name = f"Mixed.{uuid.uuid4().hex[:8]}"
    password = {"VODRAY_PASSWORD": "correct horse battery"}
    created = runner.invoke(main, ["users", "create", f"  {name} "], env=password)
    assert created.exit_code == 0, created.output
    user = ray.get(catalog.get_user_by_name.remote(name.lower()))
    # Ray's own log lines may land in the same output: look for the CLI's line.
    assert f"created user {name.lower()} ({user['id']})" in created.output.splitlines()

    login = api.post("/v1/auth/login", json={"username": name.upper(), "password": "correct horse battery"})
    assert login.status_code == 200, login.text
    taken = api.post("/v1/auth/register", json={"username": name, "password": "another password"})
    assert taken.status_code == 409
    again = runner.invoke(main, ["users", "create", name.upper()], env=password)
    assert again.exit_code == 1 and f"Error: {taken.json()['detail']}" in again.output.splitlines()

    ingested = runner.invoke(
        main, ["ingest", str(clip(seconds=1)), "--title", "by name", "--owner", name.upper(), "--no-wait"]
    )
    assert ingested.exit_code == 0, ingested.output
    video = ray.get(catalog.get_video.remote(ingested.output.splitlines()[0].strip()))
    assert video["owner_id"] == user["id"] and video["title"] == "by name"


def test_a_second_process_joins_the_running_ray(settings: Any, deployment: Any, catalog: Any) -> None:
    """What a second terminal does beside `vodray up`: find its Ray through the data dir,
    adopt its token auth (Ray 2.60 enables it for local clusters), and use the same catalog."""
    import os
    import subprocess
    import sys

    name = f"proc{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    env.update({"VODRAY_DATA_DIR": str(settings.data_dir), "VODRAY_PASSWORD": "correct horse battery"})
    created = subprocess.run(
        [sys.executable, "-m", "cluster.cli", "users", "create", name],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr[-2000:]
    assert f"created user {name}" in created.stdout
    assert ray.get(catalog.get_user_by_name.remote(name))["username"] == name
