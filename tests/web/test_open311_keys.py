"""`otklik open311 keys add|list|revoke`, run in-process through the real CLI on an embedded database: a key
is printed once and only its hash is stored; names are checked and never reused; revoking refuses the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bots.cli import main
from bots.settings import Settings
from core.open311 import find_key, hash_key
from storage.database import Database


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    for name in ("DATABASE_URL", "MUNICIPALITY_CONFIG", "TELEGRAM_BOT_TOKEN", "VK_GROUP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GEOCODER", "off")
    return tmp_path / "data"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_keys_add_list_revoke(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "open311", "keys", "add", "city-app", "--json")
    assert status == 0
    made = json.loads(out)
    assert made["name"] == "city-app" and made["rights"] == "read-write" and made["rate_per_minute"] == 60
    key = made["key"]
    assert key.startswith("o311_") and len(key) > 40
    status, out, _ = run(capsys, "open311", "keys", "add", "viewer", "--read-only", "--rate", "5")
    assert status == 0 and "read-only" in out and "5 requests a minute" in out

    stored = (data_dir / "otklik.sqlite3").read_bytes()
    assert key.encode() not in stored and hash_key(key).encode() in stored  # only the hash is kept
    db = Database(Settings().effective_database_url)
    try:
        found = db.run_sync(lambda uow: find_key(uow, key))
        assert found is not None and found.name == "city-app" and found.can_write
    finally:
        db.close()

    status, _, err = run(capsys, "open311", "keys", "add", "city-app")
    assert status == 2 and "exists already" in err
    status, _, err = run(capsys, "open311", "keys", "add", "Bad Name!")
    assert status == 2 and "key name" in err
    with pytest.raises(SystemExit):
        run(capsys, "open311", "keys", "add", "x", "--rate", "0")

    status, out, _ = run(capsys, "open311", "keys", "list", "--json")
    listed = json.loads(out)
    assert [(k["name"], k["rights"], k["revoked_at"]) for k in listed] == [
        ("city-app", "read-write", None),
        ("viewer", "read-only", None),
    ]
    assert key not in out
    status, out, _ = run(capsys, "open311", "keys", "revoke", "city-app")
    assert status == 0 and "revoked" in out
    status, _, err = run(capsys, "open311", "keys", "revoke", "city-app")
    assert status == 1 and "no active API key" in err
    db = Database(Settings().effective_database_url)
    try:
        assert db.run_sync(lambda uow: find_key(uow, key)) is None
    finally:
        db.close()
    status, out, _ = run(capsys, "open311", "keys", "list")
    assert "revoked" in out.splitlines()[0] and "viewer" in out


def test_a_photo_prefix_that_is_not_a_web_address_is_a_wrong_setting(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPEN311_PHOTO_URL", "/srv/photos/")
    status, _, err = run(capsys, "open311", "keys", "list")
    assert status == 2 and "OPEN311_PHOTO_URL" in err


def test_apikey_create_list_revoke_as_the_issue_names_them(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`otklik apikey create|list|revoke` is the same command as `open311 keys add|list|revoke`."""
    status, out, _ = run(capsys, "apikey", "create", "gis-portal", "--read-only", "--json")
    assert status == 0
    made = json.loads(out)
    assert made["name"] == "gis-portal" and made["rights"] == "read-only"
    status, out, _ = run(capsys, "open311", "keys", "list", "--json")
    assert [k["name"] for k in json.loads(out)] == ["gis-portal"]  # one store, whichever spelling made it
    status, out, _ = run(capsys, "apikey", "list")
    assert status == 0 and "gis-portal" in out and made["key"] not in out
    status, out, _ = run(capsys, "apikey", "revoke", "gis-portal")
    assert status == 0 and "revoked" in out
