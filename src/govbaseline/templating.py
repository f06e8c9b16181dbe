"""Render the roles' Jinja2 templates outside Ansible, byte for byte as Ansible renders them.

Ansible renders with ``trim_blocks=True`` and keeps the trailing newline; the templates use only
plain Jinja2 plus the two Ansible filters/tests provided here, so both engines write the same file.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from typing import Any

import jinja2
import yaml

from govbaseline import backup
from govbaseline.paths import PLAYBOOKS_DIR, ROLES_DIR

# Ansible's comment styles that the templates use, by their decoration.
COMMENT_STYLES = {"plain": "# ", "c": "// "}


def comment(text: str, style: str = "plain") -> str:
    """Ansible's ``comment`` filter (plain and c styles): each line prefixed, blank lines around."""
    if style not in COMMENT_STYLES:
        raise ValueError(f"comment style {style!r} is not supported outside Ansible")
    decoration = COMMENT_STYLES[style]
    lines = [decoration + line if line else decoration.rstrip() for line in str(text).splitlines()]
    return "\n".join([decoration.rstrip(), *lines, decoration.rstrip()])


def search(value: Any, pattern: str) -> bool:
    """Ansible's ``search`` test."""
    return re.search(pattern, str(value)) is not None


def _bool(value: Any) -> bool:
    from ansible.module_utils.parsing.convert_bool import boolean

    return bool(boolean(value, strict=False))


def environment(role: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(ROLES_DIR / role / "templates")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - these are configuration files, not HTML
    )
    env.filters["comment"] = comment
    env.filters["to_json"] = json.dumps  # Ansible's to_json, for values without custom types
    env.filters["bool"] = _bool  # Ansible's bool
    env.filters["regex_escape"] = re.escape  # Ansible's regex_escape (re_type python)
    env.filters["dirname"] = posixpath.dirname  # Ansible's dirname
    env.tests["search"] = search
    # The collection's filter (plugins/filter/govbaseline_filters.py), by the name the templates call it.
    env.filters["govbaseline.baseline.govbaseline_sftp_account"] = backup.sftp_account
    return env


def shared_vars() -> dict[str, Any]:
    """Variables every play sees (the collection's ``playbooks/group_vars/all.yml``), e.g. ``ansible_managed``."""
    data = yaml.safe_load((PLAYBOOKS_DIR / "group_vars" / "all.yml").read_text()) or {}
    return dict(data)


def render(role: str, template: str, variables: Mapping[str, Any]) -> str:
    return environment(role).get_template(template).render(**{**shared_vars(), **variables})


def evaluate(role: str, expression: str, variables: Mapping[str, Any]) -> Any:
    """A role variable written as one Jinja expression (``"{{ [...] }}"``), evaluated to a value
    (a list stays a list), the way Ansible evaluates it."""
    inner = expression.strip()
    if not (inner.startswith("{{") and inner.endswith("}}")):
        return expression
    return environment(role).compile_expression(inner[2:-2])(**{**shared_vars(), **variables})
