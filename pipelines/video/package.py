"""Packaging: a title's encoded chunks and audio into one CMAF segment set, DASH and HLS.

The chunks of each rendition are stitched by stream copy (a concat list read as one stream)
in the same ffmpeg pass that packages them. The dash muxer names segments by stream index;
``package`` renames them to rendition names and rewrites every manifest to match. Over local
paths only: the Ray task (``pipelines.tasks.package_and_publish``) fetches and publishes.
"""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cluster.errors import ServerError
from cluster.layout import AUDIO_DIR, INIT_NAME, MASTER_NAME, MPD_NAME
from pipelines.video import argv
from pipelines.video.ffmpeg import run
from pipelines.video.plan import Plan, Rendition

_MPD_NS = "urn:mpeg:dash:schema:mpd:2011"
_MUXER_DIR_TEMPLATE = "$RepresentationID$/"
_STAGING = ".mux"
for _prefix, _uri in (
    ("", _MPD_NS),
    ("xsi", "http://www.w3.org/2001/XMLSchema-instance"),
    ("xlink", "http://www.w3.org/1999/xlink"),
):
    ET.register_namespace(_prefix, _uri)


def stitch(chunk_files: Sequence[Path], plan: Plan, listing: Path) -> Path:
    """One rendition's chunks, in plan order, as a concat list that ``package`` reads as one
    stream: stitched by stream copy in the same pass that packages them."""
    listing = listing.with_suffix(argv.CONCAT_SUFFIX)
    listing.write_text(argv.concat_list(chunk_files, [c.frames for c in plan.chunks], plan.fps))
    return listing


@dataclass(frozen=True)
class PackagedRendition:
    name: str
    width: int
    height: int
    bytes: int
    """Init segment plus every media segment."""
    bitrate_bps: int
    """Measured: bytes * 8 over the packaged duration."""


@dataclass(frozen=True)
class Packaged:
    segment_files: tuple[str, ...]
    """Init and media segments, relative to the package dir; publish these first."""
    manifest_files: tuple[str, ...]
    """Media playlists, then master.m3u8 and manifest.mpd: publish last, in this order."""
    renditions: tuple[PackagedRendition, ...]
    audio_bytes: int
    duration_s: float
    """Length of the video timeline in the MPD."""

    @property
    def files(self) -> tuple[str, ...]:
        return self.segment_files + self.manifest_files

    @property
    def bitrates(self) -> dict[str, int]:
        """Rendition name -> measured bits per second."""
        return {r.name: r.bitrate_bps for r in self.renditions}

    @property
    def bytes_by_rendition(self) -> dict[str, int]:
        return {r.name: r.bytes for r in self.renditions}


def package(
    encoded: Sequence[tuple[Rendition, Path]],
    audio: Path | None,
    out_dir: Path,
    plan: Plan,
) -> Packaged:
    """Stream-copy renditions and audio into ``out_dir`` as one CMAF set, DASH and HLS.

    The dash muxer can only name segment paths by stream index, so it writes ``0/``, ``1/``
    ... into a staging dir; the directories are then renamed to ``{rendition.name}/`` and
    ``audio/`` and every manifest reference is rewritten to match (MPD through its XML tree,
    playlists line by line), failing loudly on anything unexpected.
    """
    if not encoded:
        raise ValueError("nothing to package: no encoded renditions")
    names = [rendition.name for rendition, _ in encoded] + ([AUDIO_DIR] if audio else [])
    staging = out_dir / _STAGING
    shutil.rmtree(staging, ignore_errors=True)
    for index in range(len(names)):
        (staging / str(index)).mkdir(parents=True)
    try:
        run(argv.package_argv([path for _, path in encoded], audio, staging / MPD_NAME, plan))
        mpd, duration_s = _rewrite_mpd(staging / MPD_NAME, names)
        playlists = {
            f"{name}.m3u8": _rewrite_media_playlist(
                (staging / f"media_{index}.m3u8").read_text(), index, name
            )
            for index, name in enumerate(names)
        }
        master = _rewrite_master_playlist((staging / MASTER_NAME).read_text(), names)
        for index, name in enumerate(names):
            shutil.rmtree(out_dir / name, ignore_errors=True)
            (staging / str(index)).rename(out_dir / name)
        # Manifests last, so the package dir never names a segment that is not there yet.
        for playlist_name, text in playlists.items():
            (out_dir / playlist_name).write_text(text)
        (out_dir / MASTER_NAME).write_text(master)
        (out_dir / MPD_NAME).write_bytes(ET.tostring(mpd, encoding="utf-8", xml_declaration=True) + b"\n")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _describe(out_dir, encoded, names, list(playlists), duration_s)


