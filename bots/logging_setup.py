"""No secret in any log: the configured tokens, secrets and keys are redacted from every log record.

Libraries log what they send: httpx logs each request URL at INFO (a Telegram URL carries the bot token,
`…/bot<token>/getUpdates`), vkbottle logs request data with the group's `access_token` at DEBUG, geopy
logs the Yandex URL with its `apikey`, and any exception text may quote a URL. Redaction therefore works on
the record, not on one library's logger:

- a log-record factory rewrites every record as it is made (message rendered with its args, exception and
  stack text rendered too), so handlers that libraries add later (vkbottle installs its own stream handler
  when it is imported) and loggers that do not propagate see only redacted text;
- the same redaction as a filter on the root logger's handlers catches records made without the factory
  (`logging.makeLogRecord`, records from other processes).

What is redacted: each configured secret value (also URL-quoted), Telegram-token-shaped strings, the token
in a Telegram `/bot<token>/` path, and `access_token=` / `apikey=` / `key=` / `secret=` query values.
Chatty HTTP loggers (httpx, httpcore) are turned down to WARNING even with `-v`.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus

from sqlalchemy import make_url

if TYPE_CHECKING:
    from bots.settings import Settings

MASK = "***"
QUIET_LOGGERS = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "hpack": logging.WARNING}

# A Telegram bot token: the bot id, a colon, 35 characters of base64url (shorter ones in tests).
TOKEN_SHAPE = re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{20,}")
# The token as a Bot API URL path segment: …/bot<token>/method and …/file/bot<token>/path.
BOT_PATH = re.compile(r"(/bot)\d+:[^/\s'\"?]+")
# Credentials as query parameters or form fields: VK access_token, Yandex apikey, generic key/secret.
QUERY_SECRET = re.compile(
    r"(\b(?:access_token|apikey|api_key|key|secret|token)['\"]?\s*[=:]\s*['\"]?)[^&\s'\",}]+",
    re.IGNORECASE,
)


class Redactor(logging.Filter):
    """Replaces secrets in a record's message (rendered with its args), exception and stack text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: list[str] = []
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        """Redact these values too (also stripped and URL-quoted, as they may appear in a request)."""
        variants = set(self.secrets)
        for secret in secrets:
            for value in {secret, secret.strip()}:
                if value:
                    variants.update((value, quote(value, safe=""), quote_plus(value)))
        # Longest first, so a secret that contains another is replaced whole.
        self.secrets = sorted(variants, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        text = TOKEN_SHAPE.sub(MASK, text)
        text = BOT_PATH.sub(r"\1" + MASK, text)
        return QUERY_SECRET.sub(r"\1" + MASK, text)

    def redact_record(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: keep what can be shown, without the arguments
            message = f"{record.msg!s} (unformattable arguments)"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)

    def filter(self, record: logging.LogRecord) -> bool:
        self.redact_record(record)
        return True


def configured_secrets(settings: Settings) -> list[str]:
    """Every secret value in the settings (tokens, webhook secret, API keys, the database password)."""
    values = [  # pydantic's SecretStr, or bots/env_settings.py's Secret for the admin commands
        value.get_secret_value()
        for value in vars(settings).values()
        if hasattr(value, "get_secret_value") and value.get_secret_value()
    ]
    if settings.database_url:
        try:
            password = make_url(settings.database_url).password
        except Exception:  # not a URL we can parse: nothing to take from it
            password = None
        if password:
            values.append(str(password))
    return values


_active: Redactor | None = None


def redact_also(secret: str) -> None:
    """A secret made at start-up rather than configured (the webhook secret derived from the bot token)."""
    if _active is not None:
        _active.add(secret)


def install_redaction(settings: Settings) -> Redactor:
    """Redact the configured secrets from every log record from now on; quieten chatty HTTP loggers."""
    global _active
    redactor = _active = Redactor(configured_secrets(settings))
    base_factory = logging.getLogRecordFactory()
    # Installing twice (tests call main() more than once) must not stack redactors.
    base_factory = getattr(base_factory, "otklik_base", base_factory)

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = base_factory(*args, **kwargs)
        redactor.redact_record(record)
        return record

    factory.otklik_base = base_factory  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, Redactor)]:
            handler.removeFilter(old)
        handler.addFilter(redactor)
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    return redactor
