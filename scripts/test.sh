#!/usr/bin/env bash
# Sets up .venv with the project and its test tools, then runs lint and the test suite.
# SQLite by default; set TEST_DATABASE_URL=postgresql://… to run the same suite on PostgreSQL. The tests run
# on every core (pytest-xdist: `-n auto` in pyproject.toml, each worker its own database); `-n 0` runs them
# in one process, `-m "not e2e"` only the fast tier.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# pytest caches the test modules it rewrites as bytecode unless told not to write any: allow it here (the
# caches are git-ignored), so a second run does not parse and rewrite every test module again.
unset PYTHONDONTWRITEBYTECODE
exec .venv/bin/python -m pytest "$@"
