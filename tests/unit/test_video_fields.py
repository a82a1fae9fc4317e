"""Video metadata rules shared by the API and the CLI: control characters are refused by name."""

from __future__ import annotations

import re

import pytest

from catalog.validation import NO_CONTROL_CHARACTERS, TITLE_PATTERN, check_video_fields
from cluster.errors import BadRequest


@pytest.mark.parametrize(
    ("title", "description", "detail"),
    [
        ("red\x1b[31m alert", "", "form field 'title' must not contain control characters (found U+001B)"),
        ("a\x00b", "", "form field 'title' must not contain control characters (found U+0000)"),
        ("ok", "line\rover", "form field 'description' must not contain control characters (found U+000D)"),
        (
            "ok",
            "c1 \x85 next line",
            "form field 'description' must not contain control characters (found U+0085)",
        ),
        ("ok", "del \x7f", "form field 'description' must not contain control characters (found U+007F)"),
    ],
)
def test_control_characters_are_refused_naming_the_field(title: str, description: str, detail: str) -> None:
    with pytest.raises(BadRequest) as refused:
        check_video_fields(title, description, "public")
    assert refused.value.detail == detail + "; only newline and tab are allowed"


def test_newline_and_tab_are_kept() -> None:
    fields = check_video_fields("two\twords", "first line\nsecond\tline", None)
    assert (fields.title, fields.description, fields.visibility) == (
        "two\twords",
        "first line\nsecond\tline",
        "private",
    )


@pytest.mark.parametrize("text", ["plain", "tab\there", "new\nline", "ünïcode ✓", ""])
def test_the_schema_pattern_accepts_what_the_check_accepts(text: str) -> None:
    assert re.fullmatch(NO_CONTROL_CHARACTERS, text)


@pytest.mark.parametrize("text", ["\x1b", "\r", "\x85", "\x7f", "\x00"])
def test_the_schema_pattern_refuses_what_the_check_refuses(text: str) -> None:
    assert not re.search(NO_CONTROL_CHARACTERS, f"a{text}b")


@pytest.mark.parametrize("title", ["a", " a ", "two\twords", "ünïcode ✓"])
def test_the_title_pattern_accepts_every_title_the_check_accepts(title: str) -> None:
    assert check_video_fields(title, None, None).title == title.strip()
    assert re.search(TITLE_PATTERN, title)


@pytest.mark.parametrize("title", ["", "   ", "\t\n", "a\x1bb"])
def test_the_title_pattern_refuses_blank_and_control_titles(title: str) -> None:
    with pytest.raises(BadRequest):
        check_video_fields(title, None, None)
    assert not re.search(TITLE_PATTERN, title)
