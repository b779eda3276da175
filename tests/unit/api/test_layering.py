"""Errors are designed once: the core raises its own errors and never imports the HTTP layer
(`lockgate.api`), which alone turns them into statuses and envelopes (issue 9)."""

from __future__ import annotations

import ast
from pathlib import Path

import lockgate

PACKAGE = Path(lockgate.__file__).parent
EDGE = {"app.py", "cli.py"}
"""The application factory and the command line sit above the HTTP layer."""


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_module_below_the_http_layer_imports_it() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "api" or str(relative) in EDGE:
            continue
        if any(
            name == "lockgate.api" or name.startswith("lockgate.api.") for name in _imports(path)
        ):
            offenders.append(str(relative))
    assert offenders == []
