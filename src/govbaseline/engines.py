"""Run the baseline with either engine over one inventory.

Ansible runs as ``ansible-playbook`` in the caller's process group (Ctrl-C reaches it and it stops
as it does at a terminal) with the collection's callback ``govbaseline.baseline.events``: task
results, changed counts and per-task seconds come from its JSON-lines events, not from the printed
text. ansible-runner (AWX's library) was tried for this and not taken: its streaming mode gives the
playbook a terminal of its own, so Ctrl-C no longer reaches Ansible (a cancel kills the process
group) and ssh can wait on that terminal for an answer about an unknown host key; its subprocess
mode prints nothing until the run ends.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from govbaseline import validation
from govbaseline.inventory import ResolvedInventory, Selection, ansible_env, select, ssh_options, tool
from govbaseline.paths import PACKAGE_DIR, PLAYBOOKS_DIR, ROLES_DIR
from govbaseline.waivers import Waiver, check_scope
from govbaseline.waivers import waived as waived_on

# No task carries this tag: a run with it runs only the tasks tagged always (the checks).
VALIDATE_ONLY_TAG = "govbaseline-checks-only"


# The callback (src/ansible_collections/govbaseline/baseline/plugins/callback/events.py) and where it writes.
EVENTS_CALLBACK = "govbaseline.baseline.events"
EVENTS_FILE = "events.jsonl"


# The actions of the checks every run starts with: a failure there is a refusal, not a failed run.
REFUSING_ACTIONS = frozenset({"govbaseline_validate", "validate_argument_spec"})


@dataclass
class EngineResult:
    """A run's exit code and printed text; for Ansible also its events (dicts, one per task start
    and per host result, as ``govbaseline.baseline.events`` writes them, in order)."""

    engine: str
    returncode: int
    output: str
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def refused(self) -> bool:
        """The run stopped at the checks every run starts with (bad values, lockouts, an unsupported
        host), before any change: pyinfra says so; for Ansible, every failed task was such a check
        (``govbaseline_validate``, Ansible's argument-spec validation) and nothing changed."""
        if self.ok:
            return False
        if self.engine == "pyinfra":
            return self.output.startswith("refused before any change")
        failed = [e for e in self.events if e["event"] == "runner_on_failed" and not e.get("ignore_errors")]
        return bool(failed) and not self.changed_tasks() and all(
            str(e.get("action", "")).rsplit(".", 1)[-1] in REFUSING_ACTIONS for e in failed)

    @property
    def exit_code(self) -> int:
        """The CLI's exit code for this run (see ``govbaseline --help``): 0 done, 2 refused before any
        change, 1 any other failure (a task failed, a host unreachable: ansible-playbook's own 2 and 4
        would read as "refused")."""
        return 0 if self.ok else 2 if self.refused else 1

    def changed_tasks(self) -> list[str]:
        """``host: role : task`` of every Ansible result that changed something, in order."""
        return [f"{e['host']}: {e.get('role') or '-'} : {e['task']}" for e in self.events
                if e["event"] in ("runner_on_ok", "runner_on_failed") and e.get("changed")]

    def tasks(self) -> list[dict[str, Any]]:
        """Per task reached, in order: ``name``, ``kind`` (task or handler), ``ran`` (hosts it ran on),
        ``skipped`` (hosts it skipped), ``seconds`` (from its start to the next task's start or the
        run's end); a task still open when the events end (a run cut off) is left out."""
        tasks: list[dict[str, Any]] = []
        current: dict[str, Any] | None = None
        for event in self.events:
            kind = event["event"]
            if kind in ("playbook_on_task_start", "playbook_on_handler_task_start", "playbook_on_stats"):
                if current is not None:
                    current["seconds"] = event["time"] - current["seconds"]
                    tasks.append(current)
                current = None if kind == "playbook_on_stats" else {
                    "name": event["task"], "role": event.get("role"), "ran": 0, "skipped": 0,
                    "kind": "handler" if "handler" in kind else "task", "seconds": event["time"]}
            elif current is not None and kind.startswith("runner_on_"):
                current["skipped" if kind == "runner_on_skipped" else "ran"] += 1
        return tasks

def apply(inventory: Path, engine: str = "ansible", check: bool = False, limit: str | None = None,
          tags: str | None = None, playbook: str = "site.yml", stream: bool = True,
          waivers: list[Waiver] | None = None, selection: Selection | None = None,
          artifact_dir: Path | None = None) -> EngineResult:
    """Apply the baseline; a control waived on a host (``waivers``, active today) is skipped there.
    A waiver naming a host or group the inventory lacks raises ``WaiverError`` before any change.
    ``selection`` is the already resolved inventory and limit (a rollout passes each batch's).
    ``artifact_dir``: where Ansible's events and printed text are kept (see ``run_ansible``)."""
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
        return run_ansible(inventory, check=check, limit=limit, tags=tags, playbook=playbook, stream=stream,
                           artifact_dir=artifact_dir)
    # Ansible skips by tag for a whole run: one run per set of waived controls, hosts without
    # waivers (and the backup servers) first. Before the first of them changes anything, one run of
    # the checks alone (the tasks tagged always: variables, lockouts, platform; they change nothing)
    # refuses a bad value on any host, as a single run would.
    checked = run_ansible(inventory, check=check, limit=limit, tags=VALIDATE_ONLY_TAG, playbook=playbook,
                          stream=stream, artifact_dir=artifact_dir)
    if not checked.ok:
        return checked
    runs: dict[tuple[str, ...], list[str]] = {}
    for host, controls in waived.items():
        runs.setdefault(tuple(controls), []).append(host)
    outputs, code, events = [checked.output], 0, list(checked.events)
    for skipped, hosts in sorted(runs.items(), key=lambda item: (len(item[0]), item[0])):
        result = run_ansible(inventory, check=check, limit=",".join(sorted(hosts)), tags=tags, playbook=playbook,
                             stream=stream, skip_tags=",".join(c.lower() for c in skipped) or None,
                             artifact_dir=artifact_dir)
        outputs.append(result.output)
        events += result.events
        code = result.returncode
        if not result.ok:
            break
    return EngineResult("ansible", code, "".join(outputs), events)


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


def _run(cmd: list[str], env: dict[str, str] | None, stream: bool,
         lines: list[str] | None = None) -> tuple[int, str]:
    """Run ``cmd``, its output (stderr with stdout) printed as it comes when ``stream``, and gathered
    into ``lines`` (given: the caller keeps what came before an interruption)."""
    # No input (a vault prompt is govbaseline's own): an inherited stdin left non-blocking by another
    # program would make Ansible refuse to start.
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    lines = [] if lines is None else lines
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if stream:
            sys.stdout.write(line)
            sys.stdout.flush()
    return proc.wait(), "".join(lines)


def read_events(path: Path) -> list[dict[str, Any]]:
    """The events of ``govbaseline.baseline.events`` in ``path`` (a line cut off by a killed run is left out)."""
    events = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and "event" in event:
            events.append(event)
    return events


def run_ansible(inventory: Path, check: bool = False, limit: str | None = None, tags: str | None = None,
                playbook: str | Path = "site.yml", stream: bool = True,
                extra_vars: dict[str, Any] | None = None, skip_tags: str | None = None,
                artifact_dir: Path | None = None) -> EngineResult:
    """One ``ansible-playbook`` run of ``playbook`` (a name in the collection's playbooks, or a path).

    ``artifact_dir``: a folder (made 0700 if missing) where the run's events are appended to
    ``events.jsonl`` and its printed text to ``stdout`` (both 0600), kept for the evidence; without
    it they are kept only in the result."""
    book = Path(playbook) if Path(playbook).is_absolute() else PLAYBOOKS_DIR / playbook
    cmd = [tool("ansible-playbook"), "-i", str(Path(inventory).absolute()), str(book)]
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
    env = ansible_env()
    enabled = [c for c in env.get("ANSIBLE_CALLBACKS_ENABLED", "").split(",") if c.strip()]
    env["ANSIBLE_CALLBACKS_ENABLED"] = ",".join([*enabled, EVENTS_CALLBACK])
    if artifact_dir is not None:  # a folder that cannot be made is refused before the run
        artifact_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="govbaseline-ansible-") as tmp:
        events_file = Path(tmp) / EVENTS_FILE
        env["GOVBASELINE_EVENTS"] = str(events_file)
        lines: list[str] = []
        try:
            code, out = _run(cmd, env, stream, lines)
        finally:  # also when interrupted: the events so far are what the operator needs to see
            if artifact_dir is not None:
                _keep(artifact_dir, events_file, "".join(lines))
        events = read_events(events_file)
    return EngineResult("ansible", code, out, events)


def _keep(artifact_dir: Path, events_file: Path, output: str) -> None:
    """Append a run's events and printed text to ``artifact_dir`` (made by ``run_ansible`` before the
    run; files 0600, never through a link)."""
    for name, content in ((EVENTS_FILE, events_file.read_bytes() if events_file.exists() else b""),
                          ("stdout", output.encode())):
        fd = os.open(artifact_dir / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "ab") as fh:
            fh.write(content)


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

    Ansible: the sum over hosts of ``changed`` in each run's ``playbook_on_stats`` event (None when
    a run did not reach its end). pyinfra: the sum of the Success column of
    its "Grand total" lines (an operation that had nothing to do counts under No Change), or in a
    dry run the sum of the Change column of the proposed changes.
    """
    if result.engine == "ansible":
        starts = sum(e["event"] == "playbook_on_start" for e in result.events)
        counts = [sum(int(h.get("changed", 0)) for h in e["stats"].values())
                  for e in result.events if e["event"] == "playbook_on_stats"]
        if len(counts) < starts:  # a run (of several) that did not reach its end: the count is not known
            return None
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
