"""What the admin commands must not import (issue 17: they start in ≤ 0.3 s; bench/startup_cli.py times them).

Each of these packages costs tens of milliseconds to import and belongs to another command: the channels'
libraries and the HTTP stack to `run`, alembic to `db upgrade`, shapely to `config load`, Pillow to the first
photo decoded, the engine and the Prometheus client to the commands that handle updates; the ORM to none
(storage/ speaks SQLAlchemy Core only); pydantic to `run` (the admin commands read their settings with
bots/env_settings.py); ctypes to the first photo decoded (looking glibc up with it runs `ldconfig -p` in a
subprocess) or to psycopg. A structure test, not a timing one: an import that creeps back into
the admin path fails here whatever the machine's load.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.demo import DEMO_CONFIG_PATH

REPO = Path(__file__).resolve().parents[2]
LOADED = (
    "import gc, sys; sys.path.insert(0, {repo!r}); from bots.entry import main; status = main(); "
    "print('\\nLOADED', gc.isenabled(), ' '.join(sorted(sys.modules))); raise SystemExit(status)"
)
"""The `otklik` executable (bots/entry.py), then: is the cyclic collector on, and what is loaded."""
NEVER = (
    "aiogram",
    "telegram",
    "vkbottle",
    "aiohttp",
    "geopy",
    "alembic",
    "PIL",
    "prometheus_client",
    "boto3",
    "sqlalchemy.orm",
    "pydantic",
    "pydantic_core",
    "pydantic_settings",
    "core.engine",
    "core.dialogs",
    "bots.runner",
    "web.server",
)
"""Top-level packages or our modules (and everything under them)."""
ADMIN = (
    ["tickets", "list"],
    ["tickets", "list", "--json"],
    ["stats"],
    ["staff", "list"],
    ["outbox", "list"],
    ["open311", "keys", "list"],
)


def loaded_by(command: list[str], env: dict[str, str], cwd: Path) -> set[str]:
    argv = [sys.executable, "-c", LOADED.format(repo=str(REPO)), *command]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=90)
    assert done.returncode == 0, done.stderr
    collector, *modules = done.stdout.rsplit("\nLOADED ", 1)[1].split()
    assert collector == "True"  # off only while otklik imports: a long command (an export) must collect
    return set(modules)


def forbidden(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.fixture
def ready(otklik, env: dict[str, str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A database at the current revision with the demo city: what the admin commands meet day to day."""
    otklik("db", "upgrade")
    otklik("config", "load", str(DEMO_CONFIG_PATH))
    return env


@pytest.mark.parametrize("command", ADMIN, ids=" ".join)
def test_admin_commands_import_no_channel_web_migration_or_picture_library(
    command: list[str], ready: dict[str, str], tmp_path: Path
) -> None:
    modules = loaded_by(command, ready, tmp_path)
    never = (*NEVER, "shapely", "numpy")
    if "DATABASE_URL" not in ready:
        # SQLite: PostgreSQL's dialect imports all its drivers' modules, and psycopg imports ctypes.
        never += ("sqlalchemy.dialects.postgresql", "ctypes")
    assert forbidden(modules, never) == []


def test_config_load_imports_shapely_but_no_channel_or_migration_library(
    ready: dict[str, str], tmp_path: Path
) -> None:
    modules = loaded_by(["config", "load", str(DEMO_CONFIG_PATH)], ready, tmp_path)
    assert "shapely" in modules  # the polygon checks: where shapely belongs
    assert forbidden(modules, NEVER) == []
