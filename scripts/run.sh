#!/usr/bin/env bash
# Sets up .venv with otklik and starts it. With no settings: embedded SQLite under ./data, the demo city
# (Irkutsk), and — with no Telegram/VK token — the console channel in this terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
exec .venv/bin/otklik run "$@"
