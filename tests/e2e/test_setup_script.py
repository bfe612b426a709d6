"""`scripts/setup.sh` (run by `scripts/run.sh` on every start, and by `scripts/test.sh` and CI) runs pip only
when the dependencies changed. Run here in a copy of the checkout whose .venv's python only records calls."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "otklik"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "setup.sh", root / "scripts" / "setup.sh")
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    (root / "web").mkdir()
    for name in ("package.json", "package-lock.json"):
        shutil.copy(REPO / "web" / name, root / "web" / name)
    fake_bin = root / "fake-bin"  # npm, recording its calls as the fake python does
    fake_bin.mkdir()
    npm = fake_bin / "npm"
    npm.write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/../npm-calls"\n')
    npm.chmod(0o755)
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / "python"
    python.write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/../../pip-calls"\nexit "${PIP_FAILS:-0}"\n')
    python.chmod(0o755)
    otklik = bin_dir / "otklik"  # as an install leaves it
    otklik.write_text("#!/bin/sh\n")
    otklik.chmod(0o755)
    return root


def setup(root: Path, *args: str, fail: bool = False) -> str:
    done = subprocess.run(
        ["bash", "scripts/setup.sh", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": f"{root / 'fake-bin'}:/usr/bin:/bin", "PIP_FAILS": "1" if fail else "0"},
    )
    assert done.returncode == (1 if fail else 0), done.stderr
    return done.stdout + done.stderr


def installs(root: Path) -> list[str]:
    calls = root / "pip-calls"
    return [line for line in calls.read_text().splitlines() if " -e " in line] if calls.exists() else []


def npm_installs(root: Path) -> list[str]:
    calls = root / "npm-calls"
    return calls.read_text().splitlines() if calls.exists() else []


def test_run_sh_does_not_reinstall_the_package_on_every_start(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    setup(root)
    assert installs(root) == ["-m pip install --quiet --disable-pip-version-check -e ."]
    assert npm_installs(root) == ["ci --prefix web --no-audit --no-fund --loglevel=error"]
    assert setup(root) == ""  # the second start: quiet, and pip not run at all
    assert len(installs(root)) == 1

    setup(root, "test")  # the test tools are not there yet
    assert installs(root)[-1].endswith("-e .[test]")
    setup(root)  # a plain install is part of the test one
    setup(root, "test")
    assert len(installs(root)) == 2

    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"pillow==', '"pillow==0; "pillow==', 1))
    setup(root)  # the dependencies changed
    assert len(installs(root)) == 3

    lock = root / "web" / "package-lock.json"
    lock.write_text(lock.read_text().replace('"1.9.4"', '"1.9.5"', 1))
    setup(root)  # the front-end libraries changed
    assert len(installs(root)) == 4
    assert len(npm_installs(root)) == 4


def test_a_failed_install_is_tried_again_next_time(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    setup(root, fail=True)  # pip failed: nothing is recorded as installed
    assert installs(root) == []
    setup(root)
    assert len(installs(root)) == 1
    setup(root)
    assert len(installs(root)) == 1
