"""Subtitle text to clean WebVTT: decode, bound, parse (pysubs2), sanitise, repair, write.

SRT, WebVTT or ASS/SSA, named by the caller (never guessed from the content), in any common
encoding, becomes a list of ``Cue``: plain text, ordered, non-overlapping, with counts of what
was dropped or repaired and why. Before pysubs2 sees the text, a linear scan cuts it to
``max_cues`` cues and drops every cue over the limits of one (``MAX_CUE_LINES``,
``MAX_CUE_SOURCE_CHARS``, ``MAX_CUE_MARKUP``): some of pysubs2's regexes backtrack on long runs
of blank lines, ``<`` or ``{`` (time grows with the square of a cue's length), so the work of
a parse is bounded by construction. ``pipelines.subtitles.parse`` runs this in a child process
with a CPU-time limit as well.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pysubs2
from charset_normalizer import from_bytes
from pysubs2.formats.subrip import SubripFormat
from pysubs2.formats.webvtt import WebVTTFormat

from catalog.validation import MAX_CUE_CHARS
from cluster.errors import InvalidMedia, PayloadTooLarge

FORMATS = ("srt", "vtt", "ass")
"""What ``normalise`` reads: SubRip, WebVTT and ASS/SSA (pysubs2 reads SSA with its ASS parser)."""
MAX_CUE_LINES = 40
"""Lines of one cue's text in the file, blank ones and the next cue's number included."""
MAX_CUE_SOURCE_CHARS = 4 * MAX_CUE_CHARS
"""Characters of one cue in the file, markup included (an ASS ``Dialogue`` line whole)."""
MAX_CUE_MARKUP = 100
"""``<`` or ``{`` in one cue: tags and override blocks (a real cue has a few)."""
# ASS override blocks: closed ones whole; of an unclosed one only its tags, the words stay.
_OVERRIDE = re.compile(r"\{\\[^}]*\}|\{\\[^\s}]*")
_VTT_BLOCKS = ("NOTE", "STYLE", "REGION")
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


def _timing_line(fmt: str) -> Callable[[str], bool]:
    """Whether a line starts a cue, exactly as pysubs2's parser for ``fmt`` decides."""
    if fmt == "ass":
        return lambda line: line.lstrip().startswith(("Dialogue:", "Comment:"))
    stamp = (WebVTTFormat if fmt == "vtt" else SubripFormat).TIMESTAMP
    return lambda line: len(stamp.findall(line)) == 2


def _over_limits(lines: list[str]) -> bool:
    chars = sum(len(line) for line in lines)
    markup = sum(line.count("<") + line.count("{") for line in lines)
    return len(lines) > MAX_CUE_LINES or chars > MAX_CUE_SOURCE_CHARS or markup > MAX_CUE_MARKUP


def bound_cues(text: str, fmt: str, max_cues: int) -> tuple[str, int, int]:
    """``text`` cut after its ``max_cues``-th cue, without the cues over the limits of one:
    ``(text, cues cut off, cues removed)``. One pass over the lines, split as pysubs2 splits
    them (on ``\\n``), each line looked at a bounded number of times.

    A cue is its timing line and the lines up to the next one (SRT, WebVTT), or one
    ``Dialogue:`` line (ASS); a cue over the limits is removed whole, timing line included.
    """
    starts, ass = _timing_line(fmt), fmt == "ass"
    out: list[str] = []
    cue: list[str] = []  # the SRT/WebVTT cue being read: its timing line, then its body
    cues = cut = removed = 0

    def close() -> None:
        nonlocal removed
        if cue and _over_limits(cue[1:]):
            removed += 1
        else:
            out.extend(cue)
        cue.clear()

    for line in text.split("\n"):
        if starts(line):
            close()
            cues += 1
            if cues > max_cues:
                cut += 1
            elif ass and _over_limits([line]):
                removed += 1
            else:
                (out if ass else cue).append(line)
        elif cues <= max_cues:
            (cue if cue else out).append(line)
    close()
    return "\n".join(out), cut, removed


def normalise(data: bytes, fmt: str, *, max_cues: int, duration_s: float | None = None) -> Normalised:
    """Clean, ordered, non-overlapping cues of a subtitle file in format ``fmt`` (``FORMATS``).

    Runs in bounded time for any input (``bound_cues``). Raises ``InvalidMedia`` for a file
    that cannot be read as ``fmt``; a file of another format simply has no cues."""
    if fmt not in FORMATS:
        raise InvalidMedia(f"subtitles in {fmt!r} are not read; send SubRip (.srt) or WebVTT (.vtt)")
    text, encoding = decode_text(data)
    text, over_cap, over_limits = bound_cues(text, fmt, max_cues)
    try:
        parsed = pysubs2.SSAFile.from_string(text, format_=fmt)
    except (pysubs2.Pysubs2Error, ValueError, KeyError, IndexError) as exc:
        raise InvalidMedia(f"the subtitle file cannot be read as {fmt.upper()}: {str(exc)[:200]}") from exc
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
    # After merging: cues that start together become one, which must fit the catalog's limit too.
    long = [i for i, cue in enumerate(result.cues) if len(cue.text) > MAX_CUE_CHARS]
    for i in long:
        cue = result.cues[i]
        result.cues[i] = Cue(cue.start_ms, cue.end_ms, fit_text(cue.text))
    if long:
        result.repaired += len(long)
        result.warnings.append(f"{len(long)} cue(s) longer than {MAX_CUE_CHARS} characters cut")
    if over_limits:
        result.dropped += over_limits
        result.warnings.append(
            f"{over_limits} cue(s) over the limits of a cue ({MAX_CUE_LINES} lines,"
            f" {MAX_CUE_SOURCE_CHARS} characters, {MAX_CUE_MARKUP} tags) dropped"
        )
    if len(result.cues) > max_cues or over_cap:
        extra = max(0, len(result.cues) - max_cues) + over_cap
        del result.cues[max_cues:]
        result.dropped += extra
        result.warnings.append(f"{extra} cue(s) over the limit of {max_cues} dropped")
    return result


def fit_text(text: str) -> str:
    """Cue text cut to ``MAX_CUE_CHARS`` (the catalog's limit), the one rule for every cue
    vodray makes: parsed, merged or translated."""
    return text if len(text) <= MAX_CUE_CHARS else text[:MAX_CUE_CHARS].rstrip()


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
