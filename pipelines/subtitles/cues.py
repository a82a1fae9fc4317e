"""Subtitle text to clean WebVTT: decode, parse (pysubs2), sanitise, repair, bound, write.

Any format pysubs2 reads (SRT, ASS/SSA, WebVTT...) in any common encoding becomes a list of
``Cue``: plain text, ordered, non-overlapping, with counts of what was dropped or repaired and
why. ``pipelines.subtitles.tracks`` applies it to the tracks of a source and to sidecar files.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pysubs2
from charset_normalizer import from_bytes

from cluster.errors import InvalidMedia, PayloadTooLarge

MAX_CUE_CHARS = 1000
# ASS override blocks: closed ones whole; of an unclosed one only its tags, the words stay.
_OVERRIDE = re.compile(r"\{\\[^}]*\}|\{\\[^\s}]*")
_VTT_BLOCKS = ("NOTE", "STYLE", "REGION")
_TIMING_LINE = re.compile(r"-->|^Dialogue:", re.MULTILINE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SCRIPT_ALPHABETS = ("Latin", "Control", "Punctuation", "Currency", "Number", "Letterlike", "Symbols")


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    text: str
    """Plain text, lines separated by ``\\n``; escaped only when written as WebVTT."""


@dataclass
class Normalised:
    cues: list[Cue]
    dropped: int = 0
    """Cues removed: zero-length or inverted, empty, drawings, malformed blocks, over the cap."""
    repaired: int = 0
    """Cues kept but changed: overlaps trimmed, timings clamped, text truncated."""
    warnings: list[str] = field(default_factory=list)
    encoding: str = "utf-8"


def decode_text(data: bytes) -> tuple[str, str]:
    """Bytes of a subtitle file -> (text, encoding).

    A byte-order mark decides; then strict UTF-8 (legacy 8-bit text almost never decodes
    as valid UTF-8, so success means it is UTF-8). Otherwise charset-normalizer guesses,
    which is right for Cyrillic, Greek or CJK codepages but cannot tell cp1252 from cp1250
    or cp1257 on a few Latin lines (it reads French cp1252 as cp1257: ``déją``); so when its
    guess is Latin-only text, cp1252 (the Western Windows codepage most legacy SRTs use)
    wins. Latin-1 is the last resort: it decodes any bytes.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    latin_only = best is None or all(any(k in a for k in _SCRIPT_ALPHABETS) for a in best.alphabets)
    if latin_only:
        try:
            return data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            pass
    if best is not None:
        return str(best), best.encoding
    return data.decode("latin-1"), "latin-1"


def _clean_text(event: pysubs2.SSAEvent, webvtt: bool) -> tuple[str, bool]:
    """Plain text of an event, and whether a malformed block was glued to it.

    pysubs2 already strips HTML-ish tags of SRT/WebVTT and closed override blocks; unclosed
    ones, control characters and blank-line-separated trailers (a block whose timing line
    did not parse, which the readers append to the previous cue) are removed here. WebVTT
    text is entity-escaped (``&lt;``): decoded, to be escaped once when written.
    """
    text = _OVERRIDE.sub("", event.plaintext).replace("\r", "")
    text = _CONTROL.sub("", html.unescape(text) if webvtt else text).replace("\u2028", "\n")
    first, *rest = text.strip().split("\n\n")
    lines = [" ".join(line.split()) for line in first.split("\n")]
    if webvtt:  # NOTE/STYLE/REGION blocks and the next cue's identifier line are not broken cues
        rest = [b for b in rest[:-1] if not b.startswith(_VTT_BLOCKS)] + [
            b for b in rest[-1:] if not b.startswith(_VTT_BLOCKS) and "\n" in b.strip()
        ]
    broken = [block for block in rest if block.strip()]
    return "\n".join(line for line in lines if line), bool(broken)


def _cut_after_cues(text: str, max_cues: int) -> tuple[str, int]:
    """The text up to its ``max_cues``-th cue, and how many cues were cut off.

    Parsing costs about 0.2 ms a cue: a 10 MB file of tiny cues (250,000) would hold a worker
    for a minute. Cues are counted by their timing lines (``-->``, ASS ``Dialogue:``) and the
    text is cut at the block boundary before the first one over the cap, before parsing.
    """
    markers = _TIMING_LINE.finditer(text)
    for _ in range(max_cues):
        if next(markers, None) is None:
            return text, 0
    first_over = next(markers, None)
    if first_over is None:
        return text, 0
    cut = text.rfind("\n\n", 0, first_over.start())
    cut = first_over.start() if cut < 0 or text.startswith("Dialogue:", first_over.start()) else cut
    return text[:cut], 1 + sum(1 for _ in markers)


