"""The checks a sidecar subtitle file passes before the API keeps it (no Ray, no HTTP)."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from cluster.errors import BadRequest, InvalidMedia, PayloadTooLarge
from cluster.settings import SubtitleSettings
from serve.sidecar_files import check_sidecar, parse_translate_to, sidecar_extension, sidecar_lang

SETTINGS = SubtitleSettings(models_dir=Path("/nonexistent"), max_subtitle_mb=1, max_cues=2)
SRT = b"1\n00:00:01,000 --> 00:00:02,000\n<i>Hi</i> there\n\n2\n00:00:03,000 --> 00:00:04,000\nBye\n"


@pytest.mark.parametrize(
    ("name", "ext"), [("a.srt", "srt"), ("A.SRT", "srt"), ("x/y.fr.vtt", "vtt"), ("c:\\d.Vtt", "vtt")]
)
def test_the_extension_comes_from_the_file_name(name: str, ext: str) -> None:
    assert sidecar_extension(name) == ext


@pytest.mark.parametrize("name", ["a.ass", "a.srt.exe", "a.ttml", "a.json", "srt", "", None])
def test_other_names_are_refused_as_unreadable_422(name: str | None) -> None:
    with pytest.raises(InvalidMedia, match=r"must be named \*\.srt or \*\.vtt"):
        sidecar_extension(name)


def test_languages_are_tags_kept_lower_case() -> None:
    assert sidecar_lang(" pt-BR ") == "pt-br"
    for bad in (None, "", "français", "e", "en_US"):
        with pytest.raises(BadRequest):
            sidecar_lang(bad)


def test_translate_to_is_a_short_list_of_codes_each_once() -> None:
    assert parse_translate_to(" es, FR ,es,") == ["es", "fr"]
    assert parse_translate_to(None) == []
    with pytest.raises(BadRequest, match="translate_to: '1x' is not a language code"):
        parse_translate_to("es,1x")
    with pytest.raises(BadRequest, match="the limit is 8"):
        parse_translate_to("aa,bb,cc,dd,ee,ff,gg,hh,ii")


def normalise_sidecar(data: bytes, name: str, settings: SubtitleSettings) -> object:
    return anyio.run(check_sidecar, data, name, settings)


def test_a_good_file_is_normalised_and_bounded() -> None:
    result = anyio.run(
        check_sidecar, SRT + b"\n3\n00:00:05,000 --> 00:00:06,000\nOver the cap\n", "a.srt", SETTINGS
    )
    assert [(c.start_ms, c.text) for c in result.cues] == [(1000, "Hi there"), (3000, "Bye")]  # type: ignore[attr-defined]
    assert result.dropped == 1  # the third cue: over max_cues


def test_junk_empty_cue_less_and_big_files_are_refused() -> None:
    with pytest.raises(InvalidMedia, match="subtitle file 'j.srt'"):
        normalise_sidecar(os.urandom(2048), "j.srt", SETTINGS)
    with pytest.raises(InvalidMedia, match="is empty"):
        normalise_sidecar(b" \n", "e.srt", SETTINGS)
    with pytest.raises(InvalidMedia, match="holds no cue that can be kept"):
        normalise_sidecar(b"WEBVTT\n\n", "n.vtt", SETTINGS)
    with pytest.raises(PayloadTooLarge, match="larger than the limit of 1 MB"):
        normalise_sidecar(SRT + b"\n" * 2**20, "big.srt", SETTINGS)
