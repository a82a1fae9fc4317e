"""The browser libraries the pages load, from the npm packages pinned in ``serve/web/package.json``.

``make install`` runs ``npm ci`` here; the app serves a short allow-list of their built files
under ``/static/vendor/{package}@{version}/{file}``, never a CDN. The version is in the URL, so a
file can be cached for a year: a new pin is a new URL.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

NODE_MODULES = Path(__file__).resolve().parent / "node_modules"
REMOTE_FONT_FACE = re.compile(rb"@font-face\{[^}]*url\(https?://[^}]*\}")
"""Shaka's ``controls.css`` declares Roboto from fonts.gstatic.com, and Chromium fetches it as soon
as the sheet loads, used or not: the CSP refuses it (a violation on every watch page). The app
serves the sheet without that one rule; the page's own sheet sets ``--shaka-font-family``."""


@dataclass(frozen=True)
class VendorFile:
    package: str
    path: str
    """Inside the package, e.g. ``dist/controls.css``."""

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def location(self) -> Path:
        return NODE_MODULES / self.package / self.path

    def body(self) -> bytes:
        """The file as served: a stylesheet without its fonts from other origins."""
        data = self.location.read_bytes()
        return REMOTE_FONT_FACE.sub(b"", data) if self.path.endswith(".css") else data


VENDOR_FILES = {
    "shaka_js": VendorFile("shaka-player", "dist/shaka-player.ui.js"),
    "shaka_css": VendorFile("shaka-player", "dist/controls.css"),
    "tus_js": VendorFile("tus-js-client", "dist/tus.min.js"),
}
"""What the templates may name (``vendor.shaka_js``...), and all the vendor route serves."""


def installed_version(package: str) -> str | None:
    try:
        return str(json.loads((NODE_MODULES / package / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


@cache
def vendor_table() -> dict[str, tuple[VendorFile, str]]:
    """URL -> (file, version) of every vendor file that is installed; warns about the others."""
    table = {}
    for vendor in VENDOR_FILES.values():
        version = installed_version(vendor.package)
        if version is None or not vendor.location.is_file():
            log.warning(
                "%s is not installed (run `make install`): pages that need it show an error", vendor.location
            )
            version = "missing"
        table[f"{vendor.package}@{version}/{vendor.name}"] = (vendor, version)
    return table


def vendor_urls() -> dict[str, str]:
    """Template name -> URL: ``shaka_js`` -> ``/static/vendor/shaka-player@5.2.12/shaka-player.ui.js``."""
    by_file = {vendor: url for url, (vendor, _) in vendor_table().items()}
    return {key: f"/static/vendor/{by_file[vendor]}" for key, vendor in VENDOR_FILES.items()}
