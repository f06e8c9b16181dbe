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
from govbaseline.inventory import ResolvedInventory, Selection, ansible_env, select, ssh_options, tool
from govbaseline.paths import PACKAGE_DIR, PLAYBOOKS_DIR, ROLES_DIR
from govbaseline.waivers import Waiver, check_scope
from govbaseline.waivers import waived as waived_on

# No task carries this tag: a run with it runs only the tasks tagged always (the checks).
VALIDATE_ONLY_TAG = "govbaseline-checks-only"


@dataclass
class EngineResult:
    engine: str
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def apply(inventory: Path, engine: str = "ansible", check: bool = False, limit: str | None = None,
          tags: str | None = None, playbook: str = "site.yml", stream: bool = True,
          waivers: list[Waiver] | None = None, selection: Selection | None = None) -> EngineResult:
    """Apply the baseline; a control waived on a host (``waivers``, active today) is skipped there.
    A waiver naming a host or group the inventory lacks raises ``WaiverError`` before any change.
    ``selection`` is the already resolved inventory and limit (a rollout passes each batch's)."""
    if engine not in ("ansible", "pyinfra"):
        raise ValueError(f"unknown engine {engine!r}: choose ansible or pyinfra")
    if tags and engine == "pyinfra":
        # pyinfra runs whole deploys: applying everything when a few controls were asked for is not
        # what the operator meant.
        raise ValueError("tags select Ansible tasks; the pyinfra engine applies whole deploys: use engine ansible")
    if selection is not None:
        limit = selection.limit
    waived: dict[str, list[str]] = {}
    if waivers or engine == "pyinfra":
        selection = selection or select(inventory, limit)
    if waivers and selection is not None:
        check_scope(waivers, selection.fleet)
        resolved = selection.hosts
        waived = {h: sorted(waived_on(waivers, h, resolved.groups_of(h))) for h in resolved.hostvars}
        for host, controls in sorted(waived.items()):
            if controls:
                note = f"{host}: waived, skipped: {', '.join(controls)}\n"
                if stream:
                    sys.stdout.write(note)
    if engine == "pyinfra":
        return run_pyinfra(inventory, check=check, limit=limit, stream=stream, waived=waived, selection=selection)
    if not any(waived.values()):
        return run_ansible(inventory, check=check, limit=limit, tags=tags, playbook=playbook, stream=stream)
    # Ansible skips by tag for a whole run: one run per set of waived controls, hosts without
    # waivers (and the backup servers) first. Before the first of them changes anything, one run of
    # the checks alone (the tasks tagged always: variables, lockouts, platform; they change nothing)
    # refuses a bad value on any host, as a single run would.
    checked = run_ansible(inventory, check=check, limit=limit, tags=VALIDATE_ONLY_TAG, playbook=playbook,
                          stream=stream)
    if not checked.ok:
        return checked
    runs: dict[tuple[str, ...], list[str]] = {}
    for host, controls in waived.items():
        runs.setdefault(tuple(controls), []).append(host)
    outputs, code = [], 0
    for skipped, hosts in sorted(runs.items(), key=lambda item: (len(item[0]), item[0])):
        result = run_ansible(inventory, check=check, limit=",".join(sorted(hosts)), tags=tags, playbook=playbook,
                             stream=stream, skip_tags=",".join(c.lower() for c in skipped) or None)
        outputs.append(result.output)
        code = result.returncode
        if not result.ok:
            break
    return EngineResult("ansible", code, "".join(outputs))


# Tags Ansible itself gives a meaning to (``--tags always`` and the like).
ANSIBLE_SPECIAL_TAGS = frozenset({"all", "always", "never", "tagged", "untagged"})


def known_tags() -> set[str]:
    """Every tag the site playbook and the roles' tasks carry (control ids in lower case, role
    names), and Ansible's special tags: what ``--tags`` may name."""
    found: set[str] = set(ANSIBLE_SPECIAL_TAGS)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            tags = node.get("tags")
            found.update([tags] if isinstance(tags, str) else [str(t) for t in tags or [] if isinstance(tags, list)])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in [*PLAYBOOKS_DIR.glob("*.yml"), *ROLES_DIR.glob("*/tasks/*.yml"), *ROLES_DIR.glob("*/handlers/*.yml")]:
        walk(validation.load_yaml(path))
    return found


def _run(cmd: list[str], env: dict[str, str] | None, stream: bool) -> tuple[int, str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
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
                extra_vars: dict[str, Any] | None = None, skip_tags: str | None = None) -> EngineResult:
    cmd = [tool("ansible-playbook"), "-i", str(Path(inventory).absolute()), str(PLAYBOOKS_DIR / playbook)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd += ["--check", "--diff"]
    if limit:
        cmd += ["--limit", limit]
    if tags:
        cmd += ["--tags", tags]
    if skip_tags:
        cmd += ["--skip-tags", skip_tags]
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


def write_pyinfra_inventory(resolved: ResolvedInventory, path: Path, fleet: ResolvedInventory | None = None,
                            waived: dict[str, list[str]] | None = None) -> None:
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
                "govbaseline_fleet_file": str(fleet_file), "govbaseline_waived": (waived or {}).get(host, [])}
        for group in resolved.groups_of(host) or ["ungrouped"]:
            name = "".join(c if c.isalnum() else "_" for c in group)
            groups.setdefault(name, []).append([host, data])
    body = "import json\n\n" + "".join(
        f"{name} = [tuple(h) for h in json.loads({json.dumps(json.dumps(hosts))})]\n"
        for name, hosts in sorted(groups.items()))
    path.write_text("# Written by govbaseline from `ansible-inventory --list`; do not edit.\n" + body)


def validate_inventory(resolved: ResolvedInventory, fleet: ResolvedInventory | None = None) -> None:
    """Refuse bad variables for every host before pyinfra touches any of them: each role's, the rules
    across roles, and the names of hosts and groups (against the whole inventory, ``fleet``)."""
    problems = []
    groups = (fleet or resolved).groups
    for host, hostvars in resolved.hostvars.items():
        roles = validation.roles_for(resolved.groups_of(host))
        context = {"inventory_groups": groups, "probe_host": hostvars.get("govbaseline_probe_host") or ""}
        try:
            validation.validate_roles({role: validation.role_vars(role, hostvars) for role in roles}, context)
        except validation.ValidationError as exc:
            problems += [f"{host}: {p}" for p in exc.problems]
    if problems:
        raise validation.ValidationError("inventory", problems)


def run_pyinfra(inventory: Path, check: bool = False, limit: str | None = None, stream: bool = True,
                waived: dict[str, list[str]] | None = None, selection: Selection | None = None) -> EngineResult:
    selection = selection or select(inventory, limit)
    resolved = selection.hosts
    try:
        validate_inventory(resolved, selection.fleet)
    except validation.ValidationError as exc:
        return EngineResult("pyinfra", 2, f"refused before any change: {exc}\n")
    with tempfile.TemporaryDirectory(prefix="govbaseline-pyinfra-") as tmp:
        inv = Path(tmp) / "inventory.py"
        write_pyinfra_inventory(resolved, inv, fleet=selection.fleet, waived=waived)
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
