"""Real parts for integration tests: one local Ray session for the whole run, the catalog and
dispatcher actors, the Serve app on a free port reached over real HTTP, clips made by ffmpeg,
and an S3 endpoint on loopback (moto's threaded server)."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

# Before Ray starts, so its workers inherit them: fake credentials for the loopback S3.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

from cluster.settings import Settings, load_settings  # noqa: E402
from cluster.storage import Storage  # noqa: E402
from serve.deployment import free_port  # noqa: E402
from tests.integration.client import register_user  # noqa: E402

TEST_LADDER = "180:300,360:800"
TEST_SEGMENT_S = 2.0


def integration_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        "HOME": str(data_dir),
        "VODRAY_DATA_DIR": str(data_dir),
        "VODRAY_LADDER": TEST_LADDER,
        "VODRAY_SEGMENT_S": str(TEST_SEGMENT_S),
        "VODRAY_X264_PRESET": "ultrafast",
        "VODRAY_MAX_UPLOAD_MB": "20",
        "VODRAY_UPLOADS_PER_HOUR": "1000",
        # The suite's users upload and log in far more than a person would, all from loopback;
        # tests/integration/test_limits.py checks the limits on a deployment of its own.
        "VODRAY_UPLOADS_IN_FLIGHT": "1000",
        "VODRAY_AUTH_ATTEMPTS_PER_ADDRESS": "100000",
        "VODRAY_SIDECAR_POSTS_PER_HOUR": "100000",
        "VODRAY_HTTP_PORT": str(free_port()),
        "VODRAY_JOBS_IN_FLIGHT": "2",
        # Expired resumable uploads are swept every second (tests/integration/test_tus.py).
        "VODRAY_UPLOAD_SWEEP_S": "1",
        # Every video's subtitles are offered in these; only tests that install a model (into
        # the data dir's models/) get a translation, the others list both as unavailable.
        "VODRAY_TRANSLATE_TO": "es,fr",
        # Webhooks reach the test receivers on loopback and nothing else; retries come within
        # seconds (6 attempts over about 31 s); mail goes to the aiosmtpd the mail tests start
        # on this port (until then, nothing listens there: mails wait for their retries).
        "VODRAY_WEBHOOK_ALLOW_PRIVATE": "1",
        "VODRAY_WEBHOOK_NETWORKS": "127.0.0.0/8,::1/128",
        "VODRAY_WEBHOOK_RETRY_SCHEDULE_S": "0,1,2,4,8,16",
        "VODRAY_NOTIFY_POLL_S": "1",
        "VODRAY_SMTP_HOST": "127.0.0.1",
        "VODRAY_SMTP_PORT": str(free_port()),
        "VODRAY_SMTP_SECURITY": "none",
        "VODRAY_MAIL_FROM": "vodray tests <vodray@example.org>",
    }
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(integration_env(tmp_path_factory.mktemp("vodray")))


@pytest.fixture(scope="session")
def deployment(settings: Settings) -> Iterator[Any]:
    import ray
    from ray import serve

    from cluster.deploy import deploy
    from cluster.runtime import advertise, connect

    connect(settings, start=True)
    advertise(settings)  # so a second process (the CLI tests) can join this one Ray session
    try:
        yield deploy(settings)
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="session")
def base_url(deployment: Any) -> str:
    return str(deployment.api_url)


@pytest.fixture(scope="session")
def api(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="session")
def catalog(deployment: Any) -> Any:
    return deployment.backend.catalog


@pytest.fixture(scope="session")
def dispatcher(deployment: Any) -> Any:
    return deployment.backend.dispatcher


@pytest.fixture(scope="session")
def notifier(deployment: Any) -> Any:
    return deployment.backend.notifier


@pytest.fixture(scope="session")
def storage(settings: Settings) -> Storage:
    return Storage(settings.storage)


@pytest.fixture(scope="session")
def es_model(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The tiny en->es Argos model in the session's models dir (the session translates to es
    and fr; fr has no model, so it is listed as unavailable)."""
    from pipelines.subtitles.models import install_model
    from tests.argos_model import build_argos_package

    package = build_argos_package(tmp_path_factory.mktemp("argos") / "en_es.argosmodel")
    install_model(package, settings.subtitles.models_dir)


@pytest.fixture
def new_user(api: httpx.Client) -> Callable[..., SimpleNamespace]:
    """``new_user(username=None)``: a user registered and logged in over HTTP."""
    return functools.partial(register_user, api)


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``clip(seconds=3, **kw)``: a clip made by ffmpeg, made once per set of arguments."""
    from pipelines.demo import make_clip

    folder = tmp_path_factory.mktemp("clips")
    made: dict[tuple[Any, ...], Path] = {}

    def make(seconds: float = 3, **kwargs: Any) -> Path:
        key = (seconds, *sorted(kwargs.items()))
        if key not in made:
            path = folder / f"clip-{len(made)}.mp4"
            make_clip(path, seconds=seconds, **kwargs)
            made[key] = path
        return made[key]

    return make


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    import boto3

    name = f"vodray-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name
