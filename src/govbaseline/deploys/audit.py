"""pyinfra deploy of the audit trail (LOG-01, LOG-02, LOG-03), twin of ``roles/audit``."""

from __future__ import annotations

from typing import Any

from pyinfra import logger
from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.operations import apt, files, server, systemd

from govbaseline.deploys import common

ROLE = "audit"


@deploy("Audit")
def apply() -> None:
    v = common.settings(ROLE)
    if v is None:
        return
    if common.enforced(ROLE, "auditd"):
        auditd(v)
    if common.enforced(ROLE, "journal"):
        journal(v)
    if common.enforced(ROLE, "retention"):
        retention(v)


def auditd(v: dict[str, Any]) -> None:
    apt.packages(name="LOG-01 | Install auditd", packages=v["audit_packages"], update=False)
    rules = common.put_text("LOG-01 | Install the audit rules", common.render(ROLE, "audit.rules.j2", v),
                            v["__audit_rules_file"], mode="0640")
    container = v["__audit_container"]
    if container:
        host.noop(f"auditd cannot run inside a {container} container (the kernel's audit system belongs to the "
                  f"machine): the rules are installed in {v['__audit_rules_file']} and load on a real host; "
                  "the daemon is not started here")
        return
    # A changed file, or a kernel whose rules are not the installed ones (deleted with auditctl -D).
    load = rules.will_change or v["__audit_reload"]
    if load and v["__audit_locked"]:
        # A warning, not a noop: pyinfra shows noops only with -v, and the operator must see this.
        logger.warning(f"{host.name}: the kernel's audit rules are locked until reboot (audit_rules_immutable "
                       f"loaded -e 2), so the changed rules in {v['__audit_rules_file']} cannot be loaded now: "
                       "reboot the host to load them (verify's LOG-01 check fails until then)")
    elif load:
        server.shell(name="LOG-01 | Load the rules into the kernel", commands=["augenrules --load"])
    systemd.service(name="LOG-01 | Run auditd now and at boot", service="auditd", running=True, enabled=True)


def journal(v: dict[str, Any]) -> None:
    dropin = v["__audit_journald_dropin"]
    files.directory(name="LOG-02 | Create the journald settings folder", path=dropin.rsplit("/", 1)[0],
                    user="root", group="root", mode="0755")
    conf = common.put_text("LOG-02 | Keep the journal on disk within its size and age limits",
                           common.render(ROLE, "journald.conf.j2", v), dropin)
    folder = files.directory(name="LOG-02 | Create the persistent journal folder", path="/var/log/journal",
                             user="root", group="systemd-journal", mode="2755")
    if conf.will_change or folder.will_change:
        systemd.service(name="LOG-02 | Restart journald", service="systemd-journald", restarted=True)
    forward = v["__audit_rsyslog_conf"]
    if not v["audit_log_host"]:
        gone = files.file(name="LOG-02 | Stop forwarding when no log host is set", path=forward, present=False)
        if gone.will_change:
            systemd.service(name="LOG-02 | Restart rsyslog", service="rsyslog", restarted=True)
        return
    apt.packages(name="LOG-02 | Install rsyslog with TLS for forwarding", packages=v["audit_forward_packages"],
                 update=False)
    ca = v["__audit_ca_file"]
    files.directory(name="LOG-02 | Create the folder of the log host's CA", path=ca.rsplit("/", 1)[0],
                    user="root", group="root", mode="0755")
    changed = [
        common.put_text("LOG-02 | Install the CA the log host's certificate must verify against",
                        v["audit_log_ca_cert"].strip() + "\n", ca),
        common.put_text("LOG-02 | Forward every log line to the log host over TLS",
                        common.render(ROLE, "rsyslog-forward.conf.j2", v), forward),
    ]
    systemd.service(name="LOG-02 | Run rsyslog now and at boot", service="rsyslog", running=True, enabled=True,
                    restarted=any(op.will_change for op in changed))


def retention(v: dict[str, Any]) -> None:
    unit = v["__audit_retention_unit"]
    changed = [common.put_text("LOG-03 | Install the daily deletion of web server logs past their retention",
                               common.render(ROLE, f"weblog-retention.{kind}.j2", v),
                               f"/etc/systemd/system/{unit}.{kind}") for kind in ("service", "timer")]
    again = any(op.will_change for op in changed)
    common.restore_schedule("LOG-03", f"{unit}.timer", "deletion of old web server logs")
    systemd.service(name="LOG-03 | Start the retention timer", service=f"{unit}.timer", running=True, enabled=True,
                    daemon_reload=again)
    if again:
        systemd.service(name="LOG-03 | Apply the retention now, after a change of its settings",
                        service=f"{unit}.service", running=True)
