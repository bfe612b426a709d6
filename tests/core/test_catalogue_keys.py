"""Keys that code builds at run time (`f"status.{status}"`, `f"staff.reason.{r}"`, …) exist for every value
they can take, in every language, with the same placeholders; the literal keys are checked in test_texts."""

from __future__ import annotations

import string

import pytest

from core.dialogs import staff
from core.domain.tickets import Status
from core.texts import LANGUAGES, catalogue, forms

REVIEW_FIELDS = ("category", "location", "description", "photos")  # the report review's edit buttons


def placeholders(language: str, key: str) -> set[str]:
    return {
        name
        for text in forms(catalogue(language)[key])
        for _, name, _, _ in string.Formatter().parse(text)
        if name
    }


def built_keys() -> list[str]:
    return [
        *(f"status.{s.value}" for s in Status),
        *(f"staff.reason.{r}" for r in staff.REJECT_REASONS),
        *(f"notify.reason.{r}" for r in staff.REJECT_REASONS),
        *(f"report.review.edit_{field}" for field in REVIEW_FIELDS),
        "input.kind.other",  # the fallback of f"input.kind.{what}"
    ]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("key", built_keys())
def test_every_built_key_exists_with_the_placeholders_of_russian(language: str, key: str) -> None:
    assert key in catalogue(language), f"{language}: {key} is missing"
    assert placeholders(language, key) == placeholders("ru", key)


def test_catalogues_have_the_same_keys() -> None:
    keys = {language: set(catalogue(language)) for language in LANGUAGES}
    for language, found in keys.items():
        assert found == keys["ru"], f"{language}: {sorted(found ^ keys['ru'])}"
