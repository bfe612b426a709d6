"""Every text exists in every language, with the same placeholders, so no user ever sees a raw key."""

from __future__ import annotations

import string

import pytest

from core.texts import LANGUAGES, catalogue, normalise_language, t


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_key_exists_in_every_language(language: str) -> None:
    reference = catalogue("ru")
    assert set(catalogue(language)) == set(reference)


@pytest.mark.parametrize("language", LANGUAGES)
def test_placeholders_match_russian(language: str) -> None:
    for key, text in catalogue(language).items():
        assert placeholders(text) == placeholders(catalogue("ru")[key]), key


def test_missing_key_falls_back_to_the_key_and_languages_normalise() -> None:
    assert t("en", "no.such.key") == "no.such.key"
    assert normalise_language("en-GB") == "en"
    assert normalise_language("uk") == "ru"
    assert normalise_language(None, "en") == "en"
