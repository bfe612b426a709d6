"""Residents' personal data from the command line, with the consent notice on as `otklik run` has it: a
resident agrees and reports in the terminal, `/mydata` prints the export, the operator's `residents show`,
`residents forget` and `photos hide` — and afterwards no file under DATA_DIR names the resident."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import jpeg_bytes

USER = "resident-4242"


def test_consent_report_mydata_then_the_operator_forgets_the_resident(otklik, env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env["CONSENT_REQUIRED"] = "true"
    photo, draft = tmp_path / "яма.jpg", tmp_path / "черновик.jpg"
    photo.write_bytes(jpeg_bytes())
    draft.write_bytes(jpeg_bytes((10, 200, 10)))
    script = [
        "/start",
        "1",  # I agree
        "1",  # New report
        "Дороги",
        "1",  # pothole
        "/loc 52.2870 104.2810",
        "Глубокая яма у остановки, машины объезжают по встречной.",
        f"/photo {photo}",
        "Готово",
        "1",  # Submit
        "1",  # New report again: a draft left with a photo
        "Дороги",
        "1",
        "/loc 52.2990 104.2810",
        "Черновик, который так и не будет отправлен никогда.",
        f"/photo {draft}",
        "/mydata",
    ]
    out = otklik("chat", "--user", USER, stdin="\n".join(script) + "\n")
    assert "Прежде чем принять обращение" in out and "https://admirk.ru/personal-data/" in out
    assert "Спасибо, согласие записано." in out
    assert "Обращение № 1 зарегистрировано" in out
    assert "📎 otklik-my-data.json:" in out and f'"chat_id": "{USER}"' in out

    kept = json.loads(otklik("residents", "show", f"console:{USER}"))
    assert [t["number"] for t in kept["tickets"]] == [1] and kept["consent"]["agreed"] is True
    assert kept["draft"]["photos"]  # the unsent draft's photo

    assert "hidden" in otklik("photos", "hide", "1", "1")
    assert "no photo 2" in otklik("photos", "hide", "1", "2", expect=2)
    shown = json.loads(otklik("tickets", "show", "1", "--json"))
    assert shown["photos"] == [] and shown["hidden_photos"] == 1

    assert "expected CHANNEL:ID" in otklik("residents", "forget", "nonsense", expect=2)
    done = json.loads(otklik("residents", "forget", f"console:{USER}", "--json"))
    assert done == {"tickets_anonymised": 1, "photos_removed": 1}

    shown = json.loads(otklik("tickets", "show", "1", "--json"))
    assert shown["author"] is None and shown["status"] == "assigned"
    assert json.loads(otklik("stats", "--json"))["total"] == 1
    assert json.loads(otklik("residents", "show", f"console:{USER}"))["tickets"] == []
    data = tmp_path / "data"
    photos = sorted(p.stem for p in (data / "photos").rglob("*.jpg"))
    assert len(photos) == 1  # the ticket's photo stays (hidden); the draft's is gone
    if "DATABASE_URL" not in env:  # the embedded database file itself no longer holds the id
        assert USER.encode() not in (data / "otklik.sqlite3").read_bytes()
