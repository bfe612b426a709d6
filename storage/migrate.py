"""Schema migrations without an alembic.ini, so they run the same from a checkout and an installed package.

The alembic Config is built in code with `script_location` pointing at the `migrations` package.

Changing the schema (from a source checkout, after editing storage/tables.py):

    python -m storage.migrate revision -m "add staff table"

autogenerates `migrations/versions/NNNN_<slug>.py` by comparing the tables with a temporary SQLite database
upgraded to the current head, then runs ruff on it when ruff is installed. Review the file: autogenerate
does not see renames, server defaults or data changes.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

import migrations
from storage.leader import migration_lock
from storage.urls import normalise_url

MIGRATIONS_DIR = Path(migrations.__file__).parent
VERSIONS_DIR = MIGRATIONS_DIR / "versions"


def make_config(url: str | None = None) -> Config:
    """The URL travels in `attributes`, not in the ini options, so passwords containing `%` survive."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    """Under an advisory lock on PostgreSQL, so two workers starting at once do not both migrate; the
    revisions before and after, read under the same lock (the second of two says it found nothing to do)."""
    with migration_lock(url):
        before = current_revision(url)
        command.upgrade(make_config(url), revision)
        return before, current_revision(url)


def head_revisions() -> tuple[str, ...]:
    return tuple(ScriptDirectory.from_config(make_config()).get_heads())


def _current_heads(url: str) -> tuple[str, ...]:
    engine = create_engine(normalise_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return tuple(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    """None for a database alembic has never touched."""
    heads = _current_heads(url)
    if len(heads) > 1:
        raise RuntimeError(f"database has several alembic heads: {', '.join(heads)}")
    return heads[0] if heads else None


def revisions_between(before: str | None, after: str | None) -> list[tuple[str, str]]:
    """(revision, message) of every migration from `before` (exclusive; None = empty database) up to `after`
    (inclusive), oldest first."""
    if after is None or before == after:
        return []
    scripts = ScriptDirectory.from_config(make_config())
    walked = scripts.iterate_revisions(after, before or "base")
    return [(script.revision, script.doc or "") for script in reversed(list(walked))]


def is_up_to_date(url: str) -> bool:
    return set(_current_heads(url)) == set(head_revisions())


def schema_behind(url: str) -> str | None:
    """Why this code must not run on the database yet (one line), or None. A schema *older* than the code
    refuses; a newer one (a rolling upgrade: another host migrated first) is allowed, migrations being
    additive, and so is the current one."""
    current = set(_current_heads(url))
    code = set(head_revisions())
    if current == code:
        return None
    scripts = ScriptDirectory.from_config(make_config())
    known = {script.revision for script in scripts.walk_revisions()}
    if current and not current <= known:
        return None  # migrated by a newer otklik
    shown = ", ".join(sorted(current)) or "empty"
    return f"the database schema is at revision {shown}, this otklik needs {', '.join(sorted(code))}"


# --- developer commands: they write into migrations/versions, so run them from a source checkout ---


@contextmanager
def _scratch_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="otklik-migrate-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'schema.sqlite3'}"


def _authoring_config(url: str) -> Config:
    config = make_config(url)
    config.attributes["skip_empty"] = True
    if importlib.util.find_spec("ruff") is not None:
        # Generated files then pass `ruff check` and `ruff format` like the rest of the code.
        section = "post_write_hooks"
        config.set_section_option(section, "hooks", "ruff_format ruff_fix")
        for name, options in (("ruff_format", "format --quiet"), ("ruff_fix", "check --fix --quiet")):
            config.set_section_option(section, f"{name}.type", "module")
            config.set_section_option(section, f"{name}.module", "ruff")
            config.set_section_option(section, f"{name}.options", f"{options} REVISION_SCRIPT_FILENAME")
    return config


def _next_revision_id(config: Config) -> str | None:
    """Keep the 0001, 0002, … sequence readable; fall back to alembic's random ids if it was ever broken."""
    ids = [script.revision for script in ScriptDirectory.from_config(config).walk_revisions()]
    if not all(rev.isdigit() for rev in ids):
        return None
    return f"{max((int(rev) for rev in ids), default=0) + 1:04d}"


def create_revision(message: str, *, autogenerate: bool = True) -> Path | None:
    """Write the next revision file; None when autogenerate found nothing to do."""
    with _scratch_database() as url:
        upgrade(url)
        config = _authoring_config(url)
        script = command.revision(
            config, message=message, autogenerate=autogenerate, rev_id=_next_revision_id(config)
        )
    return Path(script.path) if script is not None and not isinstance(script, list) else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m storage.migrate", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    revision = commands.add_parser("revision", help="autogenerate the next revision from storage/tables.py")
    revision.add_argument("-m", "--message", required=True)
    revision.add_argument(
        "--autogenerate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compare the tables with the migrated schema (default); --no-autogenerate writes an empty one",
    )
    args = parser.parse_args(argv)

    try:
        path = create_revision(args.message, autogenerate=args.autogenerate)
        print(f"wrote {path}" if path else "no schema changes detected; nothing written")
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
