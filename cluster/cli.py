"""The ``vodray`` command: ``up``, ``down``, ``ingest``, ``status``, ``users create``,
``catalog export|import``, ``models install|list``, ``backfill translate|storyboards``."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from catalog.visibility import VISIBILITIES
from cluster.errors import VodError
from cluster.settings import Settings, load_settings

DOWN_TIMEOUT_S = 10.0
"""How long ``vodray down`` waits for ``vodray up`` to stop."""


def _settings(address: str | None = None, port: int | None = None) -> Settings:
    settings = load_settings()
    if address:
        settings = dataclasses.replace(settings, ray=dataclasses.replace(settings.ray, address=address))
    if port:
        settings = dataclasses.replace(settings, http=dataclasses.replace(settings.http, port=port))
    return settings


def _catalog(settings: Settings) -> Any:
    """The catalog of a running vodray, or of an embedded Ray started just for this command;
    its calls (``.remote(...).result()``) are retried while it restarts."""
    from catalog.actor import get_catalog, start_catalog
    from cluster.runtime import connect

    connect(settings)
    start_catalog(settings)
    return get_catalog(settings)


class _Group(click.Group):
    """Readable one-line errors instead of tracebacks for the errors vodray raises on purpose."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VodError as exc:
            raise click.ClickException(exc.detail) from exc
        except ConnectionError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group)
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def main(verbose: bool) -> None:
    """vodray: video on demand on Ray."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    from cluster.runtime import running_address

    # Before anything imports ray: joining a running `vodray up` may need its auth mode.
    running_address(load_settings())


@main.command()
@click.option(
    "--address", help="Join this Ray cluster instead of starting one here (e.g. auto, ray://host:10001)."
)
@click.option("--port", type=int, help="HTTP port of the API (default: VODRAY_HTTP_PORT or 8000).")
@click.option("--demo/--no-demo", default=False, help="Upload a generated clip and wait until it streams.")
@click.option("--detach", is_flag=True, help="With --address: return once deployed; the cluster serves on.")
def up(address: str | None, port: int | None, demo: bool, detach: bool) -> None:
    """Start Ray (or join a cluster), the catalog, the dispatcher and the HTTP API."""
    from cluster.runtime import forget_address, running_address

    settings = _settings(address, port)
    started = time.monotonic()
    embedded = not settings.ray.address and not running_address(settings)
    if embedded:
        _refuse_taken_ports(settings)  # before Ray: it would start, then fail with HAProxy's alert
    click.echo("starting vodray ...")
    try:
        _up(settings, started, demo=demo, detach=detach)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (cluster.runtime.connect), even mid-start
        if not embedded:
            raise
        _stop(settings)
        # All this process started is stopped and waited for; the interpreter's own teardown
        # of Ray's threads takes seconds more on a busy machine and has nothing left to do.
        forget_address(settings)
        sys.stdout.flush()
        os._exit(0)
    except Exception:
        if embedded:  # a failed start must not leave its Ray or HAProxy behind
            from cluster.deploy import undeploy

            undeploy(settings)
        raise


def _up(settings: Settings, started: float, *, demo: bool, detach: bool) -> None:
    from cluster.deploy import deploy

    deployment = deploy(settings, interactive=True)
    api = deployment.api_url
    click.echo(f"  Ray dashboard : {deployment.connection.dashboard_url or '(not available)'}")
    click.echo(f"  Pages         : {api}/  (sign in, upload, watch, search)")
    click.echo(f"  API           : {api}")
    click.echo(f"  API docs      : {api}/schema/swagger  (OpenAPI JSON: {api}/schema/openapi.json)")
    click.echo(f"  data          : {settings.data_dir}  (storage {settings.storage.url})")
    if demo:
        from cluster.demo import run_demo

        video = run_demo(settings, api)
        click.echo(
            f"demo video {video['id']} is ready ({video['duration_s']:.1f} s, "
            f"renditions {', '.join(r['name'] for r in video['renditions'])}):"
        )
        click.echo(f"  watch: {api}/watch/{video['id']}   (open it in a browser)")
        click.echo(f"  DASH : {video['manifest_url']}")
        click.echo(f"  HLS  : {video['hls_url']}")
        click.echo(f"  MP3  : {video['mp3_url']}")
        click.echo(f"  play : ffplay {video['hls_url']}   (or paste the HLS URL into VLC)")
    click.echo(f"ready in {time.monotonic() - started:.0f} s")
    if not deployment.connection.started_here:
        return  # a cluster (or another `vodray up`) keeps serving without this process
    if detach:
        # This process owns the embedded Ray: leaving would stop everything just deployed.
        click.echo("--detach only applies when joining a cluster (--address); serving here instead")
    click.echo("serving; press Ctrl-C (or send SIGTERM, or run `vodray down`) to stop")
    while True:
        time.sleep(3600)


def _refuse_taken_ports(settings: Settings) -> None:
    from cluster.processes import port_is_free, who_holds

    for what, host, port, option in (
        ("API", settings.http.host, settings.http.port, "--port or VODRAY_HTTP_PORT"),
        ("dashboard", settings.ray.dashboard_host, settings.ray.dashboard_port, "VODRAY_DASHBOARD_PORT"),
    ):
        if not port_is_free(host, port):
            raise click.ClickException(
                f"the {what} port {host}:{port} is taken by {who_holds(settings, port)}"
                f" (or choose another port with {option})"
            )


def _stop(settings: Settings) -> None:
    import signal

    from cluster.deploy import undeploy

    # A second Ctrl-C would leave half a Ray behind; the stop is bounded anyway.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    click.echo("stopping ...")
    started = time.monotonic()
    for note in undeploy(settings):
        click.echo(f"  {note}")
    click.echo(f"stopped in {time.monotonic() - started:.1f} s")


@main.command()
def down() -> None:
    """Stop the `vodray up` running with this data dir, and any HAProxy an earlier one left."""
    from cluster.processes import process, stop, vodray_haproxies, wait_gone
    from cluster.runtime import advertised_pid

    settings = load_settings()
    pid = advertised_pid(settings)
    running = process(pid) if pid else None
    did = False
    if running is not None and not any("vodray" in a or "cluster.cli" in a for a in running.argv):
        click.echo(f"pid {pid} named in {settings.data_dir / 'ray-address.json'} is not a vodray; left alone")
    elif running is not None:
        click.echo(f"stopping vodray ({running.describe()}) ...")
        started = time.monotonic()
        os.kill(running.pid, signal.SIGTERM)
        if wait_gone([running], DOWN_TIMEOUT_S):
            raise click.ClickException(
                f"vodray (pid {running.pid}) still runs after {DOWN_TIMEOUT_S:g} s; "
                f"`kill -9 {running.pid}` ends it"
            )
        click.echo(f"stopped in {time.monotonic() - started:.1f} s")
        did = True
    stale = vodray_haproxies(settings)
    if stale:
        left = stop(stale)
        click.echo(f"removed {len(stale) - len(left)} stale HAProxy process(es) of an earlier vodray")
        if left:
            raise click.ClickException(f"could not stop {', '.join(p.describe() for p in left)}")
        did = True
    if not did:
        click.echo(f"no vodray is running with data dir {settings.data_dir}")


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--title", required=True, help="Title of the video.")
@click.option("--owner", required=True, help="Username of the owner (see `vodray users create`).")
@click.option("--description", default="", help="Description.")
@click.option("--visibility", type=click.Choice(VISIBILITIES), default="private", show_default=True)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until the video is ready.")
def ingest(file: Path, title: str, owner: str, description: str, visibility: str, wait: bool) -> None:
    """Submit FILE without HTTP; prints the video id."""
    from cluster.deploy import start_backend
    from cluster.runtime import connect
    from pipelines.ingest import ingest_file, wait_until_finished

    settings = _settings()
    connection = connect(settings)
    start_backend(settings)
    video_id = ingest_file(
        settings,
        file,
        title=title,
        owner=owner,  # looked up as a login does: `--owner Alice` is alice
        description=description,
        visibility=visibility,
    )
    click.echo(video_id)
    if not wait and connection.started_here:
        click.echo("note: no `vodray up` is running, so processing stops when this command exits", err=True)
    if wait or connection.started_here:
        video = wait_until_finished(settings, video_id)
        if video["status"] == "failed":
            raise click.ClickException(f"video {video_id} failed: {video['error']}")
        click.echo(f"ready: {video['duration_s']:.1f} s, {', '.join(r['name'] for r in video['renditions'])}")


@main.command()
@click.argument("video_id", required=False)
@click.option("--limit", default=20, show_default=True, help="How many recent videos to list.")
def status(video_id: str | None, limit: int) -> None:
    """Show one video's job, or the most recent videos."""
    settings = _settings()
    catalog = _catalog(settings)
    if video_id:
        video = catalog.get_video.remote(video_id).result()
        if video is None:
            raise click.ClickException(f"video {video_id!r} not found")
        videos = [video]
    else:
        videos = catalog.list_recent_videos.remote(limit).result()
    if not videos:
        click.echo("no videos yet")
    for video in videos:
        job = video["job"]
        percent = 100 * float(job["progress"] or 0)
        chunks = f"{job.get('chunks_done') or 0}/{job.get('chunks_total') or 0} chunks"
        line = f"{video['id']}  {video['status']:<10} {job['step']:<8} {percent:5.1f}% {chunks:>13}"
        line += f"  {video['title']}"
        if video["error"]:
            line += f"  ({video['error']})"
        click.echo(line)


