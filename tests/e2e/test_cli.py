"""The `otklik` command line as an operator and a resident use it: real subprocesses, piped stdin."""

from __future__ import annotations

import json
from pathlib import Path

from core.demo import DEMO_CONFIG_PATH
from tests.support import jpeg_bytes


def test_scripted_report_with_a_photo_then_admin_views(otklik, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    photo = tmp_path / "яма.jpg"
    photo.write_bytes(jpeg_bytes())
    script = "\n".join(
        [
            "/start",
            "1",  # New report
            "Дороги",  # by label
            "1",  # pothole
            "/loc 52.2870 104.2810",
            "Глубокая яма у остановки, машины объезжают по встречной.",
            f"/photo {photo}",
            "Готово",
            "1",  # Submit
            "/my",
        ]
    )
    out = otklik("chat", "--user", "resident-1", stdin=script + "\n")
    assert "Обращение № 1 зарегистрировано" in out
    assert "МКУ «Дорожная служба»" in out
    assert "№ 1 · Дороги → Яма на дороге · передано исполнителю" in out

    ticket = json.loads(otklik("tickets", "show", "1", "--json"))
    assert ticket["status"] == "assigned"
    assert ticket["category"] == "roads" and ticket["subcategory"] == "roads.pothole"
    assert (ticket["lat"], ticket["lon"]) == (52.287, 104.281)
    assert ticket["organisation"] == "roads_service"
    assert len(ticket["photos"]) == 1 and len(ticket["photos"][0]) == 64
    assert [e["action"] for e in ticket["events"]] == ["create", "assign"]
    stored = list((tmp_path / "data" / "photos").rglob("*.jpg"))
    assert [p.stem for p in stored] == ticket["photos"]

    listed = json.loads(otklik("tickets", "list", "--json"))
    assert [t["number"] for t in listed] == [1]
    assert "assigned" in otklik("tickets", "list", "--status", "assigned")
    assert json.loads(otklik("tickets", "list", "--status", "closed", "--json")) == []
    stats = json.loads(otklik("stats", "--json"))
    assert stats["total"] == 1 and stats["by_category"] == {"roads": 1}


def test_half_finished_dialog_resumes_in_a_new_process(otklik) -> None:  # type: ignore[no-untyped-def]
    otklik("chat", "--user", "r2", stdin="/start\n1\n1\n")
    out = otklik("chat", "--user", "r2", stdin="/start\n")
    assert "незаконченное обращение" in out
    assert "Уточните, что случилось" in out  # the subcategory step, where it stopped


def test_english_conversation(otklik) -> None:  # type: ignore[no-untyped-def]
    out = otklik("chat", "--user", "r3", "--lang", "en", stdin="/start\n1\n")
    assert "Choose the category of the problem" in out
    assert "Roads" in out


def test_bad_configuration_is_reported_with_its_line(otklik, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "city.toml"
    bad.write_text('[municipality]\ncode = "x"\nname_ru = \n', encoding="utf-8")
    err = otklik("config", "load", str(bad), expect=2)
    assert "line 3" in err
    missing = otklik("config", "load", str(tmp_path / "nope.toml"), expect=2)
    assert "not found" in missing


def test_config_load_is_idempotent(otklik) -> None:  # type: ignore[no-untyped-def]
    first = otklik("config", "load", str(DEMO_CONFIG_PATH))
    again = otklik("config", "load", str(DEMO_CONFIG_PATH))
    assert "irkutsk" in first and "unchanged" in again


def test_unknown_ticket(otklik) -> None:  # type: ignore[no-untyped-def]
    assert "no ticket" in otklik("tickets", "show", "42", expect=1)
