"""The whole cycle in a terminal, through real `otklik` subprocesses: a resident reports with a photo, an
admin invites staff, staff take and resolve with a photo, the outbox is flushed, the resident receives the
very same photo bytes and rates 5, and the ticket's history shows every step."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image
from sqlalchemy import create_engine, update

from storage.tables import tickets as ticket_rows
from storage.urls import normalise_url
from tests.support import jpeg_bytes


def report_script(photo: Path) -> str:
    return "\n".join(
        [
            "/start",
            "1",  # New report
            "Дороги",
            "1",  # pothole
            "/loc 52.2870 104.2810",
            "Глубокая яма у остановки, машины объезжают по встречной.",
            f"/photo {photo}",
            "Готово",
            "1",  # Submit
        ]
    )


def test_report_resolve_with_a_photo_rate_through_the_cli(otklik, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    report_photo, done_photo = tmp_path / "яма.jpg", tmp_path / "готово.jpg"
    report_photo.write_bytes(jpeg_bytes((200, 30, 30)))
    Image.new("RGB", (80, 60), (30, 160, 60)).save(done_photo, "JPEG")

    out = otklik("chat", "--user", "R", stdin=report_script(report_photo) + "\n")
    assert "Обращение № 1 зарегистрировано" in out

    invited = otklik("staff", "invite", "roads_service")
    code = re.search(r"^/staff (\S+)$", invited, re.M)
    assert code, invited
    assert "does not exist" not in otklik("staff", "invite", "nowhere", expect=2)

    staff_script = [
        f"/staff {code.group(1)}",
        "/queue",
        "1",  # the ticket in the queue
        "Взять в работу",  # Take, by its label
        "1",  # Done (resolve)
        "готово",  # text instead of a photo: refused
        f"/photo {done_photo}",
        "Готово",
        "Яму заделали асфальтом.",
    ]
    out = otklik("chat", "--user", "S", "--name", "Пётр Сидоров", stdin="\n".join(staff_script) + "\n")
    assert "Вы подключены как сотрудник" in out
    assert "Обращения в работе" in out and "№ 1 · Яма на дороге" in out
    assert "Обращение № 1 взято вами в работу" in out
    assert "Без фотографии выполненных работ обращение закрыть нельзя" in out
    assert "Обращение № 1 отмечено как выполненное" in out
    assert "staff:" in otklik("tickets", "show", "1")  # the history names staff

    pending = otklik("outbox", "list")
    assert pending.count("console:R") == 2  # taken, resolved
    flushed = otklik("outbox", "flush")
    assert flushed.startswith("sent 2,") and "still pending 0" in flushed
    listed = otklik("outbox", "list")  # sent messages stay listed, as the README says
    assert listed.count(" sent    console:R ") == 2 and "pending" not in listed

    out = otklik("chat", "--user", "R", stdin="5\n")
    assert "📬 Новые сообщения: 2" in out
    assert "Обращение № 1 взято в работу" in out and "Яму заделали асфальтом." in out
    delivered = re.findall(r"📎 (\S+)  sha256=([0-9a-f]{64})", out)
    assert len(delivered) == 1
    path, sha = delivered[0]
    data = Path(path).read_bytes()
    assert hashlib.sha256(data).hexdigest() == sha  # the bytes the resident got are the stored photo
    assert "Спасибо за оценку (5 из 5)! Обращение № 1 закрыто." in out

    ticket = json.loads(otklik("tickets", "show", "1", "--json"))
    assert ticket["status"] == "closed" and ticket["rating"] == 5
    assert ticket["resolution_photos"] == [sha]
    stored = next((tmp_path / "data" / "photos").rglob(f"{sha}.jpg"))
    assert stored.read_bytes() == data
    assert [e["action"] for e in ticket["events"]] == ["create", "assign", "take", "resolve", "rate"]
    resolve = ticket["events"][3]
    assert resolve["photos"] == [sha] and resolve["comment"] == "Яму заделали асфальтом."
    assert ticket["events"][4]["data"]["rating"] == "5"

    stats = json.loads(otklik("stats", "--json"))
    assert stats["by_organisation"] == {"roads_service": 1}
    assert stats["rating"] == {"count": 1, "mean": 5.0}
    assert stats["resolved_within_deadline"] == {"share": 1.0, "of": 1}
    assert stats["reopen_rate"] == {"share": 0.0, "of": 1}
    assert stats["first_response_hours"]["count"] == 1
    assert "mean rating           5.0 (of 1)" in otklik("stats")

    assert otklik("outbox", "flush").startswith("sent 1,")  # the staff member hears about the rating
    out = otklik("chat", "--user", "S", stdin="")
    assert "Житель оценил выполнение обращения № 1: 5 из 5." in out
    staff = json.loads(otklik("staff", "list", "--json"))
    assert staff == [
        {
            "id": 1,
            "role": "staff",
            "organisation": "roads_service",
            "chat": "console:S",
            "name": "Пётр Сидоров",
            "removed_at": None,
        }
    ]


def test_tickets_list_shows_overdue_and_failed_messages_are_listed(  # type: ignore[no-untyped-def]
    otklik, env: dict[str, str], tmp_path: Path
) -> None:
    photo = tmp_path / "p.jpg"
    photo.write_bytes(jpeg_bytes())
    otklik("chat", "--user", "R", stdin=report_script(photo) + "\n")
    listed = json.loads(otklik("tickets", "list", "--json"))
    assert listed[0]["overdue"] is False and "overdue" not in otklik("tickets", "list")

    url = env.get("DATABASE_URL") or f"sqlite:///{tmp_path / 'data' / 'otklik.sqlite3'}"
    engine = create_engine(normalise_url(url))
    try:
        with engine.begin() as conn:  # the deadline passed
            past = datetime.now(UTC) - timedelta(days=1)
            conn.execute(update(ticket_rows).values(deadline=past))
    finally:
        engine.dispose()
    assert json.loads(otklik("tickets", "list", "--json"))[0]["overdue"] is True
    assert "⚠ overdue" in otklik("tickets", "list")
    assert json.loads(otklik("stats", "--json"))["overdue"] == 1
    assert otklik("outbox", "list", "--failed") == "no failed messages\n"


def test_console_button_number_with_a_unicode_digit_is_text(otklik) -> None:  # type: ignore[no-untyped-def]
    """Typing "²" or a 30-digit number where numbered buttons are shown crashed `otklik chat`."""
    out = otklik("chat", "--user", "R", stdin="/start\n²\n" + "9" * 30 + "\n1\n")
    from core.texts import catalogue

    texts = catalogue("ru")
    assert "Traceback" not in out
    assert out.count(texts["menu.unknown_text"]) == 2, out  # both are text, answered with the menu
    assert texts["report.category.ask"] in out  # and "1" still presses the first button
