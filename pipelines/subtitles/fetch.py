"""Fetching a translation model package for ``vodray models install URL``: strict on purpose.

Every translation runs what a package holds, so the fetch trusts as little as it can:

- ``https`` only; plain ``http`` only when the operator says so (``--allow-http``), e.g. a
  mirror on a private network, ideally with ``--sha256``;
- redirects only to the same host (and port), never from ``https`` down to ``http``, at most 5:
  a package host cannot hand the download to a host nobody named;
- one deadline for the whole download (``--timeout-s``), not one per read, so a server that
  trickles a byte at a time cannot hold the command for ever (a single read that stalls for
  ``READ_STALL_S`` fails too);
- at most ``max_bytes``, and, with ``--sha256``, the exact file expected (for a path as well);
- whatever is printed from a package or a server (``package_version``, a reason phrase) has its
  control characters removed (``printable``), so a package cannot write to the terminal.
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from cluster.errors import BadRequest, PayloadTooLarge

DEFAULT_TIMEOUT_S = 900.0
"""The whole download of one package (real Argos packages are 50-200 MB)."""
READ_STALL_S = 15.0
MAX_REDIRECTS = 5
_SHA256 = re.compile(r"[0-9a-f]{64}")


def printable(text: str, max_chars: int = 200) -> str:
    """``text`` without control or format characters (ANSI escapes, bidi overrides), cut short."""
    kept = "".join(c for c in str(text) if unicodedata.category(c) not in ("Cc", "Cf"))
    return kept[:max_chars]


def check_sha256_text(sha256: str | None) -> str | None:
    """A SHA-256 as 64 lower-case hex digits, or ``BadRequest``."""
    if sha256 is None:
        return None
    value = sha256.strip().lower()
    if not _SHA256.fullmatch(value):
        raise BadRequest("--sha256 must be 64 hexadecimal digits")
    return value


def verify_sha256(path: Path, expected: str | None) -> None:
    """``BadRequest`` unless ``path``'s SHA-256 is ``expected`` (nothing to check when None)."""
    expected = check_sha256_text(expected)
    if expected is None:
        return
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise BadRequest(f"the package's SHA-256 is {digest.hexdigest()}, not the {expected} expected")


def fetch_package(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    allow_http: bool = False,
    sha256: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """Download ``url`` to ``dest`` under the rules above; returns ``dest``."""
    expected = check_sha256_text(sha256)
    shown = printable(url)
    origin = _checked(url, url, allow_http)
    deadline = time.monotonic() + timeout_s
    timeout = httpx.Timeout(min(READ_STALL_S, timeout_s))
    digest = hashlib.sha256()
    with httpx.Client(follow_redirects=False, timeout=timeout) as client:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            with client.stream("GET", current) as response:
                if response.is_redirect:
                    location = response.headers.get("location", "")
                    current = urljoin(current, location)
                    if _checked(current, url, allow_http) != origin:
                        raise BadRequest(
                            f"{shown}: redirected to another host ({printable(current)}); refused"
                        )
                    continue
                if response.status_code != 200:
                    raise BadRequest(
                        f"{shown}: HTTP {response.status_code} {printable(response.reason_phrase, 60)}"
                    )
                _save(
                    response,
                    dest,
                    digest,
                    max_bytes=max_bytes,
                    deadline=deadline,
                    shown=shown,
                    timeout_s=timeout_s,
                )
                break
        else:
            raise BadRequest(f"{shown}: more than {MAX_REDIRECTS} redirects")
    if expected is not None and digest.hexdigest() != expected:
        raise BadRequest(f"the package's SHA-256 is {digest.hexdigest()}, not the {expected} expected")
    return dest


def _checked(url: str, first: str, allow_http: bool) -> tuple[str, int | None]:
    """The host (and port, if one is named) of ``url`` if it may be fetched, else ``BadRequest``."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "http" and not allow_http:
        raise BadRequest(f"{printable(first)}: only https URLs are installed (or pass --allow-http)")
    if scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest(f"{printable(first)}: not an http(s) URL")
    if scheme == "http" and urlsplit(first).scheme.lower() == "https":
        raise BadRequest(f"{printable(first)}: redirected from https to http; refused")
    return parts.hostname.lower(), parts.port


def _save(
    response: httpx.Response,
    dest: Path,
    digest: Any,
    *,
    max_bytes: int,
    deadline: float,
    shown: str,
    timeout_s: float,
) -> None:
    written = 0
    with dest.open("wb") as out:
        for chunk in response.iter_bytes():
            written += len(chunk)
            if written > max_bytes:
                raise PayloadTooLarge(f"{shown} is larger than {max_bytes // 1024**2} MB")
            if time.monotonic() > deadline:
                raise BadRequest(f"{shown}: the download took longer than {timeout_s:g} s; refused")
            digest.update(chunk)
            out.write(chunk)
