"""bots/env_settings.py reads what `Settings` reads, without pydantic: the admin commands' settings.

The settings are public interface (DESIGN.md §8), so the quick reader must agree with `Settings` on every
field, default and value it accepts itself, and hand every other value to `Settings` (whose messages the
operator then reads).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from annotated_types import Ge, Gt, Le
from pydantic import ValidationError

from bots import env_settings
from bots.settings import Settings

SAMPLES = [
    *("0", "1", "7", "8", "08", "-1", "+3", " 5", "5 ", "1.5", "0.25", "1e3", "1_000", "nan", "inf", "12abc"),
    *("true", "false", "on", "off", "yes", "no", "True", "OFF", "t", "f", "y", "n", "2"),
    *("ru", "en", "EN", "aiogram", "ptb", "nominatim", "yandex", "off"),
    *("https://city.ru", "https://city.ru,self", "self", "city.ru", "s3://bucket/x", "s3://", "ftp://x"),
    *(
        "sqlite:///x.db",
        "postgresql://u:p@h/db",
        "mysql://h/db",
        "not a url",
        "~/otklik",
        "data",
        "/srv/otklik",
    ),
    *("https://city.example.org/photos/", "secret-token", "© x", "  padded  "),
]


def shown(value: Any) -> Any:
    """A field's value with its type, secrets compared by what they hold."""
    if hasattr(value, "get_secret_value"):
        return ("secret", value.get_secret_value())
    return (type(value).__name__, value)


def fields(settings: Any) -> dict[str, Any]:
    return {name: shown(getattr(settings, name)) for name in Settings.model_fields}


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No setting in the environment, and a directory without .env."""
    for name in os.environ:
        if name.lower() in Settings.model_fields:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def bound_samples(name: str) -> list[str]:
    """Each bound of a numeric field, and just past it."""
    samples = []
    for rule in Settings.model_fields[name].metadata:
        for kind, attribute in ((Ge, "ge"), (Le, "le"), (Gt, "gt")):
            if isinstance(rule, kind):
                edge = int(getattr(rule, attribute))
                samples += [str(edge - 1), str(edge), str(edge + 1)]
    return samples


def test_the_same_fields_in_the_same_order() -> None:
    assert list(env_settings.FIELDS) == list(Settings.model_fields)


def test_the_same_defaults(clean: pytest.MonkeyPatch) -> None:
    quick = env_settings.read(os.environ, env_settings.ENV_FILE)
    assert quick is not None
    assert fields(quick) == fields(Settings())
    assert quick.model_fields_set == set()


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_each_value_the_quick_reader_takes_is_what_settings_makes_of_it(
    name: str, clean: pytest.MonkeyPatch
) -> None:
    taken = 0
    for sample in SAMPLES + bound_samples(name):
        clean.setenv(name.upper(), sample)
        quick = env_settings.read(os.environ)
        try:
            full: Settings | None = Settings()
        except ValidationError:
            full = None
        if quick is None:
            continue  # Settings judges it, and words the error if there is one
        taken += 1
        assert full is not None, f"{name.upper()}={sample!r}: taken, but Settings refuses it"
        assert fields(quick) == fields(full), f"{name.upper()}={sample!r}"
        assert quick.model_fields_set == full.model_fields_set == {name}
    assert taken  # every field has values the admin commands read without pydantic


def test_env_file_names_in_any_case_empty_values_and_the_environment_first(clean: pytest.MonkeyPatch) -> None:
    Path(".env").write_text(
        "# comment\nDATA_DIR=from-file\nhttp_port=9000\nVK_GROUP_ID=\nGEOCODER=off\n"
        "TELEGRAM_BOT_TOKEN='123:abc'\nexport PUBLIC_MAP=on\nUNKNOWN=1\nWIDGET_ORIGINS\n",
        encoding="utf-8",
    )
    clean.setenv("Geocoder", "yandex")
    clean.setenv("HTTP_PORT", "")  # empty: not set, so the file's value counts
    quick = env_settings.read(os.environ)
    full = Settings()
    assert quick is not None
    assert fields(quick) == fields(full)
    assert quick.model_fields_set == full.model_fields_set
    assert (quick.geocoder, quick.http_port, quick.data_dir) == ("yandex", 9000, Path("from-file").absolute())


def test_a_value_for_pydantic_to_judge_in_the_env_file_leaves_it_to_settings(
    clean: pytest.MonkeyPatch,
) -> None:
    Path(".env").write_text("DATABASE_POOL_SIZE=500\n", encoding="utf-8")
    assert env_settings.read(os.environ) is None
    with pytest.raises(ValidationError):
        Settings()


def test_derived_values_and_masked_secrets_as_settings_shows_them(clean: pytest.MonkeyPatch) -> None:
    clean.setenv("DATABASE_URL", "postgresql://otklik:s3cret@db:5432/city")
    clean.setenv("WEBHOOK_SECRET", "hook")
    clean.setenv("WIDGET_ORIGINS", "self")
    quick, full = env_settings.read(os.environ), Settings()
    assert quick is not None
    for derived in ("effective_database_url", "web_url", "map_page_url", "is_embedded", "shown_database_url"):
        assert getattr(quick, derived) == getattr(full, derived)
    assert (str(quick.webhook_secret), repr(quick.webhook_secret)) == (
        str(full.webhook_secret),
        repr(full.webhook_secret),
    )


def test_the_logs_redact_the_same_secrets(clean: pytest.MonkeyPatch) -> None:
    from bots.logging_setup import configured_secrets

    clean.setenv("DATABASE_URL", "postgresql://otklik:s3cret@db:5432/city")
    clean.setenv("TELEGRAM_BOT_TOKEN", "123456:token")
    clean.setenv("S3_SECRET_ACCESS_KEY", "key")
    quick = env_settings.read(os.environ)
    assert quick is not None
    assert (
        sorted(configured_secrets(quick))
        == sorted(configured_secrets(Settings()))
        == ["123456:token", "key", "s3cret"]
    )