def normalise(data: bytes, *, max_cues: int, duration_s: float | None = None) -> Normalised:
    """Parse any subtitle format pysubs2 knows and return clean, ordered, non-overlapping cues."""
    text, encoding = decode_text(data)
    text, over_cap = _cut_after_cues(text, max_cues)
    try:
        parsed = pysubs2.SSAFile.from_string(text)
    except (pysubs2.Pysubs2Error, ValueError) as exc:
        raise InvalidMedia(f"the subtitle file cannot be read: {exc}") from exc
    result = Normalised(cues=[], encoding=encoding)
    limit_ms = round(duration_s * 1000) if duration_s else None
    candidates: list[Cue] = []
    malformed = invalid = 0
    for event in parsed:
        if event.is_comment or event.is_drawing:
            invalid += 1
            continue
        cue_text, glued = _clean_text(event, parsed.format == "vtt")
        malformed += glued
        start, end = max(0, event.start), event.end
        if limit_ms is not None and end > limit_ms:
            end = limit_ms
        if not cue_text or end <= start:
            invalid += 1
            continue
        if len(cue_text) > MAX_CUE_CHARS:
            cue_text = cue_text[:MAX_CUE_CHARS]
            result.repaired += 1
        if start != event.start or end != event.end:
            result.repaired += 1
        candidates.append(Cue(start, end, cue_text))
    if invalid:
        result.dropped += invalid
        result.warnings.append(f"{invalid} empty, zero-length, inverted or non-text cue(s) dropped")
    if malformed:
        result.dropped += malformed
        result.warnings.append(f"{malformed} block(s) with a malformed timing line dropped")
    candidates.sort(key=lambda cue: (cue.start_ms, cue.end_ms))
    overlaps = 0
    for cue in candidates:
        previous = result.cues[-1] if result.cues else None
        if previous is not None and cue.start_ms < previous.end_ms:
            overlaps += 1
            if cue.start_ms == previous.start_ms:  # same start: one cue showing both texts
                merged = Cue(
                    previous.start_ms, max(previous.end_ms, cue.end_ms), f"{previous.text}\n{cue.text}"
                )
                result.cues[-1] = merged
                result.dropped += 1
                continue
            result.cues[-1] = Cue(previous.start_ms, cue.start_ms, previous.text)
            result.repaired += 1
        result.cues.append(cue)
    if overlaps:
        result.warnings.append(f"{overlaps} overlapping cue(s) trimmed or merged")
    if len(result.cues) > max_cues or over_cap:
        extra = max(0, len(result.cues) - max_cues) + over_cap
        del result.cues[max_cues:]
        result.dropped += extra
        result.warnings.append(f"{extra} cue(s) over the limit of {max_cues} dropped")
    return result


def read_bounded(path: Path, max_bytes: int) -> bytes:
    """The whole file, or PayloadTooLarge before reading a byte of one over ``max_bytes``."""
    size = path.stat().st_size
    if size > max_bytes:
        raise PayloadTooLarge(
            f"the subtitle file is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB"
        )
    return path.read_bytes()


def _vtt_time(ms: int) -> str:
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def cues_to_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT text; ``&``, ``<`` and ``>`` escaped, so cue text can never become markup or ``-->``."""
    blocks = ["WEBVTT\n"]
    for cue in cues:
        body = html.escape(cue.text, quote=False)
        blocks.append(f"{_vtt_time(cue.start_ms)} --> {_vtt_time(cue.end_ms)}\n{body}\n")
    return "\n".join(blocks)


def write_vtt(cues: Sequence[Cue], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(cues_to_vtt(cues), encoding="utf-8")
    return path


def read_vtt(path: Path) -> list[Cue]:
    """Cues of a WebVTT file this module wrote (entities decoded back to plain text)."""
    parsed = pysubs2.SSAFile.from_string(path.read_text(encoding="utf-8"), format_="vtt")
    return [Cue(e.start, e.end, html.unescape(e.plaintext)) for e in parsed if not e.is_comment]
