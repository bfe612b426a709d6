"""Open311 GeoReport v2 (routes in `routes.py`): partner systems read and file tickets over HTTP."""

from web.open311.routes import install

__all__ = ["install"]
