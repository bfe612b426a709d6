"""The admin command line as a city operator uses it: which database and folder, what `db upgrade` did,
refused invitation lifetimes, output into `head`, local times with their zone, sent messages in the outbox."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from core.demo import DEMO_CONFIG_PATH
from tests.conftest import OTKLIK

REPORT = "/start\n1\n1\n1\n/loc 52.2870 104.2810\nГлубокая яма у остановки, машины объезжают.\n1\n1\n"
IRKUTSK = "+08:00"  # the demo city's offset: Asia/Irkutsk has no summer time


def run(env: dict[str, str], cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OTKLIK, *args], input=stdin, capture_output=True, text=True, env=env, cwd=cwd, timeout=90
    )


def embedded(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """SQLite with no DATA_DIR: the default data folder, under a private XDG_DATA_HOME."""
    env = {k: v for k, v in env.items() if k not in ("DATA_DIR", "DATABASE_URL")}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    return env


# --- item 4: one data folder, whatever the working directory ------------------------------------------------
def test_default_data_folder_does_not_depend_on_the_working_directory(
    env: dict[str, str], tmp_path: Path
) -> None:
    env = embedded(env, tmp_path)
    here, elsewhere = tmp_path / "checkout", tmp_path / "somewhere" / "else"
    here.mkdir()
    elsewhere.mkdir(parents=True)
    assert run(env, here, "chat", "--user", "r1", stdin=REPORT).returncode == 0
    listed = run(env, elsewhere, "tickets", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [t["number"] for t in json.loads(listed.stdout)] == [1]
    assert (tmp_path / "xdg" / "otklik" / "otklik.sqlite3").is_file()
    assert not (here / "data").exists() and not (elsewhere / "data").exists()


def test_otklik_run_says_which_database_folder_and_channels(env: dict[str, str], tmp_path: Path) -> None:
    env = embedded(env, tmp_path)
    done = run(env, tmp_path, "run", stdin="")  # the console channel; end of input stops it
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "xdg" / "otklik"
    assert f"otklik: database sqlite:///{folder / 'otklik.sqlite3'}\n" in done.stderr
    assert f"otklik: data folder {folder} (log: {folder / 'otklik.log'})\n" in done.stderr
    assert "otklik: channels: console\n" in done.stderr


def test_otklik_run_never_prints_the_database_password(env: dict[str, str], tmp_path: Path) -> None:
    url = env.get("DATABASE_URL")
    if url is None:
        pytest.skip("needs a PostgreSQL server (TEST_DATABASE_URL)")
    run(env, tmp_path, "db", "upgrade")
    run(env, tmp_path, "config", "load", str(DEMO_CONFIG_PATH))
    env["DATABASE_URL"] = url.replace("://postgres@", "://postgres:hunter2@")  # trust auth ignores it
    done = run(env, tmp_path, "run", stdin="")
    assert done.returncode == 0, done.stderr
    assert "otklik: database postgresql://postgres:***@" in done.stderr and "hunter2" not in done.stderr


def test_a_database_left_in_the_old_default_folder_is_pointed_out(
    env: dict[str, str], tmp_path: Path
) -> None:
    env = embedded(env, tmp_path)
    old = dict(env, DATA_DIR="data")  # where earlier versions kept it, relative to the working directory
    assert run(old, tmp_path, "db", "upgrade").returncode == 0
    done = run(env, tmp_path, "run", stdin="")
    assert f"DATA_DIR={tmp_path / 'data'}" in done.stderr


# --- item 5 ------------------------------------------------------------------------------------------------
def test_db_upgrade_on_an_empty_database_says_what_it_did(env: dict[str, str], tmp_path: Path) -> None:
    first = run(env, tmp_path, "db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert re.match(
        r"applied \d+ migrations? \(empty database → \d{4}\):\n  0001  initial schema\n", first.stdout
    )
    again = run(env, tmp_path, "db", "upgrade")
    assert again.returncode == 0, again.stderr
    assert re.fullmatch(r"database is up to date \(revision \d{4}\)\n", again.stdout)


@pytest.mark.parametrize("hours", ["-5", "0", "1e308", "nan", "721", "soon"])
def test_staff_invite_with_hours_expired_or_absurd_is_refused(otklik, hours: str) -> None:  # type: ignore[no-untyped-def]
    err = otklik("staff", "invite", "roads_service", "--hours", hours, expect=2)
    assert "--hours" in err and "Traceback" not in err
    assert "no staff yet" in otklik("staff", "list")  # and nothing was made
    assert "/staff " in otklik("staff", "invite", "roads_service", "--hours", "0.5")


def test_tickets_show_json_into_a_closed_pipe_has_no_broken_pipe_error(
    otklik, env: dict[str, str], tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    otklik("chat", "--user", "r1", stdin=REPORT)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before otklik writes, like `head -1` after its line
    try:
        done = subprocess.run(
            [OTKLIK, "tickets", "show", "1", "--json"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=90,
        )
    finally:
        os.close(write_end)
    assert "BrokenPipeError" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.stderr == ""
    shell = subprocess.run(
        f"'{OTKLIK}' tickets show 1 --json | head -1",
        shell=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=90,
    )
    assert shell.stdout == "{\n" and shell.stderr == ""


def test_cli_prints_local_times_with_their_zone(otklik) -> None:  # type: ignore[no-untyped-def]
    otklik("chat", "--user", "r1", stdin=REPORT)
    invite = json.loads(otklik("staff", "invite", "roads_service", "--json"))
    assert invite["expires_at"].endswith(IRKUTSK)
    ticket = json.loads(otklik("tickets", "show", "1", "--json"))
    assert ticket["created_at"].endswith(IRKUTSK) and ticket["deadline"].endswith(IRKUTSK)
    assert all(e["at"].endswith(IRKUTSK) for e in ticket["events"])
    listed = json.loads(otklik("tickets", "list", "--json"))
    assert listed[0]["created_at"] == ticket["created_at"]
    local = ticket["created_at"][:10] + " " + ticket["created_at"][11:16] + " +08"
    assert local in otklik("tickets", "list")
    shown = otklik("tickets", "show", "1")
    assert f"created_at: {local}" in shown and f"  {local} create" in shown
    assert "valid until " in otklik("staff", "invite", "roads_service") and " +08 (Asia/Irkutsk)" in otklik(
        "staff", "invite", "roads_service"
    )