def _retarget(uri: str, prefix: str, name: str) -> str:
    if not uri.startswith(prefix):
        raise ServerError(f"packaging: unexpected segment reference {uri!r} from the dash muxer")
    return f"{name}/{uri[len(prefix) :]}"


def _rewrite_mpd(path: Path, names: list[str]) -> tuple[ET.Element, float]:
    """The muxer's MPD with every segment reference moved to the rendition's directory."""
    root = ET.parse(path).getroot()
    ns = {"mpd": _MPD_NS}
    duration_s = 0.0
    representations = root.findall(".//mpd:Representation", ns)
    if len(representations) != len(names):
        raise ServerError(
            f"packaging: the MPD has {len(representations)} representations, expected {len(names)}"
        )
    for representation in representations:
        name = names[int(representation.get("id", "-1"))]
        template = representation.find("mpd:SegmentTemplate", ns)
        if template is None:
            raise ServerError("packaging: a Representation without its own SegmentTemplate")
        for attribute in ("initialization", "media"):
            template.set(attribute, _retarget(template.get(attribute, ""), _MUXER_DIR_TEMPLATE, name))
        if not duration_s:  # the first representation is the first video rendition
            timescale = int(template.get("timescale", "1"))
            ticks = sum(
                int(s.get("d", "0")) * (1 + int(s.get("r", "0")))
                for s in template.findall("mpd:SegmentTimeline/mpd:S", ns)
            )
            duration_s = ticks / timescale
    return root, duration_s


def _rewrite_media_playlist(text: str, index: int, name: str) -> str:
    lines = []
    for line in text.splitlines():
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME"):
            continue  # wall clock of the packaging run: meaningless for VOD
        if line.startswith("#EXT-X-MAP:"):
            line = re.sub(r'URI="([^"]+)"', lambda m: f'URI="{_retarget(m[1], f"{index}/", name)}"', line)
        elif line and not line.startswith("#"):
            line = _retarget(line, f"{index}/", name)
        lines.append(line)
        if line.startswith("#EXT-X-VERSION"):
            lines.append("#EXT-X-PLAYLIST-TYPE:VOD")
    return "\n".join(lines) + "\n"


def _rewrite_master_playlist(text: str, names: list[str]) -> str:
    renames = {f"media_{index}.m3u8": f"{name}.m3u8" for index, name in enumerate(names)}

    def renamed(uri: str) -> str:
        if uri not in renames:
            raise ServerError(f"packaging: unexpected playlist reference {uri!r} in the master playlist")
        return renames[uri]

    lines = []
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA:"):
            line = re.sub(r'URI="([^"]+)"', lambda m: f'URI="{renamed(m[1])}"', line)
        elif line and not line.startswith("#"):
            line = renamed(line)
        lines.append(line)
    return "\n".join(lines) + "\n"


def _describe(
    out_dir: Path,
    encoded: Sequence[tuple[Rendition, Path]],
    names: list[str],
    playlists: list[str],
    duration_s: float,
) -> Packaged:
    segment_files: list[str] = []
    sizes: dict[str, int] = {}
    for name in names:
        files = sorted(p for p in (out_dir / name).iterdir() if p.is_file())
        if not any(p.name == INIT_NAME for p in files) or len(files) < 2:
            raise ServerError(f"packaging: {name}/ has no init segment or no media segments")
        segment_files += [f"{name}/{p.name}" for p in files]
        sizes[name] = sum(p.stat().st_size for p in files)
    renditions = tuple(
        PackagedRendition(
            name=rendition.name,
            width=rendition.width,
            height=rendition.height,
            bytes=sizes[rendition.name],
            bitrate_bps=round(sizes[rendition.name] * 8 / duration_s) if duration_s else 0,
        )
        for rendition, _ in encoded
    )
    return Packaged(
        segment_files=tuple(segment_files),
        manifest_files=(*playlists, MASTER_NAME, MPD_NAME),
        renditions=renditions,
        audio_bytes=sizes.get(AUDIO_DIR, 0),
        duration_s=duration_s,
    )
