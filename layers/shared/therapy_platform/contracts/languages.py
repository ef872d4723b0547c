"""Languages therapy can be held in, as ISO 639-1 codes: one list for patients and therapists,
because matching compares a patient's languages with a therapist's code by code."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import AfterValidator

# ISO 639-1 (the 183 two-letter codes in force).
# fmt: off
ISO_639_1: Final = frozenset(
    (
        "aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be", "bg", "bi",
        "bm", "bn", "bo", "br", "bs", "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy", "da", "de",
        "dv", "dz", "ee", "el", "en", "eo", "es", "et", "eu", "fa", "ff", "fi", "fj", "fo", "fr", "fy",
        "ga", "gd", "gl", "gn", "gu", "gv", "ha", "he", "hi", "ho", "hr", "ht", "hu", "hy", "hz", "ia",
        "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu", "ja", "jv", "ka", "kg", "ki", "kj", "kk",
        "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg", "li", "ln", "lo",
        "lt", "lu", "lv", "mg", "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "na", "nb", "nd",
        "ne", "ng", "nl", "nn", "no", "nr", "nv", "ny", "oc", "oj", "om", "or", "os", "pa", "pi", "pl",
        "ps", "pt", "qu", "rm", "rn", "ro", "ru", "rw", "sa", "sc", "sd", "se", "sg", "si", "sk", "sl",
        "sm", "sn", "so", "sq", "sr", "ss", "st", "su", "sv", "sw", "ta", "te", "tg", "th", "ti", "tk",
        "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk", "ur", "uz", "ve", "vi", "vo", "wa",
        "wo", "xh", "yi", "yo", "za", "zh", "zu",
    )
)
# fmt: on

# German names of the languages staff record most often: German and the languages most spoken
# by people living in Germany (Mikrozensus), plus common European languages. Every other ISO
# 639-1 code is accepted too; a staff UI shows the code where it has no label.
LANGUAGE_LABELS: Final[dict[str, str]] = {
    "de": "Deutsch",
    "en": "Englisch",
    "tr": "Türkisch",
    "ru": "Russisch",
    "ar": "Arabisch",
    "pl": "Polnisch",
    "uk": "Ukrainisch",
    "ro": "Rumänisch",
    "it": "Italienisch",
    "es": "Spanisch",
    "fr": "Französisch",
    "pt": "Portugiesisch",
    "el": "Griechisch",
    "hr": "Kroatisch",
    "sr": "Serbisch",
    "bs": "Bosnisch",
    "sq": "Albanisch",
    "ku": "Kurdisch",
    "fa": "Persisch (Farsi)",
    "ps": "Paschtu",
    "vi": "Vietnamesisch",
    "zh": "Chinesisch",
    "bg": "Bulgarisch",
    "hu": "Ungarisch",
    "cs": "Tschechisch",
    "nl": "Niederländisch",
    "he": "Hebräisch",
    "hi": "Hindi",
    "ur": "Urdu",
    "ti": "Tigrinya",
    "so": "Somali",
    "ja": "Japanisch",
    "ko": "Koreanisch",
}
# Their English names, for the API's code catalogue (contracts/codes.py).
LANGUAGE_LABELS_EN: Final[dict[str, str]] = {
    "de": "German",
    "en": "English",
    "tr": "Turkish",
    "ru": "Russian",
    "ar": "Arabic",
    "pl": "Polish",
    "uk": "Ukrainian",
    "ro": "Romanian",
    "it": "Italian",
    "es": "Spanish",
    "fr": "French",
    "pt": "Portuguese",
    "el": "Greek",
    "hr": "Croatian",
    "sr": "Serbian",
    "bs": "Bosnian",
    "sq": "Albanian",
    "ku": "Kurdish",
    "fa": "Persian (Farsi)",
    "ps": "Pashto",
    "vi": "Vietnamese",
    "zh": "Chinese",
    "bg": "Bulgarian",
    "hu": "Hungarian",
    "cs": "Czech",
    "nl": "Dutch",
    "he": "Hebrew",
    "hi": "Hindi",
    "ur": "Urdu",
    "ti": "Tigrinya",
    "so": "Somali",
    "ja": "Japanese",
    "ko": "Korean",
}
GERMAN: Final = "de"


def _language_code(value: str) -> str:
    code = value.strip().lower()
    if code not in ISO_639_1:
        raise ValueError(f"{value!r} is not an ISO 639-1 language code (two letters, e.g. de, en, tr)")
    return code


# A code as staff may type it (" TR"): stored trimmed and lower case.
LanguageCode = Annotated[str, AfterValidator(_language_code)]
