"""cluster.settings: defaults, VODRAY_* parsing, units, the ladder and the kept JWT secret."""

from __future__ import annotations

import dataclasses
import os
import secrets
import stat
from pathlib import Path

import pytest

from cluster.errors import BadRequest
from cluster.settings import Rung, load_settings, parse_ladder, secret_problem


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"VODRAY_DATA_DIR": str(tmp_path / "data")}


def test_defaults_live_under_the_data_dir(env: dict[str, str], tmp_path: Path) -> None:
    settings = load_settings(env)

    data = (tmp_path / "data").resolve()
    assert settings.data_dir == data
    assert settings.storage.url == (data / "store").as_uri()
    assert settings.storage.s3_endpoint_url is None
    assert settings.catalog.path == data / "catalog.duckdb"
    assert (settings.auth.access_ttl_s, settings.auth.refresh_ttl_s) == (900, 30 * 24 * 3600)
    assert (settings.http.host, settings.http.port, settings.http.max_wait_s) == ("127.0.0.1", 8000, 30)
    assert settings.http.max_upload_bytes == 4096 * 1024 * 1024
    assert [(r.name, r.video_kbps) for r in settings.pipeline.ladder] == [
        ("360p", 800),
        ("480p", 1200),
        ("720p", 2400),
        ("1080p", 4500),
    ]
    assert (settings.pipeline.segment_s, settings.pipeline.x264_preset) == (4.0, "veryfast")
    assert (settings.ray.address, settings.ray.namespace, settings.ray.num_cpus) == (None, "vodray", None)


def test_data_dir_defaults_to_xdg_data_home(tmp_path: Path) -> None:
    settings = load_settings({"XDG_DATA_HOME": str(tmp_path)})

    assert settings.data_dir == tmp_path.resolve() / "vodray"
    assert (tmp_path / "vodray" / "jwt-secret").is_file()


def test_every_area_reads_its_variables_with_their_types(env: dict[str, str]) -> None:
    env |= {
        "VODRAY_STORAGE_URL": "s3://media-bucket/vod/",
        "VODRAY_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "VODRAY_UPLOAD_CONCURRENCY": "32",
        "VODRAY_CATALOG_PATH": "/srv/vod/catalog.duckdb",
        "VODRAY_ACCESS_TTL_S": "60",
        "VODRAY_HTTP_PORT": "9090",
        "VODRAY_UPLOADS_PER_HOUR": "3",
        "VODRAY_SEGMENT_S": "2.5",
        "VODRAY_MAX_FPS": "60",
        "VODRAY_X264_PRESET": "ultrafast",
        "VODRAY_JOBS_IN_FLIGHT": "4",
        "VODRAY_RAY_ADDRESS": "auto",
        "VODRAY_RAY_NAMESPACE": "vod-test",
        "VODRAY_NUM_CPUS": "2",
    }

    settings = load_settings(env)

    assert settings.storage.url == "s3://media-bucket/vod"  # no trailing slash to double up in keys
    assert settings.storage.s3_endpoint_url == "http://127.0.0.1:9000"
    assert settings.storage.upload_concurrency == 32
    assert settings.catalog.path == Path("/srv/vod/catalog.duckdb")
    assert settings.auth.access_ttl_s == 60
    assert (settings.http.port, settings.http.uploads_per_hour) == (9090, 3)
    assert (settings.pipeline.segment_s, settings.pipeline.max_fps) == (2.5, 60.0)
    assert settings.pipeline.x264_preset == "ultrafast"
    assert settings.pipeline.jobs_in_flight == 4
    assert (settings.ray.address, settings.ray.namespace, settings.ray.num_cpus) == ("auto", "vod-test", 2)


def test_an_empty_variable_means_the_default(env: dict[str, str]) -> None:
    settings = load_settings(env | {"VODRAY_HTTP_PORT": "", "VODRAY_LADDER": "", "VODRAY_RAY_ADDRESS": ""})

    assert settings.http.port == 8000
    assert len(settings.pipeline.ladder) == 4
    assert settings.ray.address is None


