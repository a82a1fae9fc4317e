"""Subtitle extraction and normalisation on real files made here (and by real ffmpeg)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cluster.errors import PayloadTooLarge
from cluster.settings import SubtitleSettings
from pipelines.demo import DEMO_CUES, make_clip
from pipelines.subtitles.cues import Cue, decode_text, normalise, read_bounded, read_vtt, write_vtt
from pipelines.subtitles.languages import normalise_lang
from pipelines.subtitles.tracks import extract_tracks, normalise_file
from pipelines.video import argv as build
from pipelines.video.probe import probe

ASS = r"""[Script Info]
ScriptType: v4.00+

[V4+ Styles]
Format: Name, Fontname, Fontsize
Style: Default,Arial,20

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,{\pos(10,10)\c&H0000FF&}Styled {\i1}text{\i0}\Nsecond line
Dialogue: 0,0:00:03.00,0:00:04.00,Default,,0,0,0,,{\p1}m 0 0 l 100 0 100 100{\p0}
Dialogue: 0,0:00:05.00,0:00:06.00,Default,,0,0,0,,unclosed {\b1 brace
Comment: 0,0:00:05.00,0:00:06.00,Default,,0,0,0,,a comment nobody sees
"""


def srt(*cues: tuple[str, str, str]) -> str:
    return "\n".join(f"{n}\n{start} --> {end}\n{text}\n" for n, (start, end, text) in enumerate(cues, 1))


def settings(tmp_path: Path, **overrides: int) -> SubtitleSettings:
    return SubtitleSettings(models_dir=tmp_path / "models", **overrides)  # type: ignore[arg-type]


def test_cp1252_srt_is_detected_and_decoded(tmp_path: Path) -> None:
    text = srt(
        ("00:00:01,000", "00:00:02,000", "“Café déjà vu”, naïve — 5 €"),
        ("00:00:03,000", "00:00:04,000", "Ça coûte très cher, n’est-ce pas?"),
    )
    source = tmp_path / "fr.srt"
    source.write_bytes(text.encode("cp1252"))
    result = normalise_file(
        source, tmp_path / "fr.vtt", lang="fr", source="sidecar:fr.srt", settings=settings(tmp_path)
    )
    assert result.status == "ok" and result.cues == 2
    assert "decoded as cp1252" in result.warnings
    vtt = (tmp_path / "fr.vtt").read_text(encoding="utf-8")
    assert "“Café déjà vu”, naïve — 5 €" in vtt
    assert "Ça coûte très cher, n’est-ce pas?" in vtt


def test_other_encodings_are_detected() -> None:
    russian = srt(("00:00:01,000", "00:00:02,000", "Привет, как дела? Всё хорошо. Мы идём домой."))
    assert decode_text(russian.encode("cp1251")) == (russian, "cp1251")
    assert decode_text(("\ufeff" + russian).encode("utf-8")) == (russian, "utf-8")
    assert decode_text(russian.encode("utf-16")) == (russian, "utf-16")


def test_ass_override_tags_drawings_and_comments_are_stripped() -> None:
    result = normalise(ASS.encode(), "ass", max_cues=100)
    assert result.cues == [
        Cue(1000, 2000, "Styled text\nsecond line"),
        Cue(5000, 6000, "unclosed brace"),
    ]
    assert result.dropped == 2  # the vector drawing and the comment


def test_script_and_markup_in_cue_text_are_neutralised(tmp_path: Path) -> None:
    hostile = srt(("00:00:01,000", "00:00:02,000", "<script>alert('x')</script> & <b>bold</b>"))
    (tmp_path / "x.srt").write_text(hostile)
    ass = ASS.replace("unclosed {\\b1 brace", "a < b --> c & <img src=x onerror=alert(1)>")
    (tmp_path / "x.ass").write_text(ass)
    for name in ("x.srt", "x.ass"):
        normalise_file(
            tmp_path / name,
            tmp_path / f"{name}.vtt",
            lang="en",
            source=f"sidecar:{name}",
            settings=settings(tmp_path),
        )
    srt_vtt, ass_vtt = (tmp_path / "x.srt.vtt").read_text(), (tmp_path / "x.ass.vtt").read_text()
    # SRT markup is dropped by the reader; what is left is text, with & escaped.
    assert "<" not in srt_vtt and "alert('x') &amp; bold" in srt_vtt
    # ASS has no HTML: a literal < or --> is escaped so it can never be markup or a timing line.
    assert "a &lt; b --&gt; c &amp; &lt;img src=x onerror=alert(1)&gt;" in ass_vtt
    assert "<" not in ass_vtt and ass_vtt.count("-->") == 2
    # Read back, the text is what the viewer should see.
    assert [cue.text for cue in read_vtt(tmp_path / "x.srt.vtt")] == ["alert('x') & bold"]
    assert read_vtt(tmp_path / "x.ass.vtt")[1].text == "a < b --> c & <img src=x onerror=alert(1)>"


def test_webvtt_sidecar_entities_tags_and_notes(tmp_path: Path) -> None:
    vtt = (
        "WEBVTT\n\nSTYLE\n::cue { color: red }\n\n"
        "00:00:01.000 --> 00:00:02.000 align:start\n<v Bob>Fish &amp; chips</v> cost &lt; 5\n\n"
        "NOTE a translator's comment\n\n"
        "cue-2\n00:00:03.000 --> 00:00:04.000\n<c.red>Red</c> <i>text</i>\n"
    )
    result = normalise(vtt.encode(), "vtt", max_cues=100)
    assert result.cues == [Cue(1000, 2000, "Fish & chips cost < 5"), Cue(3000, 4000, "Red text")]
    assert (result.dropped, result.warnings) == (0, [])
    written = tmp_path / "x.vtt"
    write_vtt(result.cues, written)
    assert "Fish &amp; chips cost &lt; 5" in written.read_text()  # escaped once, not &amp;amp;


def test_overlapping_zero_length_and_malformed_cues_are_repaired_or_dropped() -> None:
    text = srt(
        ("00:00:01,000", "00:00:03,000", "first"),
        ("00:00:02,000", "00:00:04,000", "overlaps the first"),
        ("00:00:02,000", "00:00:02,500", "same start as the second"),
        ("00:00:05,000", "00:00:05,000", "zero length"),
        ("00:00:07,000", "00:00:06,000", "ends before it starts"),
        ("00:00:08,000", "00:00:09,000", "kept"),
    )
    text += "\n7\n00:00:10,000 --> garbage\nbad timing line\n"
    result = normalise(text.encode(), "srt", max_cues=100)
    assert result.cues == [
        Cue(1000, 2000, "first"),
        Cue(2000, 4000, "same start as the second\noverlaps the first"),
        Cue(8000, 9000, "kept"),
    ]
    assert all(a.end_ms <= b.start_ms for a, b in zip(result.cues, result.cues[1:], strict=False))
    # zero-length, inverted, the merged duplicate start and the malformed block
    assert result.dropped == 4
    assert result.repaired == 1
    assert "1 block(s) with a malformed timing line dropped" in result.warnings
    assert "2 overlapping cue(s) trimmed or merged" in result.warnings
    assert "2 empty, zero-length, inverted or non-text cue(s) dropped" in result.warnings


def test_cues_past_the_video_end_are_clamped_or_dropped() -> None:
    text = srt(
        ("00:00:01,000", "00:00:09,000", "runs past the end"), ("00:00:07,000", "00:00:08,000", "after")
    )
    result = normalise(text.encode(), "srt", max_cues=100, duration_s=6.0)
    assert result.cues == [Cue(1000, 6000, "runs past the end")]
    assert (result.dropped, result.repaired) == (1, 1)


def test_cue_count_is_capped_with_a_count() -> None:
    # 500 cues of 1 ms each, every other millisecond
    many = srt(*((f"00:00:00,{i:03d}", f"00:00:00,{i + 1:03d}", f"c{i}") for i in range(0, 1000, 2)))
    result = normalise(many.encode(), "srt", max_cues=100)
    assert len(result.cues) == 100
    assert result.cues[-1] == Cue(198, 199, "c198")  # cut on the block boundary: no half cue, no glued text
    assert result.dropped == 400
    assert "400 cue(s) over the limit of 100 dropped" in result.warnings


def test_a_huge_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    huge = tmp_path / "huge.srt"
    with huge.open("wb") as out:  # 50 MB, the size of a million short cues
        out.truncate(50 * 1024 * 1024)
    with pytest.raises(PayloadTooLarge, match="limit is 10 MB"):
        read_bounded(huge, 10 * 1024 * 1024)
    result = normalise_file(
        huge, tmp_path / "h.vtt", lang="en", source="sidecar:huge.srt", settings=settings(tmp_path)
    )
    assert result.status == "skipped" and "the subtitle file is 50.0 MB" in result.warnings[0]
    assert not (tmp_path / "h.vtt").exists()


def test_not_a_subtitle_file_is_a_skipped_record(tmp_path: Path) -> None:
    (tmp_path / "x.srt").write_bytes(b"\x00\x01 this is not a subtitle file at all")
    result = normalise_file(
        tmp_path / "x.srt", tmp_path / "x.vtt", lang="en", source="sidecar:x", settings=settings(tmp_path)
    )
    assert result.status == "skipped" and result.cues == 0


def test_language_tags_are_normalised() -> None:
    assert [normalise_lang(t) for t in ("eng", "fre", "es", "pt-BR", "und", "", None, "xx1")] == [
        "en", "fr", "es", "pt", "und", "und", "und", "und",
    ]  # fmt: skip


def test_extract_argv_reads_the_source_once_for_every_track(tmp_path: Path) -> None:
    argv = build.extract_subtitles_argv(
        Path("/in.mkv"), [(2, "srt", "srt", Path("/o/2.srt")), (3, "copy", "ass", Path("/o/3.ass"))]
    )
    assert argv[argv.index("-i") :] == [
        "-i", "/in.mkv",
        "-map", "0:2", "-c:s", "srt", "-f", "srt", "/o/2.srt",
        "-map", "0:3", "-c:s", "copy", "-f", "ass", "/o/3.ass",
    ]  # fmt: skip


def test_mov_text_track_of_the_demo_clip_is_extracted(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=6, width=320, height=180, audio=False)
    info = probe(clip)
    assert info.subtitle_tracks == ((1, "mov_text", "eng"),)
    [track] = extract_tracks(
        clip, info.subtitle_tracks, tmp_path / "subs", settings(tmp_path), info.duration_s
    )
    assert (track.lang, track.source, track.status, track.cues, track.dropped) == (
        "en",
        "stream:1",
        "ok",
        3,
        0,
    )
    cues = read_vtt(Path(str(track.vtt)))
    assert [(c.start_ms, c.end_ms, c.text) for c in cues] == [
        (round(start * 1000), round(end * 1000), text) for start, end, text in DEMO_CUES
    ]


def test_every_text_track_of_an_mkv_is_extracted_and_image_tracks_are_skipped(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=4, width=320, height=180, audio=False)
    (tmp_path / "s.ass").write_text(ASS)
    (tmp_path / "s.vtt").write_text("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nBonjour <b>à</b> tous\n")
    mkv = tmp_path / "multi.mkv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(clip), "-i", str(tmp_path / "s.ass"),
         "-i", str(tmp_path / "s.vtt"), "-map", "0", "-map", "1", "-map", "2", "-c", "copy", "-c:s:0", "srt",
         "-metadata:s:s:1", "language=ger", "-metadata:s:s:2", "language=fre", str(mkv)],
        check=True,
    )  # fmt: skip
    info = probe(mkv)
    codecs = [codec for _, codec, _ in info.subtitle_tracks]
    assert codecs == ["subrip", "ass", "webvtt"]
    tracks = (*info.subtitle_tracks, (9, "hdmv_pgs_subtitle", "jpn"))
    results = extract_tracks(mkv, tracks, tmp_path / "subs", settings(tmp_path))
    assert [(r.lang, r.status, r.cues) for r in results] == [
        ("en", "ok", 2), ("de", "ok", 2), ("fr", "ok", 1), ("ja", "skipped", 0),
    ]  # fmt: skip
    assert "hdmv_pgs_subtitle is an image subtitle" in results[3].warnings[0]
    assert [c.text for c in read_vtt(Path(str(results[1].vtt)))] == [
        "Styled text\nsecond line",
        "unclosed brace",
    ]
    assert [c.text for c in read_vtt(Path(str(results[2].vtt)))] == ["Bonjour à tous"]


def test_a_stream_ffmpeg_cannot_extract_is_skipped_not_a_failure(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=2, width=320, height=180, audio=False, subtitles=False)
    # Stream 0 is video: asking for it as subtitles makes ffmpeg fail, as a damaged stream would.
    [result] = extract_tracks(clip, [(0, "subrip", "eng")], tmp_path / "subs", settings(tmp_path))
    assert (result.lang, result.status, result.cues) == ("en", "skipped", 0)
    assert result.warnings[0].startswith("ffmpeg failed")
    assert not (tmp_path / "subs").exists()
