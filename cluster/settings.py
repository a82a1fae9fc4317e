"""One frozen settings object, one dataclass per area, every field from a ``VODRAY_*`` variable.

Units are in the names (``_S`` seconds, ``_MB`` megabytes, ``_KBPS`` kilobits per second).
Settings are read once in the driver (CLI, tests) and passed to actors and tasks, so every
node of a cluster works from the same values whatever its own environment says.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from cluster.errors import BadRequest

T = TypeVar("T")

JWT_ALGORITHM = "HS256"
"""The one algorithm access and refresh tokens are signed and checked with."""
CHUNK_STRATEGIES = ("split", "per-rendition")
"""How a chunk is encoded: one task decoding once for every rendition, or one task per rendition."""
INGRESSES = ("haproxy", "serve")
"""What takes HTTP in front of the API replicas: Serve's HAProxy ingress or its Python proxy."""
SMTP_SECURITIES = ("none", "starttls", "tls")
"""How the mailer talks to the SMTP server: in the clear, upgraded with STARTTLS, or TLS from the start."""
SMTP_DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}
WEBHOOK_RETRY_SCHEDULE_S = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0)
"""Standard Webhooks' schedule: the wait before each attempt (immediately, 5 s, 5 min, 30 min,
2 h, 5 h, 10 h, 14 h, 20 h, 24 h), each with jitter."""


def _env(env: Mapping[str, str], name: str, default: T, cast: Callable[[str], T]) -> T:
    raw = env.get(f"VODRAY_{name}")
    if raw is None or raw == "":
        return default
    try:
        return cast(raw)
    except ValueError as exc:
        raise BadRequest(f"VODRAY_{name}={raw!r} is not valid: {exc}") from exc


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("expected a whole number above 0")
    return value


def _cue_limit(raw: str) -> int:
    value = _positive_int(raw)
    if value > 50_000:  # catalog.validation.MAX_CUES_PER_TRACK (cluster imports no catalog code)
        raise ValueError("expected at most 50000 (the catalog keeps at most 50,000 cues a track)")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("expected a whole number of 0 or more")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("expected a number above 0")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 65535:
        raise ValueError("expected a port from 1 to 65535")
    return value


def _ingress(raw: str) -> str:
    value = raw.strip().lower()
    if value not in INGRESSES:
        raise ValueError(f"expected one of: {', '.join(INGRESSES)}")
    return value


def _chunk_strategy(raw: str) -> str:
    value = raw.strip().lower()
    if value not in CHUNK_STRATEGIES:
        raise ValueError(f"expected one of: {', '.join(CHUNK_STRATEGIES)}")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value < 0:
        raise ValueError("expected a number of 0 or more")
    return value


def _path(raw: str) -> Path:
    return Path(raw).expanduser().resolve()


def parse_languages(raw: str) -> tuple[str, ...]:
    """``"es, fr"`` -> ``("es", "fr")``: lower-case language codes, each once, in order."""
    codes: list[str] = []
    for item in raw.split(","):
        code = item.strip().lower()
        if not code:
            continue
        if not (2 <= len(code) <= 3 and code.isascii() and code.isalpha()):
            raise ValueError(f"{item.strip()!r} is not a language code like es or fr")
        if code not in codes:
            codes.append(code)
    return tuple(codes)


@dataclass(frozen=True)
class Rung:
    """One rung of the encoding ladder: output height and video bitrate."""

    height: int
    video_kbps: int

    @property
    def name(self) -> str:
        return f"{self.height}p"


DEFAULT_LADDER = "360:800,480:1200,720:2400,1080:4500"


def parse_ladder(raw: str) -> tuple[Rung, ...]:
    """``"360:800,720:2400"`` -> rungs sorted by height (height in px, bitrate in kbps)."""
    rungs = []
    for item in raw.split(","):
        height, _, kbps = item.strip().partition(":")
        if not kbps:
            raise ValueError(f"ladder rung {item!r} is not HEIGHT:KBPS")
        rung = Rung(int(height), int(kbps))
        if rung.height < 16 or rung.height % 2 or rung.video_kbps <= 0:
            raise ValueError(f"ladder rung {item!r} needs an even height >= 16 and a bitrate > 0")
        rungs.append(rung)
    if len({r.height for r in rungs}) != len(rungs):
        raise ValueError("two ladder rungs have the same height")
    return tuple(sorted(rungs, key=lambda r: r.height))


