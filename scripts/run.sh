#!/usr/bin/env bash
# Sets up .venv with otklik (pip runs only when pyproject.toml changed) and starts it. With no settings:
# embedded SQLite in the data folder — $XDG_DATA_HOME/otklik, i.e. ~/.local/share/otklik, the same for every
# otklik command wherever it is run from; DATA_DIR changes it — the demo city (Irkutsk), and, with no
# Telegram/VK token, the console channel in this terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
exec .venv/bin/otklik run "$@"
