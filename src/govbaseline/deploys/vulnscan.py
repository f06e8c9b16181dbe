"""pyinfra deploy of the scheduled self-audit (VULN-01), twin of ``roles/vulnscan``."""

from __future__ import annotations

from typing import Any

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.facts.files import File
from pyinfra.operations import apt, files, server, systemd

from govbaseline.deploys import common

ROLE = "vulnscan"


@deploy("Vulnscan")
def apply() -> None:
    v = common.settings(ROLE)
    if v is None:
        return
    lynis(v)


def lynis(v: dict[str, Any]) -> None:
    apt.packages(name="VULN-01 | Install Lynis", packages=v["vulnscan_packages"], update=False)
    common.put_file("VULN-01 | Install the self-audit command", ROLE, "govbaseline-lynis", v["__vulnscan_command"],
                    mode="0755")
    for path, mode in ((v["__vulnscan_state_dir"], "0700"), (v["__vulnscan_config"].rsplit("/", 1)[0], "0755")):
        files.directory(name=f"VULN-01 | Create {path}", path=path, user="root", group="root", mode=mode)
    common.put_text("VULN-01 | Install the self-audit settings", common.render(ROLE, "config.json.j2", v),
                    v["__vulnscan_config"])
    unit = v["__vulnscan_unit"]
    changed = [common.put_text("VULN-01 | Install the scheduled self-audit", common.render(ROLE, f"lynis.{kind}.j2", v),
                               f"/etc/systemd/system/{unit}.{kind}") for kind in ("service", "timer")]
    systemd.service(name="VULN-01 | Start the self-audit timer", service=f"{unit}.timer", running=True, enabled=True,
                    daemon_reload=any(op.will_change for op in changed))
    if host.get_fact(File, path=f"{v['__vulnscan_state_dir']}/last.json"):
        host.noop("VULN-01 | an audit has run before: the timer runs the next one")
        return
    server.shell(name="VULN-01 | Start the first self-audit in the background (it takes about a minute)",
                 commands=[f"systemctl start --no-block {unit}.service"])
