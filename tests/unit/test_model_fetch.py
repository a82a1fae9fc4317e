"""``vodray models install URL`` against real local HTTP and HTTPS servers (a self-signed
certificate made by openssl, trusted through SSL_CERT_FILE for the test): https only unless
--allow-http, --sha256, redirects to the same host only, one deadline for the whole download,
and no control characters printed from a package."""

from __future__ import annotations

import functools
import hashlib
import json
import ssl
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from cluster.cli import main
from cluster.errors import BadRequest, PayloadTooLarge
from pipelines.subtitles.fetch import fetch_package, printable
from pipelines.subtitles.models import install_from, list_models
from tests.argos_model import build_argos_package

EVIL_VERSION = "1.0\x1b[2J\x1b]0;owned\x07\u202etxt.exe\r\nfake line"


class Handler(BaseHTTPRequestHandler):
    """Routes of the test servers; ``other`` is the base URL of the other server."""

    def __init__(self, *args: object, files: dict[str, bytes], other: list[str], **kwargs: object) -> None:
        self.files, self.other = files, other
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def log_message(self, *args: object) -> None:
        pass

    def _redirect(self, to: str) -> None:
        self.send_response(302)
        self.send_header("Location", to)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        host, port = self.server.server_address[:2]
        path = self.path
        if path in self.files:
            body = self.files[path]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif path == "/hop":
            self._redirect("/package.argosmodel")
        elif path == "/away":  # the same server under another name: another host
            self._redirect(f"{self.other[0].split('://')[0]}://localhost:{port}/package.argosmodel")
        elif path == "/down":
            self._redirect(f"{self.other[1]}/package.argosmodel")
        elif path == "/loop":
            self._redirect("/loop")
        elif path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", str(10**9))
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"x" * 100)
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                return
        else:
            self.send_response(404, "Not \x1b[31mFound")
            self.send_header("Content-Length", "0")
            self.end_headers()


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real tiny en->es package whose package_version holds control characters."""
    root = tmp_path_factory.mktemp("pkg")
    built = build_argos_package(root / "built.argosmodel")
    evil = root / "evil.argosmodel"
    with zipfile.ZipFile(built) as source, zipfile.ZipFile(evil, "w") as out:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.endswith("metadata.json"):
                data = json.dumps({**json.loads(data), "package_version": EVIL_VERSION}).encode()
            out.writestr(item, data)
    return evil.read_bytes()


@pytest.fixture(scope="module")
def servers(package: bytes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """(https base URL, http base URL, the certificate the client must trust)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    files = {"/package.argosmodel": package}
    bases: list[str] = []
    handler = functools.partial(Handler, files=files, other=bases)
    secure = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    secure.socket = context.wrap_socket(secure.socket, server_side=True)
    plain = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    bases += [f"https://127.0.0.1:{secure.server_address[1]}", f"http://127.0.0.1:{plain.server_address[1]}"]
    for server in (secure, plain):
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield bases[0], bases[1], cert
    finally:
        for server in (secure, plain):
            server.shutdown()
            server.server_close()


@pytest.fixture
def trusted(servers: tuple[str, str, Path], monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    monkeypatch.setenv("SSL_CERT_FILE", str(servers[2]))
    return servers[0], servers[1]


def test_https_with_the_right_sha256_installs_and_prints_no_control_characters(
    trusted: tuple[str, str], package: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    https, _ = trusted
    monkeypatch.setenv("VODRAY_DATA_DIR", str(tmp_path))
    sha = hashlib.sha256(package).hexdigest()
    result = CliRunner().invoke(main, ["models", "install", f"{https}/hop", "--sha256", sha.upper()])
    assert result.exit_code == 0, result.output
    line = result.output.strip()
    assert line.startswith("installed en->es (version 1.0[2J]0;ownedtxt.exefake line) in ")
    assert not [c for c in line if ord(c) < 32 or c in "\x7f\u202e"], repr(line)
    listed = CliRunner().invoke(main, ["models", "list"])
    assert listed.exit_code == 0 and "\x1b" not in listed.output and "en->es\t1.0[2J]" in listed.output


def test_a_wrong_sha256_installs_nothing(trusted: tuple[str, str], package: bytes, tmp_path: Path) -> None:
    https, _ = trusted
    with pytest.raises(BadRequest, match="SHA-256 is .* not the 0{64} expected"):
        install_from(f"{https}/package.argosmodel", tmp_path / "models", sha256="0" * 64)
    with pytest.raises(BadRequest, match="64 hexadecimal digits"):
        install_from(f"{https}/package.argosmodel", tmp_path / "models", sha256="abc")
    local = tmp_path / "local.argosmodel"
    local.write_bytes(package)
    with pytest.raises(BadRequest, match="SHA-256"):
        install_from(str(local), tmp_path / "models", sha256="1" * 64)
    assert list_models(tmp_path / "models") == []
    assert (
        install_from(str(local), tmp_path / "models", sha256=hashlib.sha256(package).hexdigest()).pair
        == "en->es"
    )


def test_plain_http_only_when_allowed(trusted: tuple[str, str], tmp_path: Path) -> None:
    _, http = trusted
    with pytest.raises(BadRequest, match="only https URLs are installed"):
        install_from(f"{http}/package.argosmodel", tmp_path / "models")
    assert list_models(tmp_path / "models") == []
    assert install_from(f"{http}/package.argosmodel", tmp_path / "models", allow_http=True).pair == "en->es"


@pytest.mark.parametrize(
    ("path", "refusal"),
    [
        ("/away", "redirected to another host"),
        ("/down", "redirected from https to http"),
        ("/loop", "more than 5 redirects"),
        ("/missing", r"HTTP 404 Not \[31mFound$"),
    ],
)
def test_redirects_leave_neither_the_host_nor_https(
    trusted: tuple[str, str], tmp_path: Path, path: str, refusal: str
) -> None:
    https, _ = trusted
    with pytest.raises(BadRequest, match=refusal):
        install_from(f"{https}{path}", tmp_path / "models", allow_http=True)
    assert list_models(tmp_path / "models") == []


def test_one_deadline_for_the_whole_download(trusted: tuple[str, str], tmp_path: Path) -> None:
    """A server that keeps sending a little (no single read stalls) is cut at the deadline."""
    https, _ = trusted
    started = time.monotonic()
    with pytest.raises(BadRequest, match="took longer than 2 s"):
        install_from(f"{https}/trickle", tmp_path / "models", timeout_s=2)
    assert time.monotonic() - started < 5
    with pytest.raises(PayloadTooLarge):
        fetch_package(f"{https}/trickle", tmp_path / "big", max_bytes=1000, timeout_s=30)


def test_printable_drops_control_and_format_characters() -> None:
    assert printable("a\x1b[31mb\u202ec\x00d\te\u200b") == "a[31mbcde"
    assert printable("é ñ 字") == "é ñ 字"
    assert printable("x" * 500, max_chars=10) == "x" * 10
