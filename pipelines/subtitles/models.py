"""Argos Translate model packages: install from a file or URL, list, and route a language pair.

An ``.argosmodel`` is a zip of one directory holding ``metadata.json``, a CTranslate2 model in
``model/`` and ``sentencepiece.model``. Packages live in ``settings.subtitles.models_dir``, one
directory per pair (``translate-en_es``); they are installed by ``vodray models install`` only,
never downloaded while a job runs.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.errors import BadRequest, InvalidMedia, PayloadTooLarge
from cluster.scratch import scratch_dir
from pipelines.subtitles.fetch import DEFAULT_TIMEOUT_S, fetch_package, printable, verify_sha256

PIVOT = "en"
MAX_PACKAGE_BYTES = 2 * 1024**3
"""Largest unpacked package accepted (real Argos packages are 50-200 MB): a zip bomb stops here."""


@dataclass(frozen=True)
class InstalledModel:
    from_code: str
    to_code: str
    path: Path
    version: str = ""

    @property
    def pair(self) -> str:
        return f"{self.from_code}->{self.to_code}"


def _metadata(raw: bytes, origin: str) -> dict[str, Any]:
    try:
        metadata = json.loads(raw)
    except ValueError as exc:
        raise InvalidMedia(f"{origin}: metadata.json is not JSON") from exc
    codes = [metadata.get("from_code"), metadata.get("to_code")] if isinstance(metadata, dict) else [None]
    if not all(isinstance(c, str) and c.isascii() and c.isalpha() and 2 <= len(c) <= 3 for c in codes):
        raise InvalidMedia(f"{origin}: metadata.json has no from_code/to_code language codes")
    return metadata


def install_model(package: Path, models_dir: Path) -> InstalledModel:
    """Unpack an ``.argosmodel`` into ``models_dir/translate-{from}_{to}``, replacing an older one.

    argostranslate's own ``package.install_from_path`` extracts into a directory fixed when
    its settings module is imported (``ARGOS_PACKAGES_DIR``, default under $HOME) and checks
    nothing; this checks the Argos layout (one top directory with ``metadata.json``, a
    CTranslate2 ``model/`` and ``sentencepiece.model``), member paths and the unpacked size
    before writing a byte, then moves the package into place whole.
    """
    if not zipfile.is_zipfile(package):
        raise InvalidMedia(f"{package.name} is not an Argos model (.argosmodel is a zip archive)")
    with zipfile.ZipFile(package) as archive:
        members = archive.infolist()
        tops = {Path(m.filename).parts[0] for m in members if m.filename.strip("/")}
        if len(tops) != 1 or any(
            m.filename.startswith("/") or ".." in Path(m.filename).parts for m in members
        ):
            raise InvalidMedia(f"{package.name} is not laid out as an Argos package (one top directory)")
        top = tops.pop()
        names = {m.filename.rstrip("/") for m in members}
        for needed in ("metadata.json", "model/model.bin", "sentencepiece.model"):
            if f"{top}/{needed}" not in names:
                raise InvalidMedia(f"{package.name} has no {needed}: not a CTranslate2 Argos package")
        if sum(m.file_size for m in members) > MAX_PACKAGE_BYTES:
            raise PayloadTooLarge(f"{package.name} unpacks to more than {MAX_PACKAGE_BYTES // 1024**3} GB")
        metadata = _metadata(archive.read(f"{top}/metadata.json"), package.name)
        models_dir.mkdir(parents=True, exist_ok=True)
        target = models_dir / f"translate-{metadata['from_code']}_{metadata['to_code']}"
        with tempfile.TemporaryDirectory(prefix=".install-", dir=models_dir) as scratch:
            archive.extractall(scratch)
            old = Path(scratch) / "replaced"
            if target.exists():
                target.rename(old)  # swapped, not overwritten: a reader never sees half a package
            (Path(scratch) / top).rename(target)
    return _read_installed(target)


def _read_installed(path: Path) -> InstalledModel:
    metadata = _metadata((path / "metadata.json").read_bytes(), path.name)
    # The version is the package's free text, printed by `vodray models`: no control characters.
    version = printable(str(metadata.get("package_version", "")), max_chars=40)
    return InstalledModel(metadata["from_code"], metadata["to_code"], path, version)


def list_models(models_dir: Path) -> list[InstalledModel]:
    """Installed translation models, by language pair."""
    if not models_dir.is_dir():
        return []
    found = []
    for path in sorted(models_dir.iterdir()):
        if path.is_dir() and not path.name.startswith(".") and (path / "metadata.json").exists():
            try:
                found.append(_read_installed(path))
            except InvalidMedia:
                continue  # a broken directory is not a model; `vodray models list` will not show it
    return found


def install_from(
    source: str,
    models_dir: Path,
    *,
    allow_http: bool = False,
    sha256: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> InstalledModel:
    """``vodray models install PATH|URL``: a URL is fetched by ``pipelines.subtitles.fetch``'s rules
    (https only unless ``allow_http``, same-host redirects, one deadline); ``sha256``, when
    given, must match the package, downloaded or local."""
    if source.startswith(("http://", "https://")):
        with scratch_dir("model") as scratch:
            package = fetch_package(
                source,
                Path(scratch) / "package.argosmodel",
                max_bytes=MAX_PACKAGE_BYTES,
                allow_http=allow_http,
                sha256=sha256,
                timeout_s=timeout_s,
            )
            return install_model(package, models_dir)
    path = Path(source).expanduser()
    if not path.is_file():
        raise BadRequest(f"{printable(source)} is not a file or an http(s) URL")
    verify_sha256(path, sha256)
    return install_model(path, models_dir)


def route(models: Sequence[InstalledModel], source: str, target: str) -> list[InstalledModel] | None:
    """The models from ``source`` to ``target``: direct, else through English, else None."""
    by_pair = {(m.from_code, m.to_code): m for m in models}
    if (source, target) in by_pair:
        return [by_pair[source, target]]
    if (source, PIVOT) in by_pair and (PIVOT, target) in by_pair:
        return [by_pair[source, PIVOT], by_pair[PIVOT, target]]
    return None
