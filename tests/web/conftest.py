from tests.web_support import app, browser, http

__all__ = ["app", "browser", "http"]
