"""Subtitle tracks in both manifests: a WebVTT file and a media playlist per language.

Each language becomes ``subtitles/{lang}.vtt`` (named by a ``text/vtt`` AdaptationSet of
``manifest.mpd``) and ``subtitles/{lang}.m3u8`` (one segment, the whole file, named by an
``#EXT-X-MEDIA:TYPE=SUBTITLES`` entry of ``master.m3u8``; every variant names the group).
The manifest rewriting is pure text in, text out, and idempotent: a language already there
is replaced where it stands, never listed twice. Packaging a new title applies it to the
manifests before they are first published; ``publish_subtitle_tracks`` applies it to a
video already published (a sidecar added later, a backfilled translation).
"""

from __future__ import annotations

import logging
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cluster import layout
from cluster.errors import ServerError, VodError
from cluster.scratch import scratch_dir
from cluster.storage import Storage
from pipelines.subtitles.languages import label_for
from pipelines.subtitles.record import SubtitleRecord
from pipelines.video.publish import publish

MPD_NS = "urn:mpeg:dash:schema:mpd:2011"
_NS = {"mpd": MPD_NS}
log = logging.getLogger(__name__)
ET.register_namespace("", MPD_NS)  # rewritten MPDs keep the default namespace, unprefixed
GROUP_ID = "subs"
ROLE_SCHEME = "urn:mpeg:dash:role:2011"
MPEGTS_HZ = 90_000
VTT_BANDWIDTH = 256
"""A nominal bandwidth for the text Representation (the attribute is mandatory in DASH)."""
_DURATION = re.compile(r"PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?")
_MEDIA_LANGUAGE = re.compile(r'LANGUAGE="([^"]*)"')


@dataclass(frozen=True)
class SubtitleTrack:
    lang: str
    label: str


def _safe_label(label: str) -> str:
    """A label fit for a quoted HLS attribute and an XML text node: no quotes, no line breaks."""
    return " ".join(label.replace('"', "'").split())[:80] or "Subtitles"


def mpd_timing(mpd: bytes) -> tuple[float, int]:
    """``(duration_s, mpegts)`` of a packaged title: its length, and the 90 kHz timestamp of its
    first media sample (the first ``SegmentTimeline`` ``t``, which is the first segment's
    ``tfdt``), that a WebVTT cue at 00:00:00.000 maps to in HLS."""
    root = ET.fromstring(mpd)
    match = _DURATION.fullmatch(root.get("mediaPresentationDuration", ""))
    if match is None:
        raise ServerError("the published MPD has no mediaPresentationDuration")
    hours, minutes, seconds = (float(part or 0) for part in match.groups())
    template = root.find(".//mpd:SegmentTemplate", _NS)
    first = template.find("mpd:SegmentTimeline/mpd:S", _NS) if template is not None else None
    mpegts = 0
    if template is not None and first is not None:
        mpegts = round(int(first.get("t", "0")) * MPEGTS_HZ / int(template.get("timescale", "1")))
    return hours * 3600 + minutes * 60 + seconds, mpegts


def vtt_for_hls(vtt: str, mpegts: int) -> str:
    """The WebVTT text with an ``X-TIMESTAMP-MAP`` header line (replacing any there was)."""
    lines = vtt.replace("\r\n", "\n").split("\n")
    if not lines or not lines[0].startswith("WEBVTT"):
        raise ServerError("a subtitle track to publish is not WebVTT")
    header_end = lines.index("") if "" in lines else len(lines)
    header = [line for line in lines[1:header_end] if not line.startswith("X-TIMESTAMP-MAP=")]
    stamp = f"X-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:00:00:00.000"
    return "\n".join([lines[0], stamp, *header, *lines[header_end:]])


def media_playlist(lang: str, duration_s: float) -> str:
    """The HLS media playlist of one language: the whole ``{lang}.vtt`` as one segment."""
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        f"#EXT-X-TARGETDURATION:{max(1, math.ceil(duration_s))}\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:{duration_s:.3f},\n{lang}.vtt\n#EXT-X-ENDLIST\n"
    )