def default_data_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "vodray"


@dataclass(frozen=True)
class StorageSettings:
    url: str
    """VODRAY_STORAGE_URL: root of all files, ``file:///path`` or ``s3://bucket/prefix``."""
    s3_endpoint_url: str | None = None
    """VODRAY_S3_ENDPOINT_URL: S3 endpoint other than AWS (MinIO, a test server)."""
    upload_concurrency: int = 32
    """VODRAY_UPLOAD_CONCURRENCY: parallel PUTs in one upload task (and its connection pool)."""
    upload_batch_files: int = 250
    """VODRAY_UPLOAD_BATCH_FILES: segments one upload task publishes."""
    upload_tasks: int = 2
    """VODRAY_UPLOAD_TASKS: upload tasks of one title running at once."""
    upload_attempts: int = 5
    """VODRAY_UPLOAD_ATTEMPTS: tries of one PUT, with backoff, around botocore's own retries."""
    presign_ttl_s: int = 3600
    """VODRAY_PRESIGN_TTL_S: lifetime of presigned media URLs in S3 mode."""


@dataclass(frozen=True)
class CatalogSettings:
    path: Path
    """VODRAY_CATALOG_PATH: the DuckDB file (one writer: the catalog actor)."""
    retry_s: float = 120.0
    """VODRAY_CATALOG_RETRY_S: how long jobs, the dispatcher, backfills and the CLI retry a catalog
    call while the catalog actor restarts (a restart takes seconds; rebuilding a lost search
    index of a large catalog, minutes)."""
    api_wait_s: float = 10.0
    """VODRAY_CATALOG_API_WAIT_S: how long an API request waits for a restarting catalog before
    it answers 503 with Retry-After."""


@dataclass(frozen=True)
class AuthSettings:
    jwt_secret: str = field(repr=False)
    """VODRAY_JWT_SECRET: HMAC key for tokens; generated and kept in the data dir if unset."""
    access_ttl_s: int = 900
    """VODRAY_ACCESS_TTL_S: lifetime of an access token."""
    refresh_ttl_s: int = 30 * 24 * 3600
    """VODRAY_REFRESH_TTL_S: lifetime of a refresh token."""
    session_ttl_s: int = 90 * 24 * 3600
    """VODRAY_SESSION_TTL_S: absolute lifetime of a login; refreshing never extends it."""
    attempts_window_s: int = 300
    """VODRAY_AUTH_WINDOW_S: sliding window of the login/registration throttles."""
    attempts_per_username: int = 10
    """VODRAY_AUTH_ATTEMPTS_PER_USERNAME: failed (or unfinished) logins, and registrations, per
    username per window."""
    attempts_per_address: int = 100
    """VODRAY_AUTH_ATTEMPTS_PER_ADDRESS: logins and registrations per client address per window."""
    client_address_header: str | None = None
    """VODRAY_CLIENT_ADDRESS_HEADER: header naming the client (last entry), set by a trusted load
    balancer in front, e.g. ``X-Forwarded-For``; unset: the connection's peer."""
    hash_workers: int = 2
    """VODRAY_PASSWORD_HASH_WORKERS: argon2 hashes computed at once per API replica."""


@dataclass(frozen=True)
class HttpSettings:
    host: str = "127.0.0.1"
    """VODRAY_HTTP_HOST: address the Serve proxy listens on."""
    port: int = 8000
    """VODRAY_HTTP_PORT: port the Serve proxy listens on."""
    ingress: str = "haproxy"
    """VODRAY_HTTP_INGRESS: ``haproxy`` (bodies stream through bounded buffers; Linux, or
    ``haproxy`` on PATH) or ``serve`` (Serve's Python proxy: holds what a fast upload sends)."""
    max_upload_mb: int = 4096
    """VODRAY_MAX_UPLOAD_MB: largest accepted upload."""
    uploads_per_hour: int = 30
    """VODRAY_UPLOADS_PER_HOUR: uploads one user may start in any rolling hour (deleted and
    failed ones count)."""
    uploads_in_flight: int = 3
    """VODRAY_UPLOADS_IN_FLIGHT: uploads of one user streaming, queued or processing at once."""
    upload_expiry_s: int = 24 * 3600
    """VODRAY_UPLOAD_EXPIRY_S: a resumable upload (``/v1/uploads``) that receives no byte for this
    long is removed and its slot freed; a finished one is forgotten this long after its last byte."""
    upload_sweep_s: float = 60.0
    """VODRAY_UPLOAD_SWEEP_S: how often the dispatcher removes expired resumable uploads."""
    max_wait_s: int = 30
    """VODRAY_MAX_WAIT_S: longest long-poll a status request may ask for."""
    long_polls_per_user: int = 4
    """VODRAY_LONG_POLLS_PER_USER: status long polls one user may hold at once (per API replica)."""
    long_polls_total: int = 64
    """VODRAY_LONG_POLLS_TOTAL: status long polls one API replica holds at once, all users together."""
    api_replicas: int = 2
    """VODRAY_API_REPLICAS: API replicas (Serve) behind the ingress; with two or more, a replica
    that dies costs only the requests it was answering."""

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024


