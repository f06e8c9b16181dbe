"""Run the baseline with either engine over one inventory."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from govbaseline import validation
from govbaseline.inventory import ResolvedInventory, ansible_env, resolve, ssh_options, tool
from govbaseline.paths import PACKAGE_DIR, PLAYBOOKS_DIR, PROJECT_ROOT


@dataclass
class EngineResult:
    engine: str
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def apply(inventory: Path, engine: str = "ansible", check: bool = False, limit: str | None = None,
          tags: str | None = None, playbook: str = "site.yml", stream: bool = True) -> EngineResult:
    if engine == "ansible":
        return run_ansible(inventory, check=check, limit=limit, tags=tags, playbook=playbook, stream=stream)
    if engine == "pyinfra":
        return run_pyinfra(inventory, check=check, limit=limit, stream=stream)
    raise ValueError(f"unknown engine {engine!r}: choose ansible or pyinfra")


def _run(cmd: list[str], env: dict[str, str] | None, stream: bool) -> tuple[int, str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            cwd=PROJECT_ROOT)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if stream:
            sys.stdout.write(line)
            sys.stdout.flush()
    return proc.wait(), "".join(lines)


def run_ansible(inventory: Path, check: bool = False, limit: str | None = None, tags: str | None = None,
                playbook: str = "site.yml", stream: bool = True,
                extra_vars: dict[str, Any] | None = None) -> EngineResult:
    cmd = [tool("ansible-playbook"), "-i", str(inventory), str(PLAYBOOKS_DIR / playbook)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd += ["--check", "--diff"]
    if limit:
        cmd += ["--limit", limit]
    if tags:
        cmd += ["--tags", tags]
    code, out = _run(cmd, ansible_env(), stream)
    return EngineResult("ansible", code, out)


def pyinfra_host_data(hostvars: dict[str, Any]) -> dict[str, Any]:
    """Map Ansible connection variables onto pyinfra's SSH connector data."""
    options = ssh_options(hostvars)
    data: dict[str, Any] = {
        "ssh_hostname": hostvars.get("ansible_host"),
        "ssh_user": hostvars.get("ansible_user"),
        "ssh_port": int(hostvars.get("ansible_port", 22)),
        "ssh_key": hostvars.get("ansible_ssh_private_key_file"),
        "govbaseline_hostvars": hostvars,
    }
    if "UserKnownHostsFile" in options:
        data["ssh_known_hosts_file"] = options["UserKnownHostsFile"]
    if "StrictHostKeyChecking" in options:
        data["ssh_strict_host_key_checking"] = options["StrictHostKeyChecking"]
    if hostvars.get("ansible_become"):
        data["_sudo"] = True
    return {k: v for k, v in data.items() if v is not None}


def write_pyinfra_inventory(resolved: ResolvedInventory, path: Path, fleet: ResolvedInventory | None = None) -> None:
    """pyinfra's inventory file for the hosts of ``resolved``. Each host's data carries its groups
    (which roles it gets) and the path of a root-only file with the whole inventory (``fleet``,
    unlimited), for roles that look at other hosts (the backup server's clients)."""
    fleet_file = path.with_name("fleet.json")
    fleet = fleet or resolved
    fleet_file.touch(mode=0o600)
    fleet_file.write_text(json.dumps({"hostvars": fleet.hostvars, "groups": fleet.groups}))
    groups: dict[str, list[Any]] = {}
    for host, hostvars in resolved.hostvars.items():
        data = {**pyinfra_host_data(hostvars), "govbaseline_groups": resolved.groups_of(host),
                "govbaseline_fleet_file": str(fleet_file)}
        for group in resolved.groups_of(host) or ["ungrouped"]:
            name = "".join(c if c.isalnum() else "_" for c in group)
            groups.setdefault(name, []).append([host, data])
    body = "import json\n\n" + "".join(
        f"{name} = [tuple(h) for h in json.loads({json.dumps(json.dumps(hosts))})]\n"
        for name, hosts in sorted(groups.items()))
    path.write_text("# Written by govbaseline from `ansible-inventory --list`; do not edit.\n" + body)


def validate_inventory(resolved: ResolvedInventory) -> None:
    """Refuse bad variables for every host before pyinfra touches any of them."""
    problems = []
    for host, hostvars in resolved.hostvars.items():
        for role in validation.roles_for(resolved.groups_of(host)):
            try:
                validation.validated_vars(role, hostvars)
            except validation.ValidationError as exc:
                problems.append(f"{host}: {exc}")
    if problems:
        raise validation.ValidationError("inventory", problems)


def run_pyinfra(inventory: Path, check: bool = False, limit: str | None = None, stream: bool = True) -> EngineResult:
    resolved = resolve(inventory, limit=limit)
    try:
        validate_inventory(resolved)
    except validation.ValidationError as exc:
        return EngineResult("pyinfra", 2, f"refused before any change: {exc}\n")
    with tempfile.TemporaryDirectory(prefix="govbaseline-pyinfra-") as tmp:
        inv = Path(tmp) / "inventory.py"
        write_pyinfra_inventory(resolved, inv, fleet=resolve(inventory) if limit else resolved)
        # -y skips the confirmation prompt, and with it the table of proposed changes a dry run prints.
        base = [tool("pyinfra"), "--dry"] if check else [tool("pyinfra"), "-y"]
        outputs = []
        code, out = _run([*base, str(inv), str(PACKAGE_DIR / "deploys" / "baseline.py")], None, stream)
        outputs.append(out)
        if code == 0 and not check:
            # A second run opens new SSH connections: only if they get in is the rollback cancelled.
            code, out = _run([*base, str(inv), str(PACKAGE_DIR / "deploys" / "confirm.py")], None, stream)
            outputs.append(out)
    return EngineResult("pyinfra", code, "".join(outputs))


def changed_count(result: EngineResult) -> int | None:
    """How many tasks/operations changed something, read from the engine's summary.

    Ansible: the sum of ``changed=N`` in the play recap. pyinfra: the sum of the Success column of
    its "Grand total" lines (an operation that had nothing to do counts under No Change), or in a
    dry run the sum of the Change column of the proposed changes.
    """
    if result.engine == "ansible":
        counts = [int(m) for m in re.findall(r"changed=(\d+)", result.output)]
    elif "Grand total" not in result.output and "Conditional Change" in result.output:
        # A dry run (check mode) prints "Operation | Change | Conditional Change", each "N (hosts)" or "-".
        counts = [0]
        table = result.output.split("Conditional Change", 1)[1]
        for line in table.splitlines()[1:]:
            columns = re.split(r"\s{2,}", line.strip())
            if len(columns) < 3:
                break
            if columns[-2][:1].isdigit():
                counts.append(int(columns[-2].split()[0]))
    else:
        counts = [int(t) for t in re.findall(r"Grand total\s+\d+\s+(\d+|-)", result.output) if t != "-"] or (
            [0] if "Grand total" in result.output else [])
    return sum(counts) if counts else None