@main.group()
def users() -> None:
    """Manage users."""


@users.command("create")
@click.argument("username")
@click.password_option(envvar="VODRAY_PASSWORD", help="Password (prompted for; or VODRAY_PASSWORD).")
def users_create(username: str, password: str) -> None:
    """Create USERNAME with a password."""
    from catalog.credentials import normalise_username, password_problem
    from serve.auth_tokens import hash_password

    username = normalise_username(username)
    problem = password_problem(password)
    if problem:
        raise click.ClickException(problem)
    settings = _settings()
    user = _catalog(settings).create_user.remote(username, hash_password(password)).result()
    click.echo(f"created user {user['username']} ({user['id']})")


@main.group()
def models() -> None:
    """Offline translation models (Argos Translate packages)."""


@models.command("install")
@click.argument("source")
@click.option("--sha256", help="The package's SHA-256 (64 hex digits): anything else is refused.")
@click.option("--allow-http", is_flag=True, help="Also fetch plain http:// URLs (https only without it).")
@click.option(
    "--timeout-s",
    type=click.FloatRange(min=1),
    default=900,
    show_default=True,
    help="Deadline for the whole download.",
)
def models_install(source: str, sha256: str | None, allow_http: bool, timeout_s: float) -> None:
    """Install a .argosmodel from a file PATH or an https URL into the models dir (redirects only
    to the same host)."""
    from pipelines.subtitles.models import install_from

    settings = _settings()
    model = install_from(
        source, settings.subtitles.models_dir, allow_http=allow_http, sha256=sha256, timeout_s=timeout_s
    )
    click.echo(f"installed {model.pair} (version {model.version or '?'}) in {model.path}")


