"""Every text exists in every language, with the same placeholders, so no user ever sees a raw key; plural
forms follow the CLDR rules; dates are written each language's way."""

from __future__ import annotations

import ast
import re
import string
from datetime import datetime
from pathlib import Path

import pytest

from core.texts import DATE_FIELDS, LANGUAGES, catalogue, date, forms, normalise_language, plural_category, t

ROOT = Path(__file__).resolve().parents[2]
KEY = re.compile(r"[a-z_]+(\.[a-z_0-9]+)+")
PLURAL_CATEGORIES = {"ru": {"one", "few", "many", "other"}, "en": {"one", "other"}}


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def entry_placeholders(key: str, language: str) -> set[str]:
    found = [placeholders(text) for text in forms(catalogue(language)[key])]
    assert all(f == found[0] for f in found), f"{language}:{key}: forms with different placeholders"
    return found[0]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_key_exists_in_every_language(language: str) -> None:
    reference = catalogue("ru")
    assert set(catalogue(language)) == set(reference)


@pytest.mark.parametrize("language", LANGUAGES)
def test_placeholders_and_plural_ness_match_russian(language: str) -> None:
    for key, value in catalogue(language).items():
        russian = catalogue("ru")[key]
        assert isinstance(value, dict) == isinstance(russian, dict), f"{key}: plural in one language only"
        if isinstance(value, dict):
            assert set(value) == PLURAL_CATEGORIES[language], f"{language}:{key}: {sorted(value)}"
        if key.startswith("format."):  # date patterns: each language picks its own fields
            assert entry_placeholders(key, language) <= DATE_FIELDS, key
            continue
        assert entry_placeholders(key, language) == entry_placeholders(key, "ru"), key


def _code_files() -> list[Path]:
    return [p for folder in ("core", "bots", "web") for p in sorted((ROOT / folder).rglob("*.py"))]


FILE_NAME = re.compile(r".*\.(html|js|css|json|toml|txt|svg|png)")
"""`"ticket.html"`, `"widget.js"`: templates named in code, not keys."""
TEMPLATE_KEY = re.compile(r"""\bt\(\s*["']([a-z_]+(?:\.[a-z_0-9]+)+)["']""")
"""`{{ t("web.filter.status") }}` in the web's templates."""


def _template_uses() -> list[tuple[str, str, set[str] | None]]:
    uses: list[tuple[str, str, set[str] | None]] = []
    for path in sorted((ROOT / "web").rglob("templates/**/*")):
        if path.is_file():
            for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
                where = f"{path.relative_to(ROOT)}:{number}"
                uses.extend((where, key, None) for key in TEMPLATE_KEY.findall(line))
    return uses


SECTIONS = {key.split(".")[0] for key in catalogue("ru")}
TEXT_CALLS = {"t", "reply", "Retry"}
"""`t(lang, key, …)`, `ctx.t(key, …)`, `ctx.reply(key, …)`, `Retry(key, …)`: the key is the first string."""


def _uses() -> list[tuple[str, str, set[str] | None]]:
    """(where, key, keyword arguments or None when they cannot be known) for every literal key in code;
    f-string keys (`f"status.{s}"`) give their constant prefix and "…"."""
    uses: list[tuple[str, str, set[str] | None]] = []
    for path in _code_files():
        tree = ast.parse(path.read_text("utf-8"))
        in_fstrings = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
        for node in ast.walk(tree):
            if id(node) in in_fstrings:
                continue
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and KEY.fullmatch(node.value):
                if node.value.split(".")[0] in SECTIONS and not FILE_NAME.fullmatch(node.value):
                    uses.append((where, node.value, None))
            elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
                head = str(node.values[0].value)
                if "." in head and KEY.fullmatch(head.rstrip(".")) and head.split(".")[0] in SECTIONS:
                    uses.append((where, head + "…", None))
            elif isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                literal = [
                    a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
                ]
                if name in TEXT_CALLS and literal and literal[0] in catalogue("ru"):
                    known = all(k.arg is not None for k in node.keywords)
                    names = {k.arg for k in node.keywords if k.arg is not None} - {"buttons"}
                    uses.append((where, literal[0], names if known else None))
    return uses


def test_every_key_used_in_code_exists_with_the_placeholders_it_is_given() -> None:
    """In the bots, the core and the web (its code and its templates), in every language."""
    keys = set(catalogue("ru"))
    uses = _uses()
    templates = _template_uses()
    assert len(uses) > 100 and len(templates) > 50  # the scans themselves work
    uses += templates
    for where, key, given in uses:
        if key.endswith("…"):
            assert any(k.startswith(key[:-1]) for k in keys), f"{where}: no key starts with {key!r}"
            continue
        assert key in keys, f"{where}: {key!r} is not in the catalogues"
        if given is not None:
            for language in LANGUAGES:
                wanted = entry_placeholders(key, language)
                assert wanted <= given, f"{where}: {key} needs {sorted(wanted - given)} ({language})"
                if isinstance(catalogue(language)[key], dict):
                    assert "count" in given, f"{where}: plural {key} without count"


@pytest.mark.parametrize(
    ("n", "russian", "english"),
    [
        (0, "many", "other"),
        (1, "one", "one"),
        (2, "few", "other"),
        (5, "many", "other"),
        (11, "many", "other"),
        (12, "many", "other"),
        (14, "many", "other"),
        (21, "one", "other"),
        (22, "few", "other"),
        (25, "many", "other"),
        (101, "one", "other"),
        (111, "many", "other"),
        (1004, "few", "other"),
    ],
)
def test_plural_rules_follow_cldr(n: int, russian: str, english: str) -> None:
    assert plural_category("ru", n) == russian
    assert plural_category("en", n) == english


@pytest.mark.parametrize(
    ("n", "russian", "english"),
    [
        (1, "хотя бы 1 символ.", "at least 1 character."),
        (2, "хотя бы 2 символа.", "at least 2 characters."),
        (5, "хотя бы 5 символов.", "at least 5 characters."),
        (11, "хотя бы 11 символов.", "at least 11 characters."),
        (21, "хотя бы 21 символ.", "at least 21 characters."),
        (22, "хотя бы 22 символа.", "at least 22 characters."),
        (111, "хотя бы 111 символов.", "at least 111 characters."),
    ],
)
def test_russian_plural_forms_come_from_the_catalogue(n: int, russian: str, english: str) -> None:
    assert t("ru", "report.description.too_short", count=n).endswith(russian)
    assert t("en", "report.description.too_short", count=n).endswith(english)


def test_dates_are_written_each_languages_way() -> None:
    moment = datetime(2026, 12, 4, 9, 5)
    assert date("ru", moment) == "04.12.2026"
    assert date("en", moment) == "4 Dec 2026"
    assert date("en", moment, "datetime") == "4 Dec 2026, 09:05"
    assert date("ru", moment, "day") == "04.12"
    assert date("en", None) == "—"


def test_english_says_no_not_the_numero_sign() -> None:
    assert not [key for key, value in catalogue("en").items() if any("№" in text for text in forms(value))]


def test_missing_key_falls_back_to_the_key_and_languages_normalise() -> None:
    assert t("en", "no.such.key") == "no.such.key"
    assert normalise_language("en-GB") == "en"
    assert normalise_language("uk") == "ru"
    assert normalise_language(None, "en") == "en"
