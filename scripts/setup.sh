#!/usr/bin/env bash
# Creates .venv and installs otklik into it (with test tools when called as `setup.sh test`).
# pip runs only when needed: after a successful install the hash of pyproject.toml (and the extras) is kept
# in .venv/.otklik-installed, and a later call with the same hash does nothing. A clean clone (CI) has no
# .venv, so everything is installed; `rm .venv/.otklik-installed` forces a reinstall.
set -euo pipefail
cd "$(dirname "$0")/.."
python_bin="${PYTHON:-python3}"
extras=""
[ "${1:-}" = "test" ] && extras="[test]"
stamp=.venv/.otklik-installed
wanted="$(cat pyproject.toml scripts/setup.sh | "$python_bin" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
if [ -x .venv/bin/otklik ] && [ -f "$stamp" ]; then
  # A plain install is also satisfied by an earlier install with the test tools.
  if grep -qxF "$wanted $extras" "$stamp" || { [ -z "$extras" ] && grep -qxF "$wanted [test]" "$stamp"; }; then
    exit 0
  fi
fi
[ -x .venv/bin/python ] || "$python_bin" -m venv .venv
rm -f "$stamp"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
echo "$wanted $extras" > "$stamp"
