"""Whole processes: `otklik run`, the CLI, scripts; all carry the `e2e` marker (see tests/conftest.py)."""
