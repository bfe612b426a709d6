"""Sessions and forms of the city's web: a signed, HttpOnly, SameSite cookie holding the session token
(its sha256 is what the database keeps, core/weblogin.py), a CSRF token per session on every form, and the
signed one-shot notice ("flash") an action leaves for the page it redirects to."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from core import weblogin
from core.ports import StaffMember
from core.texts import LANGUAGES

SESSION_COOKIE = "otklik_session"
FLASH_COOKIE = "otklik_flash"
COOKIE_PATH = "/web"


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: the staff member behind the session, and what their forms must carry."""

    member: StaffMember
    session: str
    csrf: str

    @property
    def lang(self) -> str:
        return self.member.language if self.member.language in LANGUAGES else "ru"

    @property
    def whole_city(self) -> bool:
        """Dispatchers and admins see every ticket; staff their organisation's only."""
        return self.member.is_dispatcher

    def scope(self) -> tuple[str, ...]:
        """The organisations this person may see; () for the whole city."""
        return () if self.whole_city else (self.member.organisation,)

    def may_see(self, organisation: str | None) -> bool:
        return self.whole_city or organisation == self.member.organisation


class Signer:
    def __init__(self, secret: bytes | None) -> None:
        self.key = secret or secrets.token_bytes(32)

    def mac(self, purpose: str, value: str) -> str:
        digest = hmac.new(self.key, f"{purpose}:{value}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, purpose: str, value: str) -> str:
        return f"{value}.{self.mac(purpose, value)}"

    def unsign(self, purpose: str, signed: str) -> str | None:
        value, _, mac = signed.rpartition(".")
        if not value or len(signed) > 4096 or not hmac.compare_digest(mac, self.mac(purpose, value)):
            return None
        return value

    def csrf(self, session: str) -> str:
        return self.mac("csrf", session)


def session_token(request: web.Request, signer: Signer) -> str | None:
    raw = request.cookies.get(SESSION_COOKIE, "")
    token = signer.unsign("session", raw) if raw else None
    return token if token is not None and weblogin.well_formed(token) else None


def secure(request: web.Request, base_url: str) -> bool:
    return request.secure or base_url.startswith("https://")


def set_session(
    response: web.StreamResponse, request: web.Request, signer: Signer, token: str, base_url: str
) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        signer.sign("session", token),
        max_age=int(weblogin.SESSION_TTL.total_seconds()),
        path=COOKIE_PATH,
        httponly=True,
        samesite="Lax",
        secure=secure(request, base_url),
    )


def clear_session(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path=COOKIE_PATH)


def set_flash(response: web.StreamResponse, signer: Signer, texts: list[str], kind: str) -> None:
    payload = base64.urlsafe_b64encode(json.dumps({"t": texts[:5], "k": kind}).encode()).decode()
    response.set_cookie(
        FLASH_COOKIE, signer.sign("flash", payload), path=COOKIE_PATH, httponly=True, samesite="Lax"
    )


def take_flash(request: web.Request, signer: Signer) -> tuple[list[str], str] | None:
    raw = request.cookies.get(FLASH_COOKIE, "")
    payload = signer.unsign("flash", raw) if raw else None
    if payload is None:
        return None
    try:
        doc = json.loads(base64.urlsafe_b64decode(payload.encode()))
        return [str(t) for t in doc["t"]], "error" if doc.get("k") == "error" else "ok"
    except (ValueError, KeyError, TypeError):
        return None


def same_origin(request: web.Request) -> bool:
    """A POST whose browser names another site as its origin is refused whatever it carries (login CSRF:
    being signed in to someone else's session). Browsers send Origin on every POST; tools may not."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.host


def accept_language(request: web.Request, default: str) -> str:
    """The first of our languages the browser asks for (ru first when it asks for none of them)."""
    for part in request.headers.get("Accept-Language", "")[:200].split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return default
