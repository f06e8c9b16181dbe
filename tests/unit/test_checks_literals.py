"""The checks copy no role's internal names (issue 17, kind 2): a path, unit or command name a role
installs is looked up in ``hostvars`` (the role's ``__<role>_*`` variables), never written again as a
literal in src/govbaseline/checks/, so a renamed path cannot leave a check reading the old one."""

from __future__ import annotations

import ast
from typing import Any

import yaml

from govbaseline import validation
from govbaseline.paths import CHECKS_DIR, ROLES_DIR

CHECKS = CHECKS_DIR
ROLES = sorted(p.name for p in ROLES_DIR.iterdir() if (p / "defaults" / "main.yml").exists())

# Literals that equal a role's value but name something else: (file, literal), each with the reason.
# test_audit.py: the audit rules must watch the account files, whose modes the system role sets.
ALLOWED: set[tuple[str, str]] = {("test_audit.py", "/etc/passwd"), ("test_audit.py", "/etc/shadow")}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _role_names() -> dict[str, str]:
    """Every name a role owns: its internal values that are paths or govbaseline's own names, and the
    path-like defaults; each with the variable it comes from."""
    names: dict[str, str] = {}
    for role in ROLES:
        for var, value in validation.internal_vars(role).items():
            for text in _strings(value):
                if "{{" not in text and (text.startswith("/") or "govbaseline" in text):
                    names.setdefault(text, var)
        defaults = yaml.safe_load((ROLES_DIR / role / "defaults" / "main.yml").read_text()) or {}
        for var, value in defaults.items():
            for text in _strings(value):
                if text.startswith("/") and "{{" not in text:
                    names.setdefault(text, var)
    return names


def test_no_check_copies_a_role_name_as_a_literal():
    names = _role_names()
    assert "/usr/local/sbin/govbaseline-alert" in names  # the scan sees the roles' names
    copies = []
    for path in sorted(CHECKS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names \
                    and (path.name, node.value) not in ALLOWED:
                copies.append(f"{path.name}:{node.lineno}: {node.value!r} (use hostvars[{names[node.value]!r}])")
    assert not copies, "checks copy a role's names as literals:\n" + "\n".join(copies)
