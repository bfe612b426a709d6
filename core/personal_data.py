"""The city's personal-data policy as the engine applies it (152-ФЗ): whether residents must agree to the
notice before their first report, and how long closed tickets keep their author's identity."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from functools import cache
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


@cache
def _log_key() -> bytes:
    return secrets.token_bytes(16)


def pseudonym(value: object) -> str:
    """What logs say instead of a chat or user id (152-ФЗ: no personal data in logs): a keyed hash, the same
    for one id throughout a process — so one person's trouble can be followed — that no log reader can turn
    back into the id (the key lives in the process only; plain hashes of 10-digit ids are guessable)."""
    digest = hashlib.blake2s(str(value).encode(), key=_log_key(), digest_size=6).hexdigest()
    return f"id~{digest}"
