"""The embedded demo configuration (Irkutsk), loaded on an empty embedded database (DESIGN.md §8)."""

from __future__ import annotations

from pathlib import Path

DEMO_CONFIG_PATH = Path(__file__).with_name("irkutsk.toml")
"""The demo TOML file; also the annotated reference of the configuration format."""
