"""Layers call downwards only (see ../shared/STYLE.md): checked on the import graph."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# package -> packages it must never import
FORBIDDEN = {
    "chat.domain": ["chat.db", "chat.services", "chat.api", "chat.realtime", "chat.listeners", "chat.worker", "chat.app"],
    "chat.db": ["chat.services", "chat.api", "chat.realtime", "chat.listeners", "chat.worker", "chat.app"],
    "chat.services": ["chat.api", "chat.realtime", "chat.listeners", "chat.app"],
    "chat.listeners": ["chat.api", "chat.realtime", "chat.app"],
    "chat.api": ["chat.realtime", "chat.listeners", "chat.db.models", "chat.app"],
    "chat.realtime": ["chat.api", "chat.db", "chat.app"],
    "connectors": ["chat", "bots"],
    "bots": ["chat", "connectors"],
    "parley_client": ["chat", "bots", "connectors"],
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def test_layers_import_downwards_only() -> None:
    violations = []
    for package, banned in FORBIDDEN.items():
        base = ROOT.joinpath(*package.split("."))
        files = sorted(base.rglob("*.py")) if base.is_dir() else []
        for path in files:
            for imported in imports_of(path):
                for ban in banned:
                    if imported == ban or imported.startswith(ban + "."):
                        violations.append(f"{module_name(path)} imports {imported}")
    assert not violations, "\n".join(sorted(set(violations)))
