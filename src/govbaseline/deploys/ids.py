"""pyinfra deploy of network intrusion detection (IDS-01) and brute-force blocking (IDS-02), twin of ``roles/ids``."""

from __future__ import annotations

from typing import Any

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.facts.files import File
from pyinfra.facts.server import Command, LinuxDistribution
from pyinfra.operations import apt, files, server, systemd

from govbaseline.deploys import common

ROLE = "ids"


@deploy("IDS")
def apply() -> None:
    v = common.settings(ROLE)
    if v is None:
        return
    if v["ids_suricata_enabled"] and common.enforced(ROLE, "suricata"):
        suricata(v)
    if common.enforced(ROLE, "bruteforce"):
        bruteforce(v)


def suricata(v: dict[str, Any]) -> None:
    bookworm = str((host.get_fact(LinuxDistribution) or {}).get("major")) == "12"
    if bookworm:
        source = common.put_text("IDS-01 | Add bookworm-backports (Debian 12 has Suricata only there)",
                                 common.render(ROLE, "backports.sources.j2", v), v["__ids_backports_source"])
        known = "bookworm-backports" in (host.get_fact(Command, "apt-cache policy") or "")
        apt.packages(name="IDS-01 | Install Suricata and suricata-update from bookworm-backports",
                     packages=v["ids_suricata_packages"], update=source.will_change or not known,
                     extra_install_args="-t bookworm-backports")
    else:
        apt.packages(name="IDS-01 | Install Suricata and suricata-update", packages=v["ids_suricata_packages"],
                     update=False)
    for path, mode in ((v["__ids_rules_file"].rsplit("/", 1)[0], "0755"), (v["__ids_state_dir"], "0700")):
        files.directory(name=f"IDS-01 | Create {path}", path=path, user="root", group="root", mode=mode)
    changed = [
        common.put_file("IDS-01 | Install the shipped rules", ROLE, "govbaseline.rules", v["__ids_rules_file"]),
        common.put_file("IDS-01 | Install the alert forwarder", ROLE, "govbaseline-ids-alerts",
                        v["__ids_alerts_command"], mode="0755"),
    ]
    units = [(f"{v['__ids_update_unit']}.service", "rules.service.j2"), (f"{v['__ids_update_unit']}.timer",
                                                                        "rules.timer.j2"),
             (f"{v['__ids_alerts_unit']}.service", "alerts.service.j2")]
    changed += [common.put_text(f"IDS-01 | Install {dest}", common.render(ROLE, src, v), dest)
                for src, dest in (("suricata.yaml.j2", v["__ids_suricata_conf"]),
                                  ("update.yaml.j2", v["__ids_update_conf"]),
                                  ("alerts.json.j2", v["__ids_alerts_conf"]),
                                  *((template, f"/etc/systemd/system/{unit}") for unit, template in units))]
    change = any(op.will_change for op in changed)
    merged = host.get_fact(File, path="/var/lib/suricata/rules/suricata.rules")
    if change or not merged:
        server.shell(name="IDS-01 | Merge and test the rules (suricata-update, no download unless a source is "
                          "configured)",
                     commands=[f"/usr/bin/suricata-update --config {v['__ids_update_conf']} --suricata-conf "
                               f"{v['__ids_suricata_conf']} --no-reload --fail"])
    restart = change or not merged
    if restart:
        systemd.daemon_reload(name="IDS-01 | Load the units")
    systemd.service(name="IDS-01 | Run Suricata now and at boot", service=v["__ids_suricata_service"], running=True,
                    enabled=True, restarted=restart)
    systemd.service(name="IDS-01 | Run the alert forwarder now and at boot",
                    service=f"{v['__ids_alerts_unit']}.service", running=True, enabled=True, restarted=restart)
    common.restore_schedule("IDS-01", f"{v['__ids_update_unit']}.timer", "rule update")
    systemd.service(name="IDS-01 | Start the rule update timer", service=f"{v['__ids_update_unit']}.timer",
                    running=True, enabled=True)


def bruteforce(v: dict[str, Any]) -> None:
    apt.packages(name="IDS-02 | Install fail2ban", packages=v["ids_fail2ban_packages"], update=False)
    changed = [
        common.put_file("IDS-02 | Install the client-error filter", ROLE, "govbaseline-nginx-4xx.conf",
                        f"/etc/fail2ban/filter.d/{v['__ids_filter_4xx']}.conf"),
        common.put_file("IDS-02 | Install the alert action", ROLE, "govbaseline-alert.conf",
                        f"/etc/fail2ban/action.d/{v['__ids_action_alert']}.conf"),
        common.put_text("IDS-02 | Configure the jails", common.render(ROLE, "jail.local.j2", v), v["__ids_jail_file"]),
    ]
    restart = any(op.will_change for op in changed)
    if restart:
        server.shell(name="IDS-02 | Check the whole fail2ban configuration before it is loaded",
                     commands=["fail2ban-client --test >/dev/null"])
    systemd.service(name="IDS-02 | Run fail2ban now and at boot", service=v["__ids_service"], running=True,
                    enabled=True, restarted=restart)