@dataclass(frozen=True)
class PipelineSettings:
    ladder: tuple[Rung, ...] = parse_ladder(DEFAULT_LADDER)
    """VODRAY_LADDER: renditions as HEIGHT:KBPS pairs, e.g. ``360:800,720:2400``."""
    segment_s: float = 4.0
    """VODRAY_SEGMENT_S: CMAF segment length; every segment starts on a keyframe."""
    max_fps: float = 30.0
    """VODRAY_MAX_FPS: sources above this frame rate are encoded at it."""
    max_duration_s: float = 4 * 3600.0
    """VODRAY_MAX_DURATION_S: longest source accepted."""
    max_height_px: int = 4320
    """VODRAY_MAX_HEIGHT_PX: tallest/widest source dimension accepted."""
    x264_preset: str = "veryfast"
    """VODRAY_X264_PRESET: libx264 speed/quality trade-off."""
    audio_kbps: int = 128
    """VODRAY_AUDIO_KBPS: AAC bitrate of the stream's audio."""
    mp3_kbps: int = 192
    """VODRAY_MP3_KBPS: bitrate of the MP3 download."""
    jobs_in_flight: int = 2
    """VODRAY_JOBS_IN_FLIGHT: videos the dispatcher processes at once."""
    task_retries: int = 2
    """VODRAY_TASK_RETRIES: retries of a pipeline task after a worker dies."""
    job_attempts: int = 3
    """VODRAY_JOB_ATTEMPTS: runs of one job (first run, resumes, retries) before it is failed."""
    chunk_s: float = 0.0
    """VODRAY_CHUNK_S: encode chunk length, rounded to whole segments; 0 picks it from the title's
    duration and the cluster's CPUs."""
    chunk_strategy: str = "split"
    """VODRAY_CHUNK_STRATEGY: ``split`` (one task per chunk, decoded once for every rendition)
    or ``per-rendition`` (one task per chunk and rendition)."""
    encode_threads: int = 1
    """VODRAY_ENCODE_THREADS: CPUs one encode task reserves, and the x264 threads it runs."""
    scratch_sweep_s: float = 600.0
    """VODRAY_SCRATCH_SWEEP_S: how often the dispatcher removes, on every node, the temp dirs of
    tasks whose worker was killed (``cluster.scratch``)."""


@dataclass(frozen=True)
class SubtitleSettings:
    models_dir: Path
    """VODRAY_MODELS_DIR: installed Argos Translate models (``vodray models install``)."""
    translate_to: tuple[str, ...] = ()
    """VODRAY_TRANSLATE_TO: languages every video's subtitles are translated to, e.g. ``es,fr``."""
    translate_batch_cues: int = 16
    """VODRAY_TRANSLATE_BATCH_CUES: cues per CTranslate2 batch (16 cost 10-16% less CPU per cue
    than 32 with MKL and oneDNN, and no more on AVX2; ``benchmarks/translate.py``)."""
    translate_beam: int = 4
    """VODRAY_TRANSLATE_BEAM: beam width; 4 is argostranslate's (same output), 1-2 is faster."""
    translate_threads: int = 0
    """VODRAY_TRANSLATE_THREADS: translator workers, each a batch on one core; 0: one per CPU."""
    max_subtitle_mb: int = 10
    """VODRAY_MAX_SUBTITLE_MB: largest subtitle file read; a bigger one is skipped with a warning."""
    max_cues: int = 20_000
    """VODRAY_MAX_CUES: cues kept per track (at most 50,000, the catalog's limit); the rest are
    dropped and counted."""
    cpu_s: int = 20
    """VODRAY_SUBTITLE_CPU_S: CPU seconds one subtitle file may take to read (its child process
    is stopped past it, and the file refused)."""
    max_sidecars: int = 20
    """VODRAY_MAX_SIDECARS: subtitle files (languages) one video may keep; a file of a language
    it has replaces that one."""
    sidecar_posts_per_hour: int = 60
    """VODRAY_SIDECAR_POSTS_PER_HOUR: subtitle files one user may send in any rolling hour."""