def _text_set(lang: str, label: str, set_id: str) -> ET.Element:
    adaptation = ET.Element(
        f"{{{MPD_NS}}}AdaptationSet",
        {"id": set_id, "contentType": "text", "mimeType": "text/vtt", "lang": lang},
    )
    ET.SubElement(adaptation, f"{{{MPD_NS}}}Role", {"schemeIdUri": ROLE_SCHEME, "value": "subtitle"})
    ET.SubElement(adaptation, f"{{{MPD_NS}}}Label").text = label
    representation = ET.SubElement(
        adaptation,
        f"{{{MPD_NS}}}Representation",
        {"id": f"subtitles-{lang}", "bandwidth": str(VTT_BANDWIDTH)},
    )
    ET.SubElement(representation, f"{{{MPD_NS}}}BaseURL").text = layout.subtitle_file(lang, "vtt")
    return adaptation


def add_tracks_to_mpd(mpd: bytes, tracks: Sequence[SubtitleTrack]) -> bytes:
    """The MPD with a ``text/vtt`` AdaptationSet per track in its (only) Period."""
    root = ET.fromstring(mpd)
    period = root.find("mpd:Period", _NS)
    if period is None:
        raise ServerError("the MPD has no Period")
    existing = {
        aset.get("lang"): aset
        for aset in period.findall("mpd:AdaptationSet", _NS)
        if aset.get("mimeType") == "text/vtt"
    }
    ids = [
        int(a.get("id", "0")) for a in period.findall("mpd:AdaptationSet", _NS) if a.get("id", "").isdigit()
    ]
    next_id = max(ids, default=-1) + 1
    for track in tracks:
        old = existing.get(track.lang)
        set_id = old.get("id", str(next_id)) if old is not None else str(next_id)
        fresh = _text_set(track.lang, _safe_label(track.label), set_id)
        if old is not None:
            position = list(period).index(old)
            period.remove(old)
            period.insert(position, fresh)
        else:
            period.append(fresh)
            next_id += 1
        existing[track.lang] = fresh
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def add_tracks_to_master(master: str, tracks: Sequence[SubtitleTrack]) -> str:
    """``master.m3u8`` with a SUBTITLES rendition per track and every variant naming the group."""
    entries = {
        track.lang: (
            f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{GROUP_ID}",LANGUAGE="{track.lang}",'
            f'NAME="{_safe_label(track.label)}",DEFAULT=NO,AUTOSELECT=YES,'
            f'URI="{layout.subtitle_file(track.lang, "m3u8")}"'
        )
        for track in tracks
    }
    lines = [line for line in master.splitlines() if line.strip()]
    out: list[str] = []
    for line in lines:
        if line.startswith("#EXT-X-MEDIA:") and "TYPE=SUBTITLES" in line:
            found = _MEDIA_LANGUAGE.search(line)
            lang = found.group(1) if found else ""
            line = entries.pop(lang, line)  # replaced in place
        elif line.startswith("#EXT-X-STREAM-INF:") and "SUBTITLES=" not in line:
            line += f',SUBTITLES="{GROUP_ID}"'
        out.append(line)
    if entries:  # new languages go after the last rendition entry, before the variants
        media_lines = [i for i, line in enumerate(out) if line.startswith("#EXT-X-MEDIA:")]
        variants = [i for i, line in enumerate(out) if line.startswith("#EXT-X-STREAM-INF:")]
        at = media_lines[-1] + 1 if media_lines else (variants[0] if variants else len(out))
        out[at:at] = list(entries.values())
    return "\n".join(out) + "\n"


def write_track_files(
    out_dir: Path,
    tracks: Mapping[str, Path],
    duration_s: float,
    mpegts: int,
) -> tuple[list[str], list[str]]:
    """``subtitles/{lang}.vtt`` and ``.m3u8`` under ``out_dir`` per track: (vtt files, playlists),
    as paths relative to ``out_dir``."""
    vtts, playlists = [], []
    for lang, source in tracks.items():
        vtt, playlist = layout.subtitle_file(lang, "vtt"), layout.subtitle_file(lang, "m3u8")
        (out_dir / vtt).parent.mkdir(parents=True, exist_ok=True)
        (out_dir / vtt).write_text(vtt_for_hls(source.read_text(encoding="utf-8"), mpegts), encoding="utf-8")
        (out_dir / playlist).write_text(media_playlist(lang, duration_s))
        vtts.append(vtt)
        playlists.append(playlist)
    return vtts, playlists


