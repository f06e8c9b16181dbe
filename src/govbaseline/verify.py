"""Run the checks against every host of an inventory in parallel and write the report."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from govbaseline import report
from govbaseline.inventory import ResolvedInventory, Selection, ansible_env, select
from govbaseline.paths import CHECKS_DIR, cache_dir
from govbaseline.waivers import Waiver, check_scope

PYTEST_INI = """[pytest]
addopts = -p no:cacheprovider
markers =
    control(id): the catalogue control a check verifies
"""


@dataclass
class Outcome:
    report_dir: Path
    data: dict[str, Any]
    returncode: int
    output: str
    bundle_sha256: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.data["summary"]["passed"])

    def summary_line(self) -> str:
        s = self.data["summary"]
        counts = ", ".join(f"{n} {k}" for k, n in sorted(s["controls"].items()))
        down = f", unreachable: {', '.join(s['unreachable'])}" if s["unreachable"] else ""
        return f"{s['hosts']} hosts, controls: {counts or 'none'}{down} -> {'PASS' if self.passed else 'FAIL'}"

    def status(self, host: str, control: str) -> str:
        return str(self.data["hosts"][host]["controls"][control]["status"])

    def checks(self, host: str) -> dict[str, dict[str, Any]]:
        """The host's check results by check name, across its controls."""
        return {c["check"]: c for control in self.data["hosts"][host]["controls"].values() for c in control["checks"]}


# Names of inventory variables whose values are secrets: they are masked wherever a check's
# evidence shows them (a check may print a configuration file that holds one).
SECRET_NAME = re.compile(r"password|passphrase|secret|token|private_key|api_key|webhook_url", re.IGNORECASE)
PRIVATE_KEY_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL)
MASK = "********"
REACH_TIMEOUT = 5.0


