"""Subtitle tracks in the manifests (pure rewriting) and the subtitles step's record, on real
files: a DASH/HLS package made by ffmpeg's dash muxer shape, a clip made by ffmpeg, a real
(tiny) Argos model."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cluster.settings import SubtitleSettings
from pipelines.demo import make_clip
from pipelines.subtitles.cues import Cue, read_vtt, write_vtt
from pipelines.subtitles.manifests import (
    SubtitleTrack,
    add_to_package,
    add_tracks_to_master,
    add_tracks_to_mpd,
    media_playlist,
    mpd_timing,
    published_languages,
    vtt_for_hls,
)
from pipelines.subtitles.models import install_model
from pipelines.subtitles.record import Skipped, Track
from pipelines.subtitles.step import make_subtitles
from pipelines.subtitles.translate import CueTranslator
from pipelines.video.probe import probe
from tests.argos_model import build_argos_package

NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
MPD = b"""<?xml version='1.0' encoding='utf-8'?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT1M2.5S">
  <Period id="0" start="PT0.0S">
    <AdaptationSet id="0" contentType="video">
      <Representation id="0" mimeType="video/mp4" bandwidth="1000" width="320" height="180">
        <SegmentTemplate timescale="12800" initialization="180p/init.mp4" media="180p/seg-$Number%05d$.m4s">
          <SegmentTimeline><S t="1280" d="25600" r="2" /></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
    <AdaptationSet id="1" contentType="audio">
      <Representation id="1" mimeType="audio/mp4" bandwidth="96000" />
    </AdaptationSet>
  </Period>
</MPD>
"""
MASTER = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="group_A1",NAME="audio_1",DEFAULT=YES,URI="audio.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=453857,RESOLUTION=320x180,AUDIO="group_A1"
180p.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=953857,RESOLUTION=640x360,AUDIO="group_A1"
360p.m3u8
"""


def test_timing_comes_from_the_mpd_duration_and_first_segment() -> None:
    # 1280 ticks of 12800 Hz = 0.1 s = 9000 at 90 kHz.
    assert mpd_timing(MPD) == (62.5, 9000)


def test_mpd_gets_one_text_set_per_language_and_replaces_in_place() -> None:
    once = add_tracks_to_mpd(MPD, [SubtitleTrack("en", "English"), SubtitleTrack("es", 'Es "quoted"')])
    twice = add_tracks_to_mpd(once, [SubtitleTrack("es", "Español"), SubtitleTrack("de", "Deutsch")])
    assert published_languages(twice) == ["en", "es", "de"]
    sets = ET.fromstring(twice).findall(".//d:AdaptationSet", NS)
    assert [s.get("id") for s in sets] == ["0", "1", "2", "3", "4"]
    spanish = sets[3]
    assert spanish.get("mimeType") == "text/vtt" and spanish.get("lang") == "es"
    assert spanish.findtext("d:Label", namespaces=NS) == "Español"
    assert spanish.find("d:Role", NS).get("value") == "subtitle"  # type: ignore[union-attr]
    assert spanish.findtext("d:Representation/d:BaseURL", namespaces=NS) == "subtitles/es.vtt"
    assert twice.startswith(b"<?xml") and b"ns0:" not in twice
    assert add_tracks_to_mpd(twice, [SubtitleTrack("de", "Deutsch")]) == twice


def test_master_gets_a_subtitles_group_named_by_every_variant() -> None:
    once = add_tracks_to_master(MASTER, [SubtitleTrack("en", "English"), SubtitleTrack("es", 'Es "q"')])
    twice = add_tracks_to_master(once, [SubtitleTrack("es", "Español")])
    lines = twice.splitlines()
    assert lines[3:5] == [
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",NAME="English",DEFAULT=NO,'
        'AUTOSELECT=YES,URI="subtitles/en.m3u8"',
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="es",NAME="Español",DEFAULT=NO,'
        'AUTOSELECT=YES,URI="subtitles/es.m3u8"',
    ]
    variants = [line for line in lines if line.startswith("#EXT-X-STREAM-INF")]
    assert len(variants) == 2 and all(line.endswith(',SUBTITLES="subs"') for line in variants)
    assert "NAME=\"Es 'q'\"" in once  # a label can never end the quoted attribute
    assert add_tracks_to_master(twice, [SubtitleTrack("es", "Español")]) == twice