def add_to_package(
    out_dir: Path, tracks: Mapping[str, Path], labels: Mapping[str, str]
) -> tuple[list[str], list[str]]:
    """Add subtitle tracks to a packaged title in ``out_dir`` (before it is published): writes
    the files and rewrites ``manifest.mpd`` and ``master.m3u8`` there. Returns (vtt files,
    playlists) relative to ``out_dir``."""
    if not tracks:
        return [], []
    mpd_path, master_path = out_dir / layout.MPD_NAME, out_dir / layout.MASTER_NAME
    duration_s, mpegts = mpd_timing(mpd_path.read_bytes())
    files = write_track_files(out_dir, tracks, duration_s, mpegts)
    wanted = [SubtitleTrack(lang, labels.get(lang) or label_for(lang)) for lang in tracks]
    mpd_path.write_bytes(add_tracks_to_mpd(mpd_path.read_bytes(), wanted))
    master_path.write_text(add_tracks_to_master(master_path.read_text(), wanted))
    return files


def published_languages(mpd: bytes) -> list[str]:
    """The subtitle languages an MPD lists, in order."""
    period = ET.fromstring(mpd).find("mpd:Period", _NS)
    sets = period.findall("mpd:AdaptationSet", _NS) if period is not None else []
    return [str(a.get("lang")) for a in sets if a.get("mimeType") == "text/vtt"]


def publish_subtitle_tracks(
    storage: Storage, video_id: str, tracks: dict[str, Path], labels: dict[str, str]
) -> list[str]:
    """Add (or replace) subtitle languages of a video that is already published.

    ``tracks``: language -> a local WebVTT file (``pipelines.subtitles.write_vtt`` output);
    ``labels``: language -> the name players show (a missing one: ``label_for(lang)``).
    Uploads ``media/{vid}/subtitles/{lang}.vtt`` (with its ``X-TIMESTAMP-MAP``) and
    ``{lang}.m3u8`` first, then rewrites the published ``master.m3u8`` and ``manifest.mpd``
    last, so a player never finds a track whose files are not there yet. Idempotent: a
    language already in the manifests is replaced in place, never listed twice; other
    languages are kept. Returns every subtitle language the manifests now list.
    Raises ``NotFound`` if the video has no published manifests. Concurrent calls for the
    same video must be serialised by the caller (each rewrites the manifests it read).
    """
    if not tracks:
        return published_languages(storage.read_bytes(layout.media_key(video_id, layout.MPD_NAME)))
    with scratch_dir("subpub") as scratch:
        out = Path(scratch)
        for name in layout.TOP_MANIFESTS:
            storage.get_file(layout.media_key(video_id, name), out / name)
        vtts, playlists = add_to_package(out, tracks, labels)
        publish(
            storage,
            [(out / rel, layout.media_key(video_id, rel)) for rel in vtts],
            [(out / rel, layout.media_key(video_id, rel)) for rel in [*playlists, *layout.TOP_MANIFESTS]],
            video_id=video_id,
        )
        return published_languages((out / layout.MPD_NAME).read_bytes())


def add_step_tracks(
    storage: Storage, work: str, inputs: Path, out: Path
) -> tuple[list[str], list[str], list[str]]:
    """The subtitles step's languages into the packaged manifests: (vtt files, playlists, warnings).

    Nothing here may fail the video: without the step's record (it failed) there are no
    subtitle tracks; a track that cannot be added leaves the manifests as they were."""
    record_key = layout.subtitles_record_key(work)
    if not storage.exists(record_key):
        return [], [], []
    try:
        record = SubtitleRecord.from_json(storage.read_bytes(record_key))
        tracks, labels = {}, {}
        for track in record.tracks:
            tracks[track.lang] = inputs / "subtitles" / f"{track.lang}.vtt"
            labels[track.lang] = track.label
            storage.get_file(layout.subtitle_work_key(work, track.lang), tracks[track.lang])
        vtts, playlists = add_to_package(out, tracks, labels)
    except Exception as exc:  # noqa: BLE001 - subtitles must never fail the video
        log.warning("adding subtitle tracks to the manifests failed", exc_info=True)
        reason = exc.detail if isinstance(exc, VodError) else "an internal error occurred"
        return [], [], [f"the subtitle tracks could not be added to the stream: {reason}"]
    return vtts, playlists, []
