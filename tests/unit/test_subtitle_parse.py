"""Subtitle parsing bounded by construction (issue 12's findings, without Ray or HTTP).

pysubs2's SubRip and SSA regexes backtrack: a cue holding a run of blank lines, ``x<a``
repeated or ``{`` repeated costs time growing with the square of its length (55 s for 40 KB of
blank lines). Each is cut by the linear scan before pysubs2 runs, and every parse runs in a
child process with a CPU-time limit. A file's format comes from its name only.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from catalog.validation import MAX_CUE_CHARS, check_cues
from cluster.errors import InvalidMedia
from cluster.settings import SubtitleSettings
from pipelines.subtitles.cues import MAX_CUE_LINES, bound_cues, normalise
from pipelines.subtitles.parse import format_of, parse_subtitles
from pipelines.subtitles.step import cue_rows

SETTINGS = SubtitleSettings(models_dir=Path("/nonexistent"), max_cues=1000, cpu_s=10)
GOOD = "1\n00:00:01,000 --> 00:00:02,000\nA normal line\n\n"


def srt_with(body: str) -> bytes:
    """A good cue, then one whose text is ``body``, then another good one."""
    return (
        GOOD + f"2\n00:00:03,000 --> 00:00:04,000\n{body}\n\n3\n00:00:05,000 --> 00:00:06,000\nLast\n"
    ).encode()


BLANK_LINES = srt_with("a" + "\n" * 40_000 + "b")  # 55 s in pysubs2 before
TAG_RUN = srt_with("x<a" * 20_000)  # 60 KB: 2.2 s before
BRACES = (
    "[Script Info]\nScriptType: v4.00+\n\n[Events]\n"
    "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
    "Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,Fine\n"
    "Dialogue: 0,0:00:03.00,0:00:04.00,Default,,0,0,0,," + "{" * 40_000 + "\n"
).encode()  # 40 KB: 3.8 s before
BACKTRACKING = {"blank lines": (BLANK_LINES, "srt"), "x<a": (TAG_RUN, "srt"), "braces": (BRACES, "ass")}


@pytest.mark.parametrize("kind", BACKTRACKING)
def test_backtracking_cues_are_dropped_before_pysubs2_sees_them(kind: str) -> None:
    data, fmt = BACKTRACKING[kind]
    started = time.perf_counter()
    result = normalise(data, fmt, max_cues=1000)
    assert time.perf_counter() - started < 0.5
    assert [cue.text for cue in result.cues][:1] == ["A normal line" if fmt == "srt" else "Fine"]
    assert result.dropped >= 1
    assert any("over the limits of a cue" in warning for warning in result.warnings), result.warnings


def test_the_scan_splits_cues_as_pysubs2_does_and_keeps_normal_ones() -> None:
    text = GOOD + "2\n00:00:03,000 --> 00:00:04,000\n" + "line\n" * (MAX_CUE_LINES + 5) + "\n"
    kept, cut, removed = bound_cues(text, "srt", max_cues=1)
    assert (cut, removed) == (1, 0) and "A normal line" in kept and "00:00:03,000" not in kept
    kept, cut, removed = bound_cues(text, "srt", max_cues=10)
    assert (cut, removed) == (0, 1) and "line\nline" not in kept and "00:00:03,000" not in kept


@pytest.mark.parametrize("kind", BACKTRACKING)
def test_a_parse_in_the_child_process_is_quick_and_names_what_it_dropped(kind: str) -> None:
    data, fmt = BACKTRACKING[kind]
    started = time.perf_counter()
    result = parse_subtitles(data, f"x.{fmt}", SETTINGS, formats=("srt", "vtt", "ass"))
    assert time.perf_counter() - started < 5
    assert result.cues and result.dropped >= 1


TTML = (
    b'<?xml version="1.0"?><tt xmlns="http://www.w3.org/ns/ttml">'
    b'<body><div><p begin="1s" end="2s">Hi</p></div></body></tt>'
)
JSON_EVENTS = json.dumps({"info": {}, "styles": {}, "events": [{"start": 0, "end": 1, "text": 5}]}).encode()
NESTED_JSON = b'{"events":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
MPL2 = "".join(f"[{i * 10}][{i * 10 + 5}]line {i}\n" for i in range(100_000)).encode()  # 1.7 MB


@pytest.mark.parametrize(
    ("content", "name"),
    [(TTML, "a.srt"), (TTML, "a.vtt"), (JSON_EVENTS, "b.srt"), (NESTED_JSON, "c.vtt"), (MPL2, "d.srt")],
    ids=["ttml-srt", "ttml-vtt", "json", "nested-json", "mpl2"],
)
def test_content_of_another_format_is_refused_with_a_sentence(content: bytes, name: str) -> None:
    started = time.perf_counter()
    with pytest.raises(InvalidMedia) as caught:
        result = parse_subtitles(content, name, SETTINGS)
        if not result.cues:  # what the API and the job do with an empty result
            raise InvalidMedia(f"subtitle file {name!r} holds no cue that can be kept")
    assert time.perf_counter() - started < 5
    assert name in caught.value.detail and "Traceback" not in caught.value.detail


@pytest.mark.parametrize("name", ["a.ttml", "a.json", "a.sub", "a.ass", "a.srt.txt", "srt", ""])
def test_the_name_decides_the_format_and_others_are_422(name: str) -> None:
    with pytest.raises(InvalidMedia, match=r"must be named \*\.srt or \*\.vtt"):
        format_of(name)
    assert format_of("A.SRT") == "srt" and format_of("c:\\x\\y.Vtt") == "vtt"
    assert format_of("2.ass", ("srt", "vtt", "ass")) == "ass"


def test_a_parse_over_its_cpu_limit_is_stopped_and_refused() -> None:
    # 50,000 ordinary cues take several CPU seconds to parse; the child may use one.
    many = "".join(
        f"{i}\n{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d},000 --> "
        f"{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d},500\nline number {i}\n\n"
        for i in range(50_000)
    ).encode()
    tight = SubtitleSettings(models_dir=Path("/nonexistent"), max_cues=50_000, cpu_s=1)
    started = time.perf_counter()
    with pytest.raises(InvalidMedia, match=r"'long.srt' takes more than 1 s of CPU to read"):
        parse_subtitles(many, "long.srt", tight)
    assert time.perf_counter() - started < 15


def test_cues_that_start_together_are_merged_then_cut_to_the_catalogs_limit() -> None:
    text = "".join(f"{i}\n00:00:01,000 --> 00:00:03,000\n{chr(97 + i) * 900}\n\n" for i in range(3))
    result = normalise(text.encode(), "srt", max_cues=100)
    assert len(result.cues) == 1 and len(result.cues[0].text) == MAX_CUE_CHARS
    assert result.cues[0].text.startswith("a" * 900 + "\n" + "b" * 900)
    check_cues(cue_rows(result.cues))  # what the catalog will take: no refusal
    assert any("longer than 2000 characters cut" in warning for warning in result.warnings)
