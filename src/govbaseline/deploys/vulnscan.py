"""pyinfra deploy of the self-audit (VULN-01) and the fleet port scan (VULN-02), twin of ``roles/vulnscan``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.operations import apt, files

from govbaseline import validation
from govbaseline.deploys import common

ROLE = "vulnscan"


@deploy("Vulnscan")
def apply() -> None:
    v = common.settings(ROLE)
    if v is None:
        return
    if common.enforced(ROLE, "lynis"):
        lynis(v)
    if v["vulnscan_scanner_host"] == host.name and common.enforced(ROLE, "portscan"):
        portscan(v)


def lynis(v: dict[str, Any]) -> None:
    apt.packages(name="VULN-01 | Install Lynis", packages=v["vulnscan_packages"], update=False)
    common.put_file("VULN-01 | Install the self-audit command", ROLE, "govbaseline-lynis", v["__vulnscan_command"],
                    mode="0755")
    for path, mode in ((v["__vulnscan_state_dir"], "0700"), (v["__vulnscan_config"].rsplit("/", 1)[0], "0755")):
        files.directory(name=f"VULN-01 | Create {path}", path=path, user="root", group="root", mode=mode)
    common.put_text("VULN-01 | Install the self-audit settings", common.render(ROLE, "config.json.j2", v),
                    v["__vulnscan_config"])
    common.scheduled_job("VULN-01", ROLE, v, v["__vulnscan_unit"], "lynis", "self-audit",
                         f"{v['__vulnscan_state_dir']}/last.json")


def targets(group: str) -> list[dict[str, Any]]:
    """Every other host of the fleet group, from the whole inventory (not only the hosts of a run
    limited with --limit): its address and the TCP ports its firewall opens on purpose (the list
    roles/vulnscan/tasks/portscan.yml builds)."""
    fleet = json.loads(Path(host.data.govbaseline_fleet_file).read_text())
    found = []
    for name in sorted(fleet["groups"].get(group, [])):
        if name == host.name:
            continue
        values = fleet["hostvars"][name]
        found.append({"name": name, "address": values.get("ansible_host", name),
                      "declared": validation.declared_tcp_ports(values)})
    return found


def portscan(v: dict[str, Any]) -> None:
    apt.packages(name="VULN-02 | Install nmap on the scanner host", packages=v["vulnscan_scanner_packages"],
                 update=False)
    common.put_file("VULN-02 | Install the fleet scan command", ROLE, "govbaseline-portscan",
                    v["__vulnscan_portscan_command"], mode="0755")
    results = v["__vulnscan_portscan_results"]
    files.directory(name="VULN-02 | Create the root-only result folder", path=results, user="root", group="root",
                    mode="0700")
    scanned = targets(v["vulnscan_fleet_group"])
    common.put_text("VULN-02 | Install the list of hosts to scan with the ports each one declares",
                    common.render(ROLE, "portscan.json.j2", {**v, "__vulnscan_targets": scanned}),
                    v["__vulnscan_portscan_config"])
    common.scheduled_job("VULN-02", ROLE, v, v["__vulnscan_portscan_unit"], "portscan", "fleet port scan",
                         f"{results}/last-run")