@models.command("list")
def models_list() -> None:
    """The installed models, one language pair a line, then how this machine translates with them."""
    from pipelines.subtitles.models import list_models
    from pipelines.subtitles.translate import translation_setup

    settings = _settings()
    installed = list_models(settings.subtitles.models_dir)
    if not installed:
        click.echo(f"no models in {settings.subtitles.models_dir} (vodray models install PATH|URL)")
        return
    for model in installed:
        click.echo(f"{model.pair}\t{model.version or '?'}\t{model.path}")
    subtitles = settings.subtitles
    setup = translation_setup(
        subtitles.translate_batch_cues, subtitles.translate_beam, subtitles.translate_threads
    )
    click.echo(f"translated here at {setup}")


@main.group("catalog")
def catalog_group() -> None:
    """Back up and restore the catalog as Parquet under the storage root."""


@catalog_group.command("export")
def catalog_export() -> None:
    """Write every video, job and cue to catalog/snapshots/{time}/ (cues by language)."""
    from datetime import UTC, datetime

    from catalog.snapshots import snapshot_name
    from cluster.storage import Storage

    settings = _settings()
    # Named here, once: the call retried after a catalog restart answers the snapshot it wrote.
    name = snapshot_name(datetime.now(UTC))
    done = _catalog(settings).export_snapshot.remote(Storage(settings.storage), name, exist_ok=True).result()
    click.echo(
        f"exported {done['videos']} videos and {done['cues']} cues"
        f" ({', '.join(done['languages']) or 'no languages'}) to {settings.storage.url}/{done['path']}"
    )


@catalog_group.command("import")
@click.argument("snapshot", required=False)
def catalog_import(snapshot: str | None) -> None:
    """Restore SNAPSHOT (a name under catalog/snapshots/; default: the newest). Replaces the
    videos it holds, keeps every other one."""
    from cluster.storage import Storage

    settings = _settings()
    done = _catalog(settings).import_snapshot.remote(Storage(settings.storage), snapshot).result()
    click.echo(f"imported {done['videos']} videos and {done['cues']} cues from snapshot {done['snapshot']}")


@main.group()
def backfill() -> None:
    """Batch jobs over every ready video (Ray Data)."""


@backfill.command("translate")
@click.option("--lang", required=True, help="The language to add, e.g. de.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def backfill_translate(lang: str, no_progress: bool) -> None:
    """Translate every ready video's subtitles into LANG; skips videos that have it."""
    from pipelines.subtitles.backfill import backfill_translations

    click.echo(str(backfill_translations(_settings(), lang, progress=not no_progress)))


@backfill.command("storyboards")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def backfill_storyboards(no_progress: bool) -> None:
    """Seek-bar previews for every ready video without them; skips videos that have them.
    Exits 1 if a video's could not be made (each listed with the reason; a re-run tries again)."""
    from pipelines.storyboard_backfill import backfill_storyboards as run_backfill

    summary = run_backfill(_settings(), progress=not no_progress)
    click.echo(str(summary))
    for video_id, reason in sorted(summary.failed.items()):
        click.echo(f"  {video_id}: {reason}")
    if summary.failed:
        sys.exit(1)


if __name__ == "__main__":
    sys.exit(main())