def test_upload_limit_is_given_in_megabytes(env: dict[str, str]) -> None:
    assert load_settings(env | {"VODRAY_MAX_UPLOAD_MB": "2"}).http.max_upload_bytes == 2 * 1024 * 1024


def test_settings_are_frozen_and_keep_the_secret_out_of_repr(env: dict[str, str]) -> None:
    settings = load_settings(env)

    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.http.port = 1  # type: ignore[misc]
    assert settings.auth.jwt_secret not in repr(settings)


# -- the ladder ----------------------------------------------------------------------------


def test_ladder_is_parsed_and_sorted_by_height() -> None:
    assert parse_ladder(" 720:2400, 360:800 ") == (Rung(360, 800), Rung(720, 2400))
    assert [rung.name for rung in parse_ladder("1080:4500,240:300")] == ["240p", "1080p"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("720", "ladder rung '720' is not HEIGHT:KBPS"),
        ("360:800,,720:2400", "ladder rung '' is not HEIGHT:KBPS"),
        ("361:800", "ladder rung '361:800' needs an even height >= 16 and a bitrate > 0"),
        ("8:100", "ladder rung '8:100' needs an even height >= 16 and a bitrate > 0"),
        ("360:0", "ladder rung '360:0' needs an even height >= 16 and a bitrate > 0"),
        ("tall:800", "invalid literal for int"),
    ],
)
def test_bad_ladder_names_the_rung_and_the_variable(env: dict[str, str], raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_ladder(raw)
    with pytest.raises(BadRequest) as raised:
        load_settings(env | {"VODRAY_LADDER": raw})
    assert raised.value.detail.startswith(f"VODRAY_LADDER={raw!r} is not valid: ")
    assert message in raised.value.detail


# -- bad values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("VODRAY_HTTP_PORT", "eighty"),
        ("VODRAY_ACCESS_TTL_S", "15m"),
        ("VODRAY_SEGMENT_S", "four"),
        ("VODRAY_MAX_UPLOAD_MB", "1.5"),
        ("VODRAY_NUM_CPUS", "all"),
    ],
)
def test_unparseable_value_is_a_bad_request_naming_the_variable(
    env: dict[str, str], name: str, raw: str
) -> None:
    with pytest.raises(BadRequest) as raised:
        load_settings(env | {name: raw})

    assert raised.value.status_code == 400
    assert raised.value.detail.startswith(f"{name}={raw!r} is not valid: ")


def test_storage_url_must_be_file_or_s3(env: dict[str, str]) -> None:
    with pytest.raises(
        BadRequest, match="VODRAY_STORAGE_URL='http://example.com/x' must start with file:// or s3://"
    ):
        load_settings(env | {"VODRAY_STORAGE_URL": "http://example.com/x"})


# -- the JWT secret ------------------------------------------------------------------------


def test_secret_is_generated_once_and_kept_private(env: dict[str, str], tmp_path: Path) -> None:
    first = load_settings(env).auth.jwt_secret
    secret_file = tmp_path / "data" / "jwt-secret"
    mode = stat.S_IMODE(secret_file.stat().st_mode)

    second = load_settings(env).auth.jwt_secret

    assert len(first) >= 32
    assert secret_file.read_text() == first
    assert mode == 0o600
    assert second == first  # tokens survive a restart


GOOD_SECRET = "Xq3_vR8kP2-mW7nZ4bT9yL1cH6fJ5dG0sA"  # 34 characters, no repeats


