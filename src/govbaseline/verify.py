"""Run the checks against every host of an inventory in parallel and write the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from govbaseline import report
from govbaseline.inventory import ansible_env, resolve
from govbaseline.paths import CHECKS_DIR

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

    @property
    def passed(self) -> bool:
        return bool(self.data["summary"]["passed"])

    def summary_line(self) -> str:
        s = self.data["summary"]
        counts = ", ".join(f"{n} {k}" for k, n in sorted(s["controls"].items()))
        return f"{s['hosts']} hosts, controls: {counts or 'none'} -> {'PASS' if self.passed else 'FAIL'}"

    def status(self, host: str, control: str) -> str:
        return str(self.data["hosts"][host]["controls"][control]["status"])

    def checks(self, host: str) -> dict[str, dict[str, Any]]:
        """The host's check results by check name, across its controls."""
        return {c["check"]: c for control in self.data["hosts"][host]["controls"].values() for c in control["checks"]}


def verify(inventory: Path, report_dir: Path, forks: int = 4, limit: str | None = None,
           controls: list[str] | None = None, checks: list[str] | None = None) -> Outcome:
    """Check every host; ``checks`` narrows to check function names (used by the negative twins)."""
    resolved = resolve(inventory, limit=limit)
    hosts = sorted(resolved.hostvars)
    if not hosts:
        raise RuntimeError(f"inventory {inventory} has no hosts{' matching ' + limit if limit else ''}")
    report_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="govbaseline-verify-") as tmp:
        work = Path(tmp)
        # Host variables may hold secrets: they stay in a private temporary folder, never in the report.
        hostvars_file = work / "hostvars.json"
        hostvars_file.write_text(json.dumps({h: {**v, "group_names": resolved.groups_of(h)}
                                             for h, v in resolved.hostvars.items()}))
        hostvars_file.chmod(0o600)
        (work / "pytest.ini").write_text(PYTEST_INI)
        results_file = work / "results.json"
        cmd = [sys.executable, "-m", "pytest", str(CHECKS_DIR), "-c", str(work / "pytest.ini"),
               "--rootdir", str(CHECKS_DIR), "-p", "govbaseline.checks.plugin",
               "--hosts", ",".join(f"ansible://{h}" for h in hosts),
               "--ansible-inventory", str(inventory.resolve()),
               f"--junitxml={report_dir / 'junit.xml'}", "-o", "junit_family=xunit2",
               "--govbaseline-results", str(results_file), "-q", "--no-header", "-rN"]
        # Two workers per host pay off for the whole suite; a few checks are faster without xdist.
        workers = max(1, min(forks, len(hosts) * (1 if checks else 2)))
        if workers > 1:
            cmd += ["-n", str(workers)]
        if controls:
            cmd += ["--govbaseline-controls", ",".join(controls)]
        if checks:
            cmd += ["-k", " or ".join(checks)]
        # testinfra multiplexes SSH through ansible.cfg's control_path only if this folder exists.
        (Path.home() / ".ansible" / "cp").mkdir(parents=True, exist_ok=True)
        env = ansible_env()
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["GOVBASELINE_HOSTVARS"] = str(hostvars_file)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if not results_file.exists():
            raise RuntimeError(f"the checks did not run:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
        results = json.loads(results_file.read_text())
    data = report.build(results, hosts, inventory=str(inventory))
    report.write(data, report_dir)
    return Outcome(report_dir=report_dir, data=data, returncode=proc.returncode, output=proc.stdout)
