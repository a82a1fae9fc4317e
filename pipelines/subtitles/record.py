"""A video's subtitle record: the languages it publishes and what happened to every track.

One typed record replaces the dicts the job, the API, the late-track path and the backfill used
to build by hand. It is stored as JSON in the catalog (``videos.subtitles``; the catalog hands it
back parsed) and read with ``SubtitleRecord.from_json``, which also reads what older versions
wrote. Pure: no I/O.

``sidecars`` is the job's own bookkeeping (the sidecar files its subtitles step read), kept in
the step's work record and never in the catalog's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from pipelines.subtitles.languages import label_for

TrackSource = Literal["embedded", "sidecar", "translated"]
SIDECAR_NAME = re.compile(r"(\d{2,})\.([A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})?)\.(srt|vtt)")
"""``layout.sidecar_key``'s file name: ``03.fr.srt`` (two digits or more: ``142.de.vtt``)."""


def sidecar_index(name: str) -> int | None:
    """The index of a sidecar file name (``07.fr.srt`` -> 7), None for any other name."""
    matched = SIDECAR_NAME.fullmatch(name)
    return int(matched.group(1)) if matched else None


@dataclass(frozen=True)
class Track:
    """One published language."""

    lang: str
    label: str
    """What players show in their menu (``Français``)."""
    source: TrackSource
    origin: str
    """``stream:N`` (embedded), ``sidecar:NAME`` (sidecar) or the language it was translated from."""
    cues: int

    @classmethod
    def embedded(cls, lang: str, stream: int, cues: int) -> Track:
        return cls(lang, label_for(lang), "embedded", f"stream:{stream}", cues)

    @classmethod
    def sidecar(cls, lang: str, name: str, cues: int) -> Track:
        """``name``: the stored file's name (``03.fr.srt``)."""
        return cls(lang, label_for(lang), "sidecar", f"sidecar:{name}", cues)

    @classmethod
    def translated(cls, lang: str, from_lang: str, cues: int) -> Track:
        return cls(lang, label_for(lang), "translated", from_lang, cues)

    @property
    def source_lang(self) -> str:
        """The language the cues were written in: the origin of a translation, else its own."""
        return self.origin if self.source == "translated" else self.lang

    @property
    def sidecar_index(self) -> int | None:
        """The stored sidecar's index, for a sidecar track."""
        if self.source != "sidecar":
            return None
        return sidecar_index(self.origin.removeprefix("sidecar:"))

    def to_json(self) -> dict[str, Any]:
        return {
            "lang": self.lang,
            "label": self.label,
            "source": self.source,
            "origin": self.origin,
            "cues": self.cues,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Track:
        lang = str(data["lang"])
        source = data.get("source")
        return cls(
            lang=lang,
            label=str(data.get("label") or label_for(lang)),
            source=source if source in ("embedded", "sidecar", "translated") else "embedded",
            origin=str(data.get("origin") or ""),
            cues=int(data.get("cues") or 0),
        )


@dataclass(frozen=True)
class Skipped:
    """An embedded track that cannot become text (a bitmap, unreadable, too large)."""

    stream: int
    codec: str | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"stream": self.stream, "codec": self.codec, "reason": self.reason}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Skipped:
        codec = data.get("codec")
        return cls(int(data.get("stream") or 0), None if codec is None else str(codec), str(data["reason"]))


@dataclass(frozen=True)
class SubtitleRecord:
    """What a video's metadata shows about its subtitles."""

    tracks: tuple[Track, ...] = ()
    unavailable: tuple[str, ...] = ()
    """Languages asked for that no installed model reaches."""
    skipped: tuple[Skipped, ...] = ()
    warnings: tuple[str, ...] = ()
    """Sentences for the uploader: what was dropped, repaired or could not be done."""
    sidecars: tuple[str, ...] | None = None
    """The sidecar files a job's subtitles step read (its work record only)."""

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any] | None) -> SubtitleRecord:
        """The record from its JSON (text or parsed); None or empty is the empty record."""
        if isinstance(data, str | bytes):
            data = json.loads(data) if data else None
        if not data:
            return cls()
        sidecars = data.get("sidecars")
        return cls(
            tracks=tuple(Track.from_json(t) for t in data.get("tracks") or ()),
            unavailable=tuple(str(code) for code in data.get("unavailable") or ()),
            skipped=tuple(Skipped.from_json(s) for s in data.get("skipped") or ()),
            warnings=tuple(str(w) for w in data.get("warnings") or ()),
            sidecars=None if sidecars is None else tuple(str(name) for name in sidecars),
        )

    def to_json(self) -> dict[str, Any]:
        """What the catalog stores (``sidecars`` only when set: the job's work record)."""
        found: dict[str, Any] = {
            "tracks": [track.to_json() for track in self.tracks],
            "unavailable": list(self.unavailable),
            "skipped": [item.to_json() for item in self.skipped],
            "warnings": list(self.warnings),
        }
        if self.sidecars is not None:
            found["sidecars"] = list(self.sidecars)
        return found

    def track(self, lang: str) -> Track | None:
        return next((track for track in self.tracks if track.lang == lang), None)

    def with_track(self, track: Track) -> SubtitleRecord:
        """The record with ``track`` added, replacing one of its language, which is no longer
        unavailable."""
        return replace(
            self,
            tracks=(*(t for t in self.tracks if t.lang != track.lang), track),
            unavailable=tuple(code for code in self.unavailable if code != track.lang),
        )

    def with_warnings(self, sentences: Iterable[str]) -> SubtitleRecord:
        return replace(self, warnings=(*self.warnings, *sentences))

    def unpublished(self, sentences: Iterable[str]) -> SubtitleRecord:
        """The record when packaging could not add the tracks: no track is published, and why."""
        return replace(self, tracks=(), warnings=(*self.warnings, *sentences))

    def newer_sidecar_than(self, track: Track) -> bool:
        """Whether a sidecar of ``track``'s language sent after ``track`` (a sidecar) is listed."""
        mine = track.sidecar_index
        if mine is None:
            return False
        return any(
            (theirs := other.sidecar_index) is not None and theirs > mine
            for other in self.tracks
            if other.lang == track.lang
        )

    def for_catalog(self) -> SubtitleRecord:
        """Without the job's bookkeeping."""
        return replace(self, sidecars=None)