def test_given_secret_is_used_and_nothing_is_written(env: dict[str, str], tmp_path: Path) -> None:
    settings = load_settings(env | {"VODRAY_JWT_SECRET": GOOD_SECRET})

    assert settings.auth.jwt_secret == GOOD_SECRET
    assert not (tmp_path / "data" / "jwt-secret").exists()


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("Xq3_vR8kP2-mW7nZ4bT9yL1cH6fJ5dG", "must be at least 32 characters"),
        # The sample ray-cluster.yaml used to ship: long enough, and public.
        (
            "change-me-to-a-long-random-string-of-48-chars-or-more",
            "looks like a placeholder (it contains 'change-me')",
        ),
        ("my-jwt-SECRET-for-the-vodray-cluster-1234", "looks like a placeholder (it contains 'secret')"),
        ("an-example-key-q8Zt3Lw0Rv7Yk2Mx5Pn9Bc4", "looks like a placeholder (it contains 'example')"),
        ("s" * 48, "is a short pattern repeated"),
        ("0123456789" * 4, "is a short pattern repeated"),
        (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
            "has too little entropy (about 7 bits, 2 distinct characters)",
        ),
        (
            "0000000000111111111122222222223333",
            "has too little entropy (about 65 bits, 4 distinct characters)",
        ),
    ],
)
def test_weak_or_placeholder_secret_is_refused_with_how_to_make_one(
    env: dict[str, str], secret: str, problem: str
) -> None:
    with pytest.raises(BadRequest) as refused:
        load_settings(env | {"VODRAY_JWT_SECRET": secret})
    assert refused.value.detail == (
        f"VODRAY_JWT_SECRET {problem}; "
        "make one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
    )


def test_secrets_made_the_documented_ways_pass() -> None:
    for _ in range(200):
        for made in (secrets.token_urlsafe(48), secrets.token_urlsafe(24), secrets.token_hex(32)):
            assert secret_problem(made) is None, made


def test_a_weak_secret_file_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    data_dir = Path(env["VODRAY_DATA_DIR"])
    data_dir.mkdir(parents=True)
    (data_dir / "jwt-secret").write_text("changeme" * 5)
    with pytest.raises(BadRequest, match="holds no usable secret: it looks like a placeholder"):
        load_settings(env)


def test_the_data_dir_is_created_owner_only(env: dict[str, str], tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        load_settings(env)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "data" / "jwt-secret").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("ACCESS_TTL_S", "-5"),
        ("SEGMENT_S", "nan"),
        ("SEGMENT_S", "0"),
        ("JOBS_IN_FLIGHT", "0"),
        ("HTTP_PORT", "70000"),
        ("TASK_RETRIES", "-1"),
        ("MAX_UPLOAD_MB", "0"),
    ],
)
def test_out_of_range_values_are_refused(env: dict[str, str], name: str, raw: str) -> None:
    with pytest.raises(BadRequest, match=f"VODRAY_{name}={raw!r} is not valid"):
        load_settings({**env, f"VODRAY_{name}": raw})


def test_duplicate_ladder_heights_are_refused() -> None:
    with pytest.raises(ValueError, match="same height"):
        parse_ladder("360:800,360:900")


