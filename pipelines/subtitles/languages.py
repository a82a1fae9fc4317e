"""Language codes of subtitle tracks, and the names players show for them.

Container tags are ISO 639-2 (``eng``); translation models and the catalog use ISO 639-1
(``en``) or BCP 47 tags (``pt-BR``). Pure: no I/O.
"""

from __future__ import annotations

# Container tags are ISO 639-2 (``eng``); translation models use ISO 639-1 (``en``).
_ISO639_2 = {
    "eng": "en", "spa": "es", "fra": "fr", "fre": "fr", "deu": "de", "ger": "de", "ita": "it",
    "por": "pt", "rus": "ru", "jpn": "ja", "zho": "zh", "chi": "zh", "kor": "ko", "ara": "ar",
    "nld": "nl", "dut": "nl", "pol": "pl", "tur": "tr", "swe": "sv", "dan": "da", "fin": "fi",
    "nor": "nb", "nob": "nb", "ces": "cs", "cze": "cs", "ell": "el", "gre": "el", "heb": "he",
    "hin": "hi", "hun": "hu", "ind": "id", "ukr": "uk", "vie": "vi", "tha": "th", "ron": "ro",
    "rum": "ro", "cat": "ca", "bul": "bg", "hrv": "hr", "slk": "sk", "slo": "sk", "fas": "fa",
    "per": "fa",
}  # fmt: skip


LANGUAGE_NAMES = {
    "en": "English", "es": "Español", "fr": "Français", "de": "Deutsch", "it": "Italiano",
    "pt": "Português", "nl": "Nederlands", "ru": "Русский", "ja": "日本語", "zh": "中文",
    "ko": "한국어", "ar": "العربية", "pl": "Polski", "tr": "Türkçe", "sv": "Svenska",
    "uk": "Українська", "hi": "हिन्दी", "und": "Unknown language",
}  # fmt: skip


def label_for(lang: str) -> str:
    """The name a player shows for ``lang``: its own name for the languages vodray knows."""
    return LANGUAGE_NAMES.get(lang.split("-")[0], lang)


def normalise_lang(tag: str | None) -> str:
    """``eng`` -> ``en``; two-letter codes kept; anything unknown or missing -> ``und``."""
    code = (tag or "").strip().lower().split("-")[0].split("_")[0]
    if len(code) == 2 and code.isalpha():
        return code
    return _ISO639_2.get(code, code if len(code) == 3 and code.isalpha() else "und")
