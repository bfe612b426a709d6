"""Limits on residents' photos: the photo store enforces them and the texts that explain a refusal quote them.

Pixels are limited, not only bytes: a 336 KB PNG can declare 9400×9400 pixels and decode to over a gigabyte.
A decoded pixel costs 4 bytes, so 40 megapixels is at most 160 MB per picture; WebP costs four times as much
while it decodes (Pillow's decoder keeps two canvases and a copy), hence its lower limit.
"""

from __future__ import annotations

from typing import Final

MAX_MB: Final = 20
"""Largest file accepted, in megabytes (also the Telegram Bot API's download limit)."""
MAX_MEGAPIXELS: Final = 40
WEBP_MAX_MEGAPIXELS: Final = 10
MAX_SIDE: Final = 2560
"""Stored photos are downsized to fit this many pixels on their longer side."""
MAX_PHOTOS: Final = 5
"""Photos one dialog collects: a report, a resolution, a reopening."""
