"""Every storage key and published file name vodray uses, in one place.

Keys are relative POSIX paths under the storage root (``cluster.storage``):

    sources/{vid}/source                      the upload, kept until the video is deleted
    sources/{vid}/subtitles/{nn}.{lang}.{ext} sidecar subtitle files sent with or after the upload
    uploads/{vid}/data                        a resumable upload's bytes so far (file://)
    uploads/{vid}/tail-{nnnnn}                on S3, its bytes after its first n whole parts
    work/{vid}/{plan_id}/...                  intermediate files of one plan (resumable)
    media/{vid}/manifest.mpd, master.m3u8     what players fetch, published last
    media/{vid}/{rendition}/init.mp4, seg-00001.m4s, audio.mp3, poster.jpg
    media/{vid}/subtitles/{lang}.vtt, {lang}.m3u8   one subtitle track per language
    media/{vid}/storyboard.jpg, storyboard.vtt     seek-bar previews: the sprite sheet and its cues

Nothing else in the project spells these strings; serve, pipelines and benchmarks call here.
"""

from __future__ import annotations

SOURCE_NAME = "source"
MPD_NAME = "manifest.mpd"
MASTER_NAME = "master.m3u8"
INIT_NAME = "init.mp4"
MP3_NAME = "audio.mp3"
AAC_NAME = "audio.m4a"
POSTER_NAME = "poster.jpg"
STORYBOARD_IMAGE_NAME = "storyboard.jpg"
STORYBOARD_VTT_NAME = "storyboard.vtt"
"""The storyboard's WebVTT names its sheet by this relative name (``storyboard.jpg#xywh=...``)."""
AUDIO_DIR = "audio"
SUBTITLES_DIR = "subtitles"
"""Directory of the subtitle tracks inside ``media/{vid}/``: ``{lang}.vtt`` and ``{lang}.m3u8``."""
"""Directory of the audio track's CMAF segments inside ``media/{vid}/``."""
TOP_MANIFESTS = (MASTER_NAME, MPD_NAME)
"""The files a player starts from: written after everything they name."""


def source_prefix(video_id: str) -> str:
    return f"sources/{video_id}"


def source_key(video_id: str) -> str:
    return f"{source_prefix(video_id)}/{SOURCE_NAME}"


def sidecar_prefix(video_id: str) -> str:
    """Sidecar subtitle files of one video (sent with the upload or added later)."""
    return f"{source_prefix(video_id)}/subtitles"


def sidecar_key(video_id: str, index: int, lang: str, ext: str) -> str:
    """One sidecar file: ``sources/{vid}/subtitles/03.fr.srt``; the index keeps two of a language apart."""
    return f"{sidecar_prefix(video_id)}/{index:02d}.{lang}.{ext}"


def upload_prefix(video_id: str) -> str:
    """Where a resumable upload's bytes wait until its last byte (then they are the source)."""
    return f"uploads/{video_id}"


def upload_data_key(video_id: str) -> str:
    """On ``file://``: the bytes received so far, in one file, moved to ``source_key`` at the end."""
    return f"{upload_prefix(video_id)}/data"


def upload_tail_key(video_id: str, whole_parts: int) -> str:
    """On S3: the bytes after the first ``whole_parts`` parts, too few for a part of their own yet.
    Named by where they start, so a newer tail never overwrites one the catalog still points at."""
    return f"{upload_prefix(video_id)}/tail-{whole_parts:05d}"


def work_root(video_id: str) -> str:
    """Every plan's work files for one video."""
    return f"work/{video_id}"


def work_prefix(video_id: str, plan_id: str) -> str:
    """Work files of one plan: a changed plan never mixes with an old one."""
    return f"{work_root(video_id)}/{plan_id}"


def media_prefix(video_id: str) -> str:
    return f"media/{video_id}"


def media_key(video_id: str, relative: str) -> str:
    return f"{media_prefix(video_id)}/{relative}"


def video_prefixes(video_id: str) -> tuple[str, ...]:
    """Everything stored for one video (what deleting it removes)."""
    return (source_prefix(video_id), work_root(video_id), media_prefix(video_id))


def plan_record_key(work: str) -> str:
    """What a later run needs to rebuild this plan (its chunk length) and reuse its chunks."""
    return f"{work}/plan.json"


def chunk_name(index: int) -> str:
    """A chunk's deterministic name: ``00003`` for index 3."""
    return f"{index:05d}"


def chunk_key(work: str, rendition: str, index: int) -> str:
    """One encoded chunk of one rendition."""
    return f"{work}/chunks/{rendition}/{chunk_name(index)}.mp4"


def stitched_key(work: str, rendition: str) -> str:
    """A whole rendition, its chunks joined by stream copy."""
    return f"{work}/{rendition}.mp4"


def aac_key(work: str) -> str:
    return f"{work}/{AAC_NAME}"


def mp3_key(work: str) -> str:
    return f"{work}/{MP3_NAME}"


def poster_key(work: str) -> str:
    return f"{work}/{POSTER_NAME}"


def subtitles_record_key(work: str) -> str:
    """What the subtitles step found and made (tracks, skipped ones, warnings), as JSON."""
    return f"{work}/subtitles/tracks.json"


def subtitle_work_key(work: str, lang: str) -> str:
    """One language's normalised (or translated) WebVTT, before it is published."""
    return f"{work}/subtitles/{lang}.vtt"


def subtitle_file(lang: str, ext: str) -> str:
    """A subtitle track's published file, relative to ``media/{vid}/``: ``subtitles/en.vtt``."""
    return f"{SUBTITLES_DIR}/{lang}.{ext}"


def segment_name(number: int) -> str:
    """Media segment file name inside a rendition's directory (numbers start at 1)."""
    return f"seg-{number:05d}.m4s"


MUXER_INIT_TEMPLATE = f"$RepresentationID$/{INIT_NAME}"
MUXER_SEGMENT_TEMPLATE = "$RepresentationID$/seg-$Number%05d$.m4s"
"""The dash muxer's spelling of ``{stream}/{INIT_NAME}`` and ``{stream}/{segment_name(n)}``."""


def storyboard_keys(video_id: str) -> tuple[str, str]:
    """The published sheet and WebVTT, in the order they are written (the VTT names the sheet)."""
    return media_key(video_id, STORYBOARD_IMAGE_NAME), media_key(video_id, STORYBOARD_VTT_NAME)


def playback_urls(
    base_url: str, video_id: str, has_audio: bool, has_storyboard: bool = False
) -> dict[str, str | None]:
    """The URLs a client plays or downloads a ready video from (served under ``/media``).

    ``storyboard_url`` is the WebVTT of seek-bar previews (Shaka's ``addThumbnailsTrack``)."""
    media = f"{base_url}/{media_prefix(video_id)}"
    return {
        "manifest_url": f"{media}/{MPD_NAME}",
        "hls_url": f"{media}/{MASTER_NAME}",
        "mp3_url": f"{media}/{MP3_NAME}" if has_audio else None,
        "poster_url": f"{media}/{POSTER_NAME}",
        "storyboard_url": f"{media}/{STORYBOARD_VTT_NAME}" if has_storyboard else None,
    }
