"""One inventory for both engines: resolve the Ansible inventory once with ``ansible-inventory``.

``ansible-inventory --list`` applies group_vars, host_vars and vault-encrypted files; inline ``!vault``
values it leaves encrypted are opened by ``govbaseline.vault`` with the same secrets. So the pyinfra
engine and verify see exactly the variables Ansible would.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from govbaseline.paths import ANSIBLE_CFG, COLLECTIONS_ROOT, PLAYBOOKS_DIR


@dataclass
class ResolvedInventory:
    hostvars: dict[str, dict[str, Any]]
    groups: dict[str, list[str]] = field(default_factory=dict)

    def groups_of(self, host: str) -> list[str]:
        return sorted(g for g, members in self.groups.items() if host in members and g != "all")

    def subset(self, hosts: list[str]) -> ResolvedInventory:
        """The same inventory narrowed to ``hosts`` (exact names), without asking Ansible again."""
        missing = sorted(set(hosts) - set(self.hostvars))
        if missing:
            raise KeyError(f"not in the inventory: {', '.join(missing)}")
        return ResolvedInventory({h: self.hostvars[h] for h in sorted(hosts)}, self.groups)


class Selection:
    """The hosts one run works on (``--limit``) and the whole inventory they belong to: waivers are
    checked against the whole inventory, and a scanner's targets are the whole fleet group, also in a
    limited run. Resolved once and passed along; the whole inventory is asked for only when needed."""

    def __init__(self, inventory: Path, limit: str | None = None, hosts: ResolvedInventory | None = None,
                 fleet: ResolvedInventory | None = None) -> None:
        self.inventory, self.limit = inventory, limit
        self.hosts = hosts if hosts is not None else resolve(inventory, limit=limit)
        self._fleet = fleet if fleet is not None else (None if limit else self.hosts)

    @property
    def fleet(self) -> ResolvedInventory:
        if self._fleet is None:
            self._fleet = resolve(self.inventory)
        return self._fleet

    def refuse_empty(self, option: str | None = None) -> Selection:
        """This selection; ValueError (exit 2) when it has no host, naming the inventory and the
        limit (as the option ``option`` where given): Ansible would end with "no hosts matched" and
        exit 0, as if the run had been done."""
        if not self.hosts.hostvars:
            where = f" matching {option + ' ' if option else ''}{self.limit}" if self.limit else ""
            raise ValueError(f"inventory {self.inventory} has no hosts{where}")
        return self

    def narrowed(self, names: list[str]) -> Selection:
        """The run limited to ``names`` (exact host names, as a rollout batch)."""
        return Selection(self.inventory, ",".join(sorted(names)), self.hosts.subset(names), self.fleet)


def select(inventory: Path, limit: str | None = None) -> Selection:
    return Selection(inventory, limit)


def tool(name: str) -> str:
    """Prefer the tool installed beside this Python (the project's venv) over one on PATH."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


# Ansible's own default collections path, searched after the collection shipped with this package.
DEFAULT_COLLECTIONS_PATH = "~/.ansible/collections:/usr/share/ansible/collections"


def ansible_env() -> dict[str, str]:
    """Environment of the Ansible commands govbaseline runs: its settings, and its own copy of the
    collection govbaseline.baseline found first (the roles whose defaults and rules it reads)."""
    searched = os.environ.get("ANSIBLE_COLLECTIONS_PATH", DEFAULT_COLLECTIONS_PATH)
    return dict(os.environ, ANSIBLE_CONFIG=str(ANSIBLE_CFG), ANSIBLE_NOCOLOR="1",
                ANSIBLE_COLLECTIONS_PATH=os.pathsep.join([str(COLLECTIONS_ROOT), searched]))


def resolve(inventory: Path, limit: str | None = None) -> ResolvedInventory:
    if not inventory.exists():
        raise FileNotFoundError(f"inventory {inventory} does not exist")
    cmd = [tool("ansible-inventory"), "-i", str(inventory), "--playbook-dir", str(PLAYBOOKS_DIR), "--list"]
    if limit:
        cmd += ["--limit", limit]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(), check=False)
    if proc.returncode != 0:
        raise ValueError(f"ansible-inventory could not read {inventory}: {proc.stderr.strip()}")
    data = json.loads(proc.stdout)
    hostvars: dict[str, dict[str, Any]] = data.get("_meta", {}).get("hostvars", {})
    groups: dict[str, list[str]] = {}

    def walk(group: str) -> list[str]:
        node = data.get(group, {})
        members = list(node.get("hosts", []))
        for child in node.get("children", []):
            members += walk(child)
        groups[group] = sorted(set(members))
        return groups[group]

    walk("all")
    hosts = set(groups.get("all", []))
    from govbaseline import vault  # ansible-inventory leaves inline !vault values encrypted

    return ResolvedInventory(hostvars=vault.decrypt({h: hostvars.get(h, {}) for h in sorted(hosts)}), groups=groups)


def ssh_options(hostvars: dict[str, Any]) -> dict[str, str]:
    """``-o Key=Value`` pairs from ``ansible_ssh_common_args`` / ``ansible_ssh_extra_args``."""
    words = shlex.split(f"{hostvars.get('ansible_ssh_common_args', '')} {hostvars.get('ansible_ssh_extra_args', '')}")
    options: dict[str, str] = {}
    for i, word in enumerate(words):
        if word == "-o" and i + 1 < len(words) and "=" in words[i + 1]:
            key, value = words[i + 1].split("=", 1)
            options[key] = value
    return options
