"""The user helper of tests/users.py itself: a check called without `await` is caught, not skipped."""

from __future__ import annotations

from core.engine import Engine
from tests.support import Resident
from tests.users import unawaited_checks


async def test_an_expect_without_await_is_reported_with_where_it_was_called(engine: Engine) -> None:
    resident = Resident(engine)
    await resident.command("start")
    resident.expect("menu.welcome", "menu.prompt")  # the mistake itself
    [left] = unawaited_checks()  # what the autouse fixture of tests/conftest.py fails the test with
    assert left.endswith("test_user_helper.py:13: expect('menu.welcome', 'menu.prompt')")
    await resident.expect("menu.welcome", "menu.prompt")
    assert unawaited_checks() == []