def _retry_schedule(raw: str) -> tuple[float, ...]:
    waits = tuple(_non_negative_float(item.strip()) for item in raw.split(",") if item.strip())
    if not waits:
        raise ValueError("expected comma-separated seconds, e.g. 0,5,300")
    if waits[0] != 0:
        raise ValueError("the first wait must be 0: an event is sent at once, the others are retries")
    return waits


def _switch(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected 1 or 0 (true or false)")


def _networks(raw: str) -> tuple[str, ...]:
    import ipaddress

    return tuple(str(ipaddress.ip_network(item.strip())) for item in raw.split(",") if item.strip())


def _smtp_security(raw: str) -> str:
    value = raw.strip().lower()
    if value not in SMTP_SECURITIES:
        raise ValueError(f"expected one of: {', '.join(SMTP_SECURITIES)}")
    return value


def _public_url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    return value


@dataclass(frozen=True)
class NotifySettings:
    """Events sent as webhooks and emails (``pipelines.notify``)."""

    public_url: str
    """VODRAY_PUBLIC_URL: where people and programs reach the API, for the links in events and
    mails (default: the API's own host and port)."""
    webhooks_per_user: int = 10
    """VODRAY_WEBHOOKS_PER_USER: webhook endpoints one user may register."""
    retry_schedule_s: tuple[float, ...] = WEBHOOK_RETRY_SCHEDULE_S
    """VODRAY_WEBHOOK_RETRY_SCHEDULE_S: the wait before each attempt of a webhook or mail, in
    seconds, comma-separated; its length is the number of attempts."""
    timeout_s: float = 15.0
    """VODRAY_WEBHOOK_TIMEOUT_S: longest one webhook request may take, connecting included."""
    allow_private: bool = False
    """VODRAY_WEBHOOK_ALLOW_PRIVATE: let webhooks reach loopback and private addresses (tests,
    closed networks); link-local, multicast and unspecified addresses stay refused."""
    networks: tuple[str, ...] = ()
    """VODRAY_WEBHOOK_NETWORKS: if set, the only networks webhooks may reach (CIDRs,
    comma-separated), on top of the address rules."""
    concurrency: int = 32
    """VODRAY_WEBHOOK_CONCURRENCY: webhook requests in flight at once, all endpoints together."""
    concurrency_per_endpoint: int = 2
    """VODRAY_WEBHOOK_CONCURRENCY_PER_ENDPOINT: requests in flight to one endpoint at once."""
    poll_s: float = 5.0
    """VODRAY_NOTIFY_POLL_S: how often the notifier looks at the outbox when nothing woke it."""
    smtp_host: str | None = None
    """VODRAY_SMTP_HOST: the SMTP server mails go through; unset, no mail is sent."""
    smtp_port: int = 0
    """VODRAY_SMTP_PORT: its port (default by security: 25, 587 with starttls, 465 with tls)."""
    smtp_security: str = "starttls"
    """VODRAY_SMTP_SECURITY: ``none``, ``starttls`` or ``tls``."""
    smtp_user: str | None = None
    """VODRAY_SMTP_USER: user name to log in to the SMTP server with, if it wants one."""
    smtp_password: str | None = field(default=None, repr=False)
    """VODRAY_SMTP_PASSWORD: its password."""
    mail_from: str = "vodray <vodray@localhost>"
    """VODRAY_MAIL_FROM: the From of every mail."""

    @property
    def mail_enabled(self) -> bool:
        return bool(self.smtp_host)

    @property
    def smtp_port_or_default(self) -> int:
        return self.smtp_port or SMTP_DEFAULT_PORTS[self.smtp_security]


@dataclass(frozen=True)
class RaySettings:
    address: str | None = None
    """VODRAY_RAY_ADDRESS: an existing cluster (``auto``, ``ray://...``); unset starts Ray here."""
    namespace: str = "vodray"
    """VODRAY_RAY_NAMESPACE: namespace of the named actors."""
    dashboard_host: str = "127.0.0.1"
    """VODRAY_DASHBOARD_HOST: address of the dashboard of an embedded Ray."""
    dashboard_port: int = 8265
    """VODRAY_DASHBOARD_PORT: port of the dashboard of an embedded Ray."""
    num_cpus: int | None = None
    """VODRAY_NUM_CPUS: CPUs an embedded Ray may use (default: all)."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    storage: StorageSettings
    catalog: CatalogSettings
    auth: AuthSettings
    http: HttpSettings
    pipeline: PipelineSettings
    ray: RaySettings
    subtitles: SubtitleSettings
    notify: NotifySettings


SECRET_MIN_CHARS = 32
SECRET_MIN_BITS = 80.0
"""Least estimated entropy of a JWT secret: characters times their Shannon entropy."""
SECRET_PLACEHOLDERS = ("change-me", "changeme", "change_me", "secret", "example", "placeholder", "password")
MAKE_A_SECRET = "make one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"


def secret_problem(secret: str) -> str | None:
    """Why ``secret`` is not fit to sign tokens (a placeholder, too short, too little entropy), or None."""
    if len(secret) < SECRET_MIN_CHARS:
        return f"must be at least {SECRET_MIN_CHARS} characters"
    lowered = secret.lower()
    for word in SECRET_PLACEHOLDERS:
        if word in lowered:
            return f"looks like a placeholder (it contains {word!r})"
    # A short unit repeated ("abcabc...", "0123456789" * 4) is as guessable as the unit.
    if secret in (secret + secret)[1:-1]:
        return "is a short pattern repeated"
    counts = [secret.count(char) for char in set(secret)]
    bits = -sum(n * math.log2(n / len(secret)) for n in counts)
    if len(counts) < 8 or bits < SECRET_MIN_BITS:
        return f"has too little entropy (about {bits:.0f} bits, {len(counts)} distinct characters)"
    return None


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) owner-only (0700); a directory that exists is left as is."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            return path
        path.chmod(0o700)  # mkdir's mode is filtered through the umask
    return path


def _secret(env: Mapping[str, str], data_dir: Path) -> str:
    given = env.get("VODRAY_JWT_SECRET")
    if given:
        if problem := secret_problem(given):
            raise BadRequest(f"VODRAY_JWT_SECRET {problem}; {MAKE_A_SECRET}")
        return given
    # First local run: make one and keep it, so tokens survive restarts.
    path = data_dir / "jwt-secret"
    if not path.exists():
        private_dir(data_dir)
        # Written whole under a temp name, then linked into place: a crash never leaves an
        # empty secret, and of two first runs at once the second simply reads the first's.
        tmp = data_dir / f".jwt-secret.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    secret = path.read_text().strip()
    if not secret:
        raise BadRequest(f"{path} holds no usable secret; delete it or set VODRAY_JWT_SECRET")
    if problem := secret_problem(secret):
        raise BadRequest(f"{path} holds no usable secret: it {problem}; delete it or {MAKE_A_SECRET}")
    return secret


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read every setting from ``env`` (default: ``os.environ``)."""
    env = os.environ if env is None else env
    data_dir = Path(env.get("VODRAY_DATA_DIR") or default_data_dir(env)).expanduser().resolve()
    e = lambda name, default, cast: _env(env, name, default, cast)  # noqa: E731
    pipeline_defaults = PipelineSettings()
    http_defaults = HttpSettings()
    ray_defaults = RaySettings()
    storage_url = e("STORAGE_URL", (data_dir / "store").as_uri(), str).rstrip("/")
    if not storage_url.startswith(("file://", "s3://")):
        raise BadRequest(f"VODRAY_STORAGE_URL={storage_url!r} must start with file:// or s3://")
    return Settings(
        data_dir=data_dir,
        storage=StorageSettings(
            url=storage_url,
            s3_endpoint_url=e("S3_ENDPOINT_URL", None, str),
            upload_concurrency=e("UPLOAD_CONCURRENCY", StorageSettings.upload_concurrency, _positive_int),
            upload_batch_files=e("UPLOAD_BATCH_FILES", StorageSettings.upload_batch_files, _positive_int),
            upload_tasks=e("UPLOAD_TASKS", StorageSettings.upload_tasks, _positive_int),
            upload_attempts=e("UPLOAD_ATTEMPTS", StorageSettings.upload_attempts, _positive_int),
            presign_ttl_s=e("PRESIGN_TTL_S", StorageSettings.presign_ttl_s, _positive_int),
        ),
        catalog=CatalogSettings(
            path=e("CATALOG_PATH", data_dir / "catalog.duckdb", _path),
            retry_s=e("CATALOG_RETRY_S", CatalogSettings.retry_s, _positive_float),
            api_wait_s=e("CATALOG_API_WAIT_S", CatalogSettings.api_wait_s, _positive_float),
        ),
        auth=AuthSettings(
            jwt_secret=_secret(env, data_dir),
            access_ttl_s=e("ACCESS_TTL_S", AuthSettings.access_ttl_s, _positive_int),
            refresh_ttl_s=e("REFRESH_TTL_S", AuthSettings.refresh_ttl_s, _positive_int),
            session_ttl_s=e("SESSION_TTL_S", AuthSettings.session_ttl_s, _positive_int),
            attempts_window_s=e("AUTH_WINDOW_S", AuthSettings.attempts_window_s, _positive_int),
            attempts_per_username=e(
                "AUTH_ATTEMPTS_PER_USERNAME", AuthSettings.attempts_per_username, _positive_int
            ),
            attempts_per_address=e(
                "AUTH_ATTEMPTS_PER_ADDRESS", AuthSettings.attempts_per_address, _positive_int
            ),
            client_address_header=e("CLIENT_ADDRESS_HEADER", AuthSettings.client_address_header, str),
            hash_workers=e("PASSWORD_HASH_WORKERS", AuthSettings.hash_workers, _positive_int),
        ),
        http=HttpSettings(
            host=e("HTTP_HOST", http_defaults.host, str),
            port=e("HTTP_PORT", http_defaults.port, _port),
            ingress=e("HTTP_INGRESS", http_defaults.ingress, _ingress),
            max_upload_mb=e("MAX_UPLOAD_MB", http_defaults.max_upload_mb, _positive_int),
            uploads_per_hour=e("UPLOADS_PER_HOUR", http_defaults.uploads_per_hour, _positive_int),
            uploads_in_flight=e("UPLOADS_IN_FLIGHT", http_defaults.uploads_in_flight, _positive_int),
            upload_expiry_s=e("UPLOAD_EXPIRY_S", http_defaults.upload_expiry_s, _positive_int),
            upload_sweep_s=e("UPLOAD_SWEEP_S", http_defaults.upload_sweep_s, _positive_float),
            max_wait_s=e("MAX_WAIT_S", http_defaults.max_wait_s, _non_negative_int),
            long_polls_per_user=e("LONG_POLLS_PER_USER", http_defaults.long_polls_per_user, _positive_int),
            long_polls_total=e("LONG_POLLS_TOTAL", http_defaults.long_polls_total, _positive_int),
            api_replicas=e("API_REPLICAS", http_defaults.api_replicas, _positive_int),
        ),
        pipeline=PipelineSettings(
            ladder=e("LADDER", pipeline_defaults.ladder, parse_ladder),
            segment_s=e("SEGMENT_S", pipeline_defaults.segment_s, _positive_float),
            max_fps=e("MAX_FPS", pipeline_defaults.max_fps, _positive_float),
            max_duration_s=e("MAX_DURATION_S", pipeline_defaults.max_duration_s, _positive_float),
            max_height_px=e("MAX_HEIGHT_PX", pipeline_defaults.max_height_px, _positive_int),
            x264_preset=e("X264_PRESET", pipeline_defaults.x264_preset, str),
            audio_kbps=e("AUDIO_KBPS", pipeline_defaults.audio_kbps, _positive_int),
            mp3_kbps=e("MP3_KBPS", pipeline_defaults.mp3_kbps, _positive_int),
            jobs_in_flight=e("JOBS_IN_FLIGHT", pipeline_defaults.jobs_in_flight, _positive_int),
            task_retries=e("TASK_RETRIES", pipeline_defaults.task_retries, _non_negative_int),
            job_attempts=e("JOB_ATTEMPTS", pipeline_defaults.job_attempts, _positive_int),
            chunk_s=e("CHUNK_S", pipeline_defaults.chunk_s, _non_negative_float),
            chunk_strategy=e("CHUNK_STRATEGY", pipeline_defaults.chunk_strategy, _chunk_strategy),
            encode_threads=e("ENCODE_THREADS", pipeline_defaults.encode_threads, _positive_int),
            scratch_sweep_s=e("SCRATCH_SWEEP_S", pipeline_defaults.scratch_sweep_s, _positive_float),
        ),
        ray=RaySettings(
            address=e("RAY_ADDRESS", ray_defaults.address, str),
            namespace=e("RAY_NAMESPACE", ray_defaults.namespace, str),
            dashboard_host=e("DASHBOARD_HOST", ray_defaults.dashboard_host, str),
            dashboard_port=e("DASHBOARD_PORT", ray_defaults.dashboard_port, _port),
            num_cpus=e("NUM_CPUS", ray_defaults.num_cpus, _positive_int),
        ),
        subtitles=SubtitleSettings(
            models_dir=e("MODELS_DIR", data_dir / "models", _path),
            translate_to=e("TRANSLATE_TO", SubtitleSettings.translate_to, parse_languages),
            translate_batch_cues=e(
                "TRANSLATE_BATCH_CUES", SubtitleSettings.translate_batch_cues, _positive_int
            ),
            translate_beam=e("TRANSLATE_BEAM", SubtitleSettings.translate_beam, _positive_int),
            translate_threads=e("TRANSLATE_THREADS", SubtitleSettings.translate_threads, _non_negative_int),
            max_subtitle_mb=e("MAX_SUBTITLE_MB", SubtitleSettings.max_subtitle_mb, _positive_int),
            max_cues=e("MAX_CUES", SubtitleSettings.max_cues, _cue_limit),
            cpu_s=e("SUBTITLE_CPU_S", SubtitleSettings.cpu_s, _positive_int),
            max_sidecars=e("MAX_SIDECARS", SubtitleSettings.max_sidecars, _positive_int),
            sidecar_posts_per_hour=e(
                "SIDECAR_POSTS_PER_HOUR", SubtitleSettings.sidecar_posts_per_hour, _positive_int
            ),
        ),
        notify=_notify_settings(env, _default_public_url(env)),
    )


def _default_public_url(env: Mapping[str, str]) -> str:
    host = env.get("VODRAY_HTTP_HOST") or HttpSettings.host
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://{f'[{host}]' if ':' in host else host}:{_env(env, 'HTTP_PORT', HttpSettings.port, _port)}"


def _notify_settings(env: Mapping[str, str], public_url: str) -> NotifySettings:
    e = lambda name, default, cast: _env(env, name, default, cast)  # noqa: E731
    d = NotifySettings
    return NotifySettings(
        public_url=e("PUBLIC_URL", public_url, _public_url),
        webhooks_per_user=e("WEBHOOKS_PER_USER", d.webhooks_per_user, _positive_int),
        retry_schedule_s=e("WEBHOOK_RETRY_SCHEDULE_S", d.retry_schedule_s, _retry_schedule),
        timeout_s=e("WEBHOOK_TIMEOUT_S", d.timeout_s, _positive_float),
        allow_private=e("WEBHOOK_ALLOW_PRIVATE", d.allow_private, _switch),
        networks=e("WEBHOOK_NETWORKS", d.networks, _networks),
        concurrency=e("WEBHOOK_CONCURRENCY", d.concurrency, _positive_int),
        concurrency_per_endpoint=e(
            "WEBHOOK_CONCURRENCY_PER_ENDPOINT", d.concurrency_per_endpoint, _positive_int
        ),
        poll_s=e("NOTIFY_POLL_S", d.poll_s, _positive_float),
        smtp_host=e("SMTP_HOST", d.smtp_host, str),
        smtp_port=e("SMTP_PORT", d.smtp_port, _port),
        smtp_security=e("SMTP_SECURITY", d.smtp_security, _smtp_security),
        smtp_user=e("SMTP_USER", d.smtp_user, str),
        smtp_password=e("SMTP_PASSWORD", d.smtp_password, str),
        mail_from=e("MAIL_FROM", d.mail_from, str),
    )
