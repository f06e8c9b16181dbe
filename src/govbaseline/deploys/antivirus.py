"""pyinfra deploy of the antivirus (AV-01, AV-02), twin of ``roles/antivirus``."""

from __future__ import annotations

import shlex
from typing import Any

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.facts.server import Command
from pyinfra.operations import apt, files, server, systemd

from govbaseline.deploys import common

ROLE = "antivirus"


@deploy("Antivirus")
def apply() -> None:
    v = common.settings(ROLE)
    if v is None:
        return
    if common.enforced(ROLE, "signatures"):
        signatures(v)
    if common.enforced(ROLE, "scan"):
        scan(v)


def signatures(v: dict[str, Any]) -> None:
    apt.packages(name="AV-01 | Install ClamAV, its daemon and freshclam", packages=v["antivirus_packages"],
                 update=False)
    services = v["__antivirus_services"]
    changed = [common.put_text("AV-01 | Configure where freshclam fetches signatures from",
                               common.render(ROLE, "freshclam.conf.j2", v), v["__antivirus_freshclam_conf"])]
    dropins = common.service_dropins("AV-01", {service: common.render(ROLE, f"{kind}-dropin.conf.j2", v)
                                               for kind, service in services.items()}, v["__antivirus_dropin_name"])
    common.mask_units("AV-01 | Mask Debian's one-shot freshclam (one updater, the daemon, with the role's settings)",
                      v["__antivirus_oneshot_units"])
    patterns = " ".join(f"-name {shlex.quote(p)} -o" for p in v["__antivirus_database_patterns"])[:-3]
    found = host.get_fact(Command, f"find {v['__antivirus_database_dir']} -maxdepth 1 \\( {patterns} \\) "
                                   "-print -quit 2>/dev/null || true")
    first = not (found or "").strip()
    if first:
        systemd.service(name="AV-01 | Stop the freshclam daemon for the first download", service=services["updater"],
                        running=False)
        custom = " --update-db=custom" if v["antivirus_signature_source"] == "custom" else ""
        server.shell(name="AV-01 | Download the first signatures (clamd cannot start without any)",
                     commands=[f"freshclam --foreground{custom}"])
    restart = not first and (dropins or any(op.will_change for op in changed))
    systemd.service(name="AV-01 | Run freshclam now and at boot", service=services["updater"], running=True,
                    enabled=True, restarted=restart)
    systemd.service(name="AV-01 | Run clamd now and at boot", service=services["daemon"], running=True, enabled=True)


def scan(v: dict[str, Any]) -> None:
    common.put_file("AV-02 | Install the scan command", ROLE, "govbaseline-av-scan", v["__antivirus_scan_command"],
                    mode="0755")
    for path, mode in ((v["antivirus_quarantine_dir"], "0700"), (v["__antivirus_state_dir"], "0700"),
                       (v["__antivirus_config"].rsplit("/", 1)[0], "0755")):
        files.directory(name=f"AV-02 | Create {path}", path=path, user="root", group="root", mode=mode)
    common.put_text("AV-02 | Install the scan settings (folders, quarantine, alert severity)",
                    common.render(ROLE, "scan.json.j2", v), v["__antivirus_config"])
    common.scheduled_job("AV-02", ROLE, v, v["__antivirus_scan_unit"], "scan", "antivirus scan",
                         f"{v['__antivirus_state_dir']}/last-scan.json")