def secret_values(hostvars: dict[str, dict[str, Any]]) -> set[str]:
    found: set[str] = set()

    def walk(name: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{name}.{key}", item)
        elif isinstance(value, list):
            for item in value:
                walk(name, item)
        elif isinstance(value, str) and SECRET_NAME.search(name) and len(value) >= 6:
            found.add(value)

    for variables in hostvars.values():
        for key, value in variables.items():
            walk(key, value)
    from govbaseline.vault import OPENED  # a vaulted value is a secret whatever its name

    return found | {value for value in OPENED if len(value) >= 6}


def masker(secrets: set[str]) -> Callable[[str], str]:
    """A function that masks the given secrets and any PEM private key in a text, also where the
    text is XML (junit.xml) and a secret appears escaped."""
    entities: list[dict[str, str]] = [{}, {'"': "&quot;"}, {'"': "&quot;", "'": "&apos;"}]
    forms = {secret for secret in secrets} | {escape(secret, e) for secret in secrets for e in entities}
    ordered = sorted(forms, key=len, reverse=True)

    def clean(text: str) -> str:
        text = PRIVATE_KEY_PEM.sub(MASK, text)
        for secret in ordered:
            text = text.replace(secret, MASK)
        return text

    return clean


def redact(results: list[dict[str, Any]], secrets: set[str]) -> Callable[[str], str]:
    """Mask secrets and private keys in every message and piece of evidence, in place; returns the
    masking function for the other files of the report (junit.xml)."""
    clean = masker(secrets)
    for result in results:
        result["message"] = clean(result["message"])
        for record in result["evidence"]:
            for key in ("command", "stdout", "stderr"):
                record[key] = clean(str(record[key]))
    return clean


def unreachable_hosts(hostvars: dict[str, dict[str, Any]], forks: int) -> dict[str, str]:
    """Hosts whose SSH port does not answer, with why: they are reported, not waited on by every check."""

    def reach(host: str) -> tuple[str, str | None]:
        variables = hostvars[host]
        if variables.get("ansible_connection", "ssh") not in ("ssh", "smart", "paramiko"):
            return host, None
        address, port = str(variables.get("ansible_host", host)), int(variables.get("ansible_port", 22))
        try:
            with socket.create_connection((address, port), timeout=REACH_TIMEOUT):
                return host, None
        except OSError as exc:
            return host, f"SSH port {address}:{port} did not answer: {exc.strerror or exc}"

    with ThreadPoolExecutor(max_workers=max(1, min(32, forks * 4, len(hostvars)))) as pool:
        return {host: why for host, why in pool.map(reach, sorted(hostvars)) if why}


def applied_hostvars(resolved: ResolvedInventory, hosts: list[str]) -> dict[str, dict[str, Any]]:
    """Each host's variables as the engines apply them, for the checks to judge: the inventory's
    variables with ``group_names``, overlaid for every role the host's groups get by the role's
    values after validation and type conversion and its internal variables
    (``validation.applied_vars``, what the pyinfra deploys use too). Raises ValidationError naming
    every host and bad value: a verdict on values no engine would apply means nothing."""
    from govbaseline import validation

    applied: dict[str, dict[str, Any]] = {}
    problems = []
    for name in hosts:
        groups = resolved.groups_of(name)
        values: dict[str, Any] = {**resolved.hostvars[name], "group_names": groups}
        for role in validation.roles_for(groups):
            try:
                values.update(validation.applied_vars(role, resolved.hostvars[name]))
            except validation.ValidationError as exc:
                problems.append(f"{name}: {exc}")
        applied[name] = values
    if problems:
        raise validation.ValidationError("inventory", problems)
    return applied


def start(inventory: Path, report_dir: Path, forks: int, limit: str | None = None,
          selection: Selection | None = None, waivers: list[Waiver] | None = None,
          ) -> tuple[Selection, dict[str, Any] | None]:
    """What a verify or collect run does before it reads any host: refuse bad settings, an empty
    selection and a waiver outside the inventory; create the report folder; return the hosts and
    the previous report in the folder (for drift)."""
    if forks < 1:
        raise ValueError(f"forks must be at least 1, not {forks}")
    selection = (selection or select(inventory, limit)).refuse_empty()
    if waivers:
        check_scope(waivers, selection.fleet)
    report_dir.mkdir(parents=True, exist_ok=True)
    return selection, report.load_previous(report_dir)


def verify(inventory: Path, report_dir: Path, forks: int = 4, limit: str | None = None,
           controls: list[str] | None = None, checks: list[str] | None = None,
           waivers: list[Waiver] | None = None, selection: Selection | None = None,
           local: bool = False, progress: Callable[[str], None] | None = None) -> Outcome:
    """Check every host; ``checks`` narrows to check function names (used by the negative twins).
    ``forks`` bounds how many checks run at once; a host that cannot be reached is reported as
    unreachable and the others are checked all the same. ``local``: the run is on the host itself
    (pull mode): its commands run locally, and checks that need a view from outside are skipped.
    ``progress`` is handed a line when a host is found unreachable, when the checks are counted,
    when a host is done and every few seconds while they run."""
    selection, previous = start(inventory, report_dir, forks, limit, selection, waivers)
    resolved = selection.hosts
    hosts = sorted(resolved.hostvars)
    applied = applied_hostvars(resolved, hosts)
    down = {} if local else unreachable_hosts(resolved.hostvars, forks)
    reachable = [h for h in hosts if h not in down]
    if progress:
        for host_name, why in sorted(down.items()):
            progress(f"{host_name}: not checked: {why}")
    results: list[dict[str, Any]] = []
    proc = subprocess.CompletedProcess[str]([], 0, "", "")
    if reachable:
        results, proc = _run_checks(selection, applied, reachable, report_dir, forks, controls, checks, local,
                                     progress)
    else:
        (report_dir / "junit.xml").unlink(missing_ok=True)
    clean = redact(results, secret_values(resolved.hostvars))
    junit = report_dir / "junit.xml"
    if junit.exists():
        # pytest writes junit.xml itself: a failure message that quotes a secret is masked there too.
        junit.write_text(clean(junit.read_text()))
    data = report.build(results, hosts, inventory=str(inventory), unreachable=down, previous=previous,
                        waivers=waivers, groups={h: resolved.groups_of(h) for h in hosts})
    # What the run was narrowed to: a run of a few controls must not read as the whole assessment.
    data["selection"] = {"limit": limit or "", "controls": sorted(controls or []), "checks": sorted(checks or [])}
    digest = report.write(data, report_dir)
    return Outcome(report_dir=report_dir, data=data, returncode=proc.returncode, output=proc.stdout,
                   bundle_sha256=digest, results=results)


# Host variables that name another host a check looks from (a probe, the fleet scanner): that host
# must be reachable by the checks even when --limit leaves it out of the run.
VANTAGE_VARS = ("govbaseline_probe_host", "vulnscan_scanner_host")


def connection_inventory(selection: Selection, applied: dict[str, dict[str, Any]],
                         hosts: list[str]) -> dict[str, Any]:
    """What testinfra's ``ansible://`` backend needs to reach ``hosts`` and their vantage points, in
    ``ansible-inventory --list`` form: each host's ``ansible_*`` connection variables and its groups.
    verify has resolved the inventory already; handing it over spares every checks process its own
    ``ansible-inventory`` run (about half a second of CPU each)."""
    wanted = set(hosts) | {str(applied[h][v]) for h in hosts for v in VANTAGE_VARS if applied[h].get(v)}
    source = selection.hosts if wanted <= set(selection.hosts.hostvars) else selection.fleet
    names = sorted(wanted & set(source.hostvars))
    data: dict[str, Any] = {"_meta": {"hostvars": {
        h: {k: v for k, v in source.hostvars[h].items() if k.startswith("ansible_")} for h in names}}}
    for group, members in source.groups.items():
        data[group] = {"hosts": sorted(set(members) & set(names))}
    return data


def check_seconds_file() -> Path:
    """Where verify keeps the seconds each check took (under GOVBASELINE_CACHE, read at call time)."""
    return cache_dir() / "check-seconds.json"


def remember_check_seconds(results: list[dict[str, Any]]) -> None:
    """Keep each check's longest time of this run (seconds, over its hosts) for the order of the
    next run (``plugin._longest_first``); only the order depends on it, never a verdict."""
    path = check_seconds_file()
    try:
        seconds: dict[str, float] = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        seconds = {}
    ran: dict[str, float] = {}
    for result in results:
        if result["status"] in ("pass", "fail"):
            ran[result["check"]] = max(ran.get(result["check"], 0.0), float(result["duration"]))
    seconds.update({check: round(took, 3) for check, took in ran.items()})
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    with contextlib.suppress(OSError):  # a full or read-only cache costs the order, never the report
        temporary.write_text(json.dumps(seconds, indent=1, sort_keys=True))
        temporary.replace(path)


def _run_checks(selection: Selection, applied: dict[str, dict[str, Any]], hosts: list[str], report_dir: Path,
                forks: int, controls: list[str] | None, checks: list[str] | None, local: bool = False,
                progress: Callable[[str], None] | None = None,
                ) -> tuple[list[dict[str, Any]], subprocess.CompletedProcess[str]]:
    with tempfile.TemporaryDirectory(prefix="govbaseline-verify-") as tmp:
        work = Path(tmp)
        # Host variables may hold secrets: they stay in a private temporary folder, never in the report.
        hostvars_file = work / "hostvars.json"
        hostvars_file.write_text(json.dumps(applied))
        hostvars_file.chmod(0o600)
        (work / "pytest.ini").write_text(PYTEST_INI)
        results_file = work / "results.json"
        # testinfra reaches the hosts through ``reach``, an inventory Ansible reads (it runs
        # `ansible -m shell` with it for a connection testinfra cannot map), and is handed it already
        # resolved (connection variables may hold secrets: private like the host variables). In pull
        # mode the hosts are reached on the host itself, without SSH.
        resolved = work / "inventory.json"
        if local:
            local_vars = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
            reach = work / "local-inventory.json"
            reach.write_text(json.dumps({"all": {"hosts": {h: local_vars for h in hosts}}}))
            connections: dict[str, Any] = {"_meta": {"hostvars": {h: local_vars for h in hosts}},
                                           "all": {"hosts": hosts}}
        else:
            reach = selection.inventory.resolve()
            connections = connection_inventory(selection, applied, hosts)
        resolved.write_text(json.dumps(connections))
        resolved.chmod(0o600)
        cmd = [sys.executable, "-m", "pytest", str(CHECKS_DIR), "-c", str(work / "pytest.ini"),
               "--rootdir", str(CHECKS_DIR), "-p", "govbaseline.checks.plugin",
               "--hosts", ",".join(f"ansible://{h}" for h in hosts),
               "--ansible-inventory", str(reach),
               f"--junitxml={report_dir / 'junit.xml'}", "-o", "junit_family=xunit2",
               "--govbaseline-results", str(results_file), "-q", "--no-header", "-rN"]
        # Two workers per host pay off for the whole suite (more only add start-up and the host's CPU is
        # the limit: measured in bench/README.md); a few checks are faster without xdist.
        workers = max(1, min(forks, len(hosts) * (1 if checks else 2)))
        if workers > 1:
            cmd += ["-n", str(workers)]
        if controls:
            cmd += ["--govbaseline-controls", ",".join(controls)]
        if checks:
            cmd += ["-k", " or ".join(checks)]
        if progress:
            cmd += ["--govbaseline-progress"]
        # testinfra multiplexes SSH through ansible.cfg's control_path only if this folder exists.
        (Path.home() / ".ansible" / "cp").mkdir(parents=True, exist_ok=True)
        env = ansible_env()
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["GOVBASELINE_HOSTVARS"] = str(hostvars_file)
        env["GOVBASELINE_INVENTORY"] = str(resolved)
        # The checks are compiled (and their asserts rewritten by pytest) once per version, not on
        # every run: about a second of CPU per checks process otherwise.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.setdefault("PYTHONPYCACHEPREFIX", str(cache_dir() / "bytecode"))
        if local:
            env["GOVBASELINE_VANTAGE"] = "host"
        # A snapshot: every xdist worker must sort the same list, also while another verify rewrites it.
        seconds = work / "check-seconds.json"
        with contextlib.suppress(OSError):
            shutil.copyfile(check_seconds_file(), seconds)
        env["GOVBASELINE_CHECK_SECONDS"] = str(seconds)
        proc = _run_pytest(cmd, env, work / "pytest.out", progress)
        if not results_file.exists():
            raise RuntimeError(f"the checks did not run:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
        results: list[dict[str, Any]] = json.loads(results_file.read_text())
    remember_check_seconds(results)
    return results, proc


def _run_pytest(cmd: list[str], env: dict[str, str], out: Path,
                progress: Callable[[str], None] | None) -> subprocess.CompletedProcess[str]:
    """Run the checks; their progress lines (the plugin's, on stderr) go to ``progress`` as they come,
    without the prefix. stdout goes to a file meanwhile, so neither pipe can fill and stall pytest."""
    with out.open("w+") as stdout:
        child = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True, env=env)
        assert child.stderr is not None
        errors = []
        for line in child.stderr:
            if line.startswith(report.PROGRESS) and progress:
                progress(line.removeprefix(report.PROGRESS).rstrip("\n"))
            else:
                errors.append(line)
        returncode = child.wait()
        stdout.seek(0)
        return subprocess.CompletedProcess(cmd, returncode, stdout.read(), "".join(errors))
