#!/usr/bin/env bash
# Creates .venv and installs otklik into it (with test tools when called as `setup.sh test`).
# pip runs only when needed: after a successful install the hash of pyproject.toml (and the extras) is kept
# in .venv/.otklik-installed, and a later call with the same hash does nothing. A clean clone (CI) has no
# .venv, so everything is installed; `rm .venv/.otklik-installed` forces a reinstall.
# It also installs the front-end libraries the web serves (web/package-lock.json, from the npm registry, into
# web/node_modules — never committed) and, for the tests, Debian's chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
python_bin="${PYTHON:-python3}"
extras=""
[ "${1:-}" = "test" ] && extras="[test]"
stamp=.venv/.otklik-installed
wanted="$(cat pyproject.toml scripts/setup.sh web/package-lock.json | "$python_bin" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
compile_sources() {
  # pip compiles the bytecode of what it installs, but not of an editable install's sources: do it here, so
  # that every process (the service, each admin command, the tests' subprocesses) reads cached bytecode
  # even where PYTHONDONTWRITEBYTECODE is set (it forbids writing, not reading). Only changed files are
  # compiled again.
  .venv/bin/python -m compileall -q -j 0 bots core storage web migrations >/dev/null
}
if [ -x .venv/bin/otklik ] && [ -f "$stamp" ]; then
  # A plain install is also satisfied by an earlier install with the test tools.
  if grep -qxF "$wanted $extras" "$stamp" || { [ -z "$extras" ] && grep -qxF "$wanted [test]" "$stamp"; }; then
    compile_sources
    exit 0
  fi
fi
[ -x .venv/bin/python ] || "$python_bin" -m venv .venv
rm -f "$stamp"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
if command -v npm >/dev/null; then
  npm ci --prefix web --no-audit --no-fund --loglevel=error >&2
else
  echo "setup: npm not found — the dashboard's map and charts will not load until 'npm ci --prefix web' runs" >&2
fi
if [ -n "$extras" ] && ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null; }
  else
    echo "setup: install Debian's chromium (apt-get install chromium) for the browser tests" >&2
  fi
fi
echo "$wanted $extras" > "$stamp"
compile_sources
