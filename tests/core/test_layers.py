"""The layering of DESIGN.md §2 holds: import-linter's contracts (pyproject `[tool.importlinter]`) and no
import cycle among our packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

PACKAGES = ("core", "bots", "storage", "migrations")
REPO = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept() -> None:
    """core imports no adapter, storage, platform library or ORM; adapters never import storage; only the
    composition root (bots/app.py, bots/cli.py) does."""
    # A process of its own: import-linter's command configures logging (and would silence our loggers).
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([lint, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """One cycle through each module that lies on one (depth-first search, colouring the modules)."""
    colour: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        colour[module] = 1
        path.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported.split(".")[0] not in PACKAGES:
                continue
            if colour.get(imported) == 1:
                found.append([*path[path.index(imported) :], imported])
            elif imported not in colour:
                visit(imported)
        path.pop()
        colour[module] = 2

    for module in sorted(graph.modules):
        if module.split(".")[0] in PACKAGES and module not in colour:
            visit(module)
    return found


def test_no_import_cycle_among_our_packages() -> None:
    """Type-only imports (under TYPE_CHECKING) are left out: they never run."""
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    assert _cycles(graph) == []
