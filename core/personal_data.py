"""The city's personal-data policy as the engine applies it (152-ФЗ): whether residents must agree to the
notice before their first report, and how long closed tickets keep their author's identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

NOTICE_VERSION = "2026-12-01"
"""The version of the notice's text (core/locales: `privacy.notice`). Recorded with each answer; change it
whenever the text changes in substance, so that what each resident agreed to stays known."""


@dataclass(frozen=True, slots=True)
class PrivacyPolicy:
    consent_required: bool = True
    """Residents agree to the notice (a button) before their first report is stored."""
    retention_days: int = 3 * 365
    """Days after closing before a ticket is anonymised; 0: never (the notice then says so)."""


NO_CONSENT: Final = PrivacyPolicy(consent_required=False)
"""What an engine built bare (tests, benchmarks) applies: no notice before reports."""
