"""`storage.revision` decides without alembic whether a command must upgrade the embedded database: it must
agree with alembic about the heads, or a database would be left behind (or upgraded on every command)."""

from __future__ import annotations

from pathlib import Path

from storage.migrate import head_revisions, upgrade
from storage.revision import database_heads, is_current, script_heads


def test_heads_read_from_the_files_are_alembics() -> None:
    assert script_heads() == frozenset(head_revisions())


def test_a_new_database_is_not_current_until_upgraded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new.sqlite3"
    assert database_heads(url) == frozenset()
    assert not is_current(url)
    upgrade(url)
    assert is_current(url)


def test_a_database_one_revision_behind_is_not_current(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.sqlite3"
    upgrade(url, "0005")
    assert not is_current(url)


def test_a_merge_revision_lists_both_parents(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('revision: str = "a"\ndown_revision = None\n')
    (tmp_path / "b.py").write_text('revision = "b"\ndown_revision: str | None = "a"\n')
    (tmp_path / "c.py").write_text('revision = "c"\ndown_revision = "a"\n')
    (tmp_path / "m.py").write_text('revision = "m"\ndown_revision = ("b", "c")\n')
    assert script_heads(tmp_path) == frozenset({"m"})
