"""The website chat widget's HTTP door: `/widget.js` (one `<script async>` line embeds it), `/chat` (the
same panel as a page), the map picker, and the JSON API the panel talks to (routes.py)."""

from web.widget.routes import install

__all__ = ["install"]