def test_an_empty_secret_file_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    data_dir = Path(env["VODRAY_DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "jwt-secret").write_text("")
    with pytest.raises(BadRequest, match="holds no usable secret"):
        load_settings(env)


def test_catalog_path_is_expanded_and_absolute(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = load_settings({**env, "VODRAY_CATALOG_PATH": "~/cat.duckdb"})
    assert settings.catalog.path == tmp_path / "cat.duckdb"


def test_ingress_defaults_to_haproxy_and_accepts_serve(env: dict[str, str]) -> None:
    assert load_settings(env).http.ingress == "haproxy"
    assert load_settings({**env, "VODRAY_HTTP_INGRESS": "Serve"}).http.ingress == "serve"
    with pytest.raises(
        BadRequest, match="VODRAY_HTTP_INGRESS='nginx' is not valid: expected one of: haproxy, serve"
    ):
        load_settings({**env, "VODRAY_HTTP_INGRESS": "nginx"})


def test_limits_and_session_settings_are_read(env: dict[str, str]) -> None:
    defaults = load_settings(env)
    assert (defaults.http.uploads_per_hour, defaults.http.uploads_in_flight) == (30, 3)
    assert defaults.auth.session_ttl_s == 90 * 24 * 3600
    assert defaults.auth.client_address_header is None
    settings = load_settings(
        env
        | {
            "VODRAY_UPLOADS_IN_FLIGHT": "5",
            "VODRAY_SESSION_TTL_S": "3600",
            "VODRAY_AUTH_WINDOW_S": "60",
            "VODRAY_AUTH_ATTEMPTS_PER_USERNAME": "4",
            "VODRAY_AUTH_ATTEMPTS_PER_ADDRESS": "40",
            "VODRAY_CLIENT_ADDRESS_HEADER": "X-Forwarded-For",
            "VODRAY_PASSWORD_HASH_WORKERS": "3",
        }
    )
    assert settings.http.uploads_in_flight == 5
    auth = settings.auth
    assert (auth.session_ttl_s, auth.attempts_window_s) == (3600, 60)
    assert (auth.attempts_per_username, auth.attempts_per_address) == (4, 40)
    assert (auth.client_address_header, auth.hash_workers) == ("X-Forwarded-For", 3)


def test_long_poll_bounds_are_read_and_must_be_positive(env: dict[str, str]) -> None:
    defaults = load_settings(env).http
    assert (defaults.long_polls_per_user, defaults.long_polls_total) == (4, 64)
    http = load_settings(env | {"VODRAY_LONG_POLLS_PER_USER": "2", "VODRAY_LONG_POLLS_TOTAL": "10"}).http
    assert (http.long_polls_per_user, http.long_polls_total) == (2, 10)
    with pytest.raises(BadRequest, match="VODRAY_LONG_POLLS_TOTAL='0' is not valid"):
        load_settings(env | {"VODRAY_LONG_POLLS_TOTAL": "0"})


def test_subtitle_bounds_are_read_and_kept_inside_the_catalogs(env: dict[str, str]) -> None:
    defaults = load_settings(env).subtitles
    assert (defaults.cpu_s, defaults.max_sidecars, defaults.sidecar_posts_per_hour) == (20, 20, 60)
    subtitles = load_settings(
        env
        | {
            "VODRAY_SUBTITLE_CPU_S": "5",
            "VODRAY_MAX_SIDECARS": "3",
            "VODRAY_SIDECAR_POSTS_PER_HOUR": "7",
            "VODRAY_MAX_CUES": "50000",
        }
    ).subtitles
    assert (subtitles.cpu_s, subtitles.max_sidecars, subtitles.sidecar_posts_per_hour) == (5, 3, 7)
    assert subtitles.max_cues == 50_000
    for name, raw in [("MAX_CUES", "50001"), ("SUBTITLE_CPU_S", "0"), ("MAX_SIDECARS", "0")]:
        with pytest.raises(BadRequest, match=f"VODRAY_{name}='{raw}' is not valid"):
            load_settings(env | {f"VODRAY_{name}": raw})


def test_resumable_upload_expiry_and_sweep_are_read_and_must_be_positive(env: dict[str, str]) -> None:
    defaults = load_settings(env).http
    assert (defaults.upload_expiry_s, defaults.upload_sweep_s) == (24 * 3600, 60.0)
    given = load_settings(env | {"VODRAY_UPLOAD_EXPIRY_S": "3", "VODRAY_UPLOAD_SWEEP_S": "0.5"}).http
    assert (given.upload_expiry_s, given.upload_sweep_s) == (3, 0.5)
    for name, value in (("UPLOAD_EXPIRY_S", "0"), ("UPLOAD_EXPIRY_S", "1.5"), ("UPLOAD_SWEEP_S", "-1")):
        with pytest.raises(BadRequest, match=f"VODRAY_{name}={value!r} is not valid"):
            load_settings(env | {f"VODRAY_{name}": value})