def test_vtt_header_maps_local_zero_to_the_first_segment() -> None:
    vtt = "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:1,LOCAL:00:00:00.000\n\n00:00:01.000 --> 00:00:02.000\nHi\n"
    mapped = vtt_for_hls(vtt, 9000)
    assert mapped.splitlines()[:3] == ["WEBVTT", "X-TIMESTAMP-MAP=MPEGTS:9000,LOCAL:00:00:00.000", ""]
    assert mapped.count("X-TIMESTAMP-MAP") == 1 and mapped.endswith("Hi\n")
    playlist = media_playlist("en", 62.5)
    assert "#EXT-X-TARGETDURATION:63\n" in playlist and "#EXTINF:62.500,\nen.vtt\n#EXT-X-ENDLIST" in playlist


def test_a_package_gets_files_and_manifests(tmp_path: Path) -> None:
    (tmp_path / "manifest.mpd").write_bytes(MPD)
    (tmp_path / "master.m3u8").write_text(MASTER)
    source = write_vtt([Cue(500, 2000, "Hello <there> & you")], tmp_path / "in" / "en.vtt")
    vtts, playlists = add_to_package(tmp_path, {"en": source}, {})
    assert (vtts, playlists) == (["subtitles/en.vtt"], ["subtitles/en.m3u8"])
    assert read_vtt(tmp_path / "subtitles" / "en.vtt") == [Cue(500, 2000, "Hello <there> & you")]
    assert 'NAME="English"' in (tmp_path / "master.m3u8").read_text()


def subtitle_settings(tmp_path: Path) -> SubtitleSettings:
    return SubtitleSettings(models_dir=tmp_path / "models")


def test_the_step_prefers_sidecars_translates_and_lists_what_it_could_not(tmp_path: Path) -> None:
    install_model(build_argos_package(tmp_path / "en_es.argosmodel"), tmp_path / "models")
    clip = make_clip(tmp_path / "clip.mp4", seconds=6, width=160, height=90, audio=False)
    sidecars = tmp_path / "sidecars"
    sidecars.mkdir()
    (sidecars / "00.en.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nFrom the sidecar\n")
    (sidecars / "01.de.srt").write_bytes(b"\x00\x01 not subtitles")
    (sidecars / "notes.txt").write_text("no language in this name")
    started = []

    def translator() -> CueTranslator:
        started.append(True)
        return CueTranslator(tmp_path / "models")

    made = make_subtitles(
        clip,
        probe(clip).subtitle_tracks,
        sorted(sidecars.iterdir()),
        tmp_path / "out",
        subtitle_settings(tmp_path),
        targets=["es", "fr", "en"],
        translator=translator,
        duration_s=6.0,
    )
    record = made.record
    assert record.tracks == (Track.sidecar("en", "00.en.srt", 1), Track.translated("es", "en", 1))
    assert record.unavailable == ("fr",) and record.skipped == () and started == [True]
    assert read_vtt(made.files["en"]) == [Cue(1000, 2000, "From the sidecar")]
    assert [(c.start_ms, c.end_ms) for c in read_vtt(made.files["es"])] == [(1000, 2000)]
    assert record.warnings == (
        "the sidecar subtitle file 'notes.txt' has no language: skipped",
        "subtitle sidecar 01.de.srt was skipped: the track holds no cue that can be read",
        "subtitle stream 1 is a second en track: only the first one is published",
    )


def test_no_model_means_no_translator_and_every_target_unavailable(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=2, width=160, height=90, audio=False)

    def translator() -> CueTranslator:
        raise AssertionError("the translator must not start when no model reaches a target")

    record = make_subtitles(
        clip,
        [*probe(clip).subtitle_tracks, (7, "hdmv_pgs_subtitle", "jpn")],
        [],
        tmp_path / "out",
        subtitle_settings(tmp_path),
        targets=["es"],
        translator=translator,
    ).record
    assert [t.lang for t in record.tracks] == ["en"] and record.unavailable == ("es",)
    assert record.skipped == (
        Skipped(
            7, "hdmv_pgs_subtitle", "hdmv_pgs_subtitle is an image subtitle (bitmap): it cannot become text"
        ),
    )


@pytest.mark.parametrize("failure", [RuntimeError("boom")])
def test_a_failing_translator_is_a_warning(tmp_path: Path, failure: Exception) -> None:
    install_model(build_argos_package(tmp_path / "en_es.argosmodel"), tmp_path / "models")
    clip = make_clip(tmp_path / "clip.mp4", seconds=2, width=160, height=90, audio=False)

    def translator() -> CueTranslator:
        raise failure

    record = make_subtitles(
        clip, probe(clip).subtitle_tracks, [], tmp_path / "out", subtitle_settings(tmp_path),
        targets=["es"], translator=translator,
    ).record  # fmt: skip
    assert [t.lang for t in record.tracks] == ["en"]
    assert record.warnings == (
        "translating the subtitles to es failed: an internal error occurred (the server log has the details)",
    )
