"""pyinfra deploy of automatic security patching (PATCH-01, PATCH-02), twin of ``roles/patching``."""

from __future__ import annotations

from typing import Any

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.facts.files import File
from pyinfra.operations import apt, files, server, systemd

from govbaseline.deploys import common

ROLE = "patching"


@deploy("Patching")
def apply() -> None:
    v = common.settings(ROLE)
    if v is None:
        return
    if common.enforced(ROLE, "unattended"):
        unattended(v)
    if common.enforced(ROLE, "report"):
        report(v)


def unattended(v: dict[str, Any]) -> None:
    apt.packages(name="PATCH-01 | Install unattended-upgrades and needrestart", packages=v["patching_packages"],
                 update=False)
    common.checked_file(name="PATCH-01 | Update the package lists and run unattended-upgrades every day",
                        dest=v["__patching_periodic_conf"], content=common.render(ROLE, "20auto-upgrades.j2", v),
                        check="apt-config -c {} dump >/dev/null")
    common.checked_file(name="PATCH-01 | Install security updates only (and the chosen origins), reboot in the window",
                        dest=v["__patching_unattended_conf"],
                        content=common.render(ROLE, "unattended-upgrades.conf.j2", v),
                        check="apt-config -c {} dump >/dev/null")
    conf = v["__patching_needrestart_conf"]
    files.directory(name="PATCH-01 | Create needrestart's settings folder", path=conf.rsplit("/", 1)[0],
                    user="root", group="root", mode="0755")
    common.checked_file(name="PATCH-01 | Restart the services still running replaced libraries", dest=conf,
                        content=common.render(ROLE, "needrestart.conf.j2", v), check="perl -c {} 2>/dev/null")
    for unit in v["__patching_apt_units"]:
        timer = f"{unit}.timer"
        common.restore_schedule("PATCH-01", timer, f"apt's {unit} timer", vendor=True)
        systemd.service(name=f"PATCH-01 | Run {timer}", service=timer, running=True, enabled=True)


def report(v: dict[str, Any]) -> None:
    command = v["__patching_report_command"]
    common.put_file("PATCH-01 | Install the run report and pending-update record", ROLE,
                    "govbaseline-patch-report", command, mode="0755")
    config = v["__patching_config"]
    files.directory(name="PATCH-01 | Create the report's settings folder", path=config.rsplit("/", 1)[0],
                    user="root", group="root", mode="0755")
    files.directory(name="PATCH-01 | Create the report's state folder", path=v["__patching_state_dir"],
                    user="root", group="root", mode="0700")
    common.put_text("PATCH-01 | Install the report settings", common.render(ROLE, "config.json.j2", v), config)
    # Report and record after every run of apt's daily services.
    common.service_dropins("PATCH-02", {unit: common.render(ROLE, "report-dropin.conf.j2", {**v, "item": unit})
                                        for unit in v["__patching_apt_units"]}, v["__patching_dropin_name"])
    # The record is the host's own: apt's daily services update it after every run (drop-ins above).
    # A converge only starts it, so a security update published between two converges is the host's
    # news to record, not a change the converge makes.
    record = f"{v['__patching_state_dir']}/pending.json"
    if host.get_fact(File, path=record):
        host.noop("PATCH-02 | the record of pending security updates is kept by apt's daily services")
        return
    server.shell(name="PATCH-02 | Start the record of pending security updates (when each was first seen)",
                 commands=[f"{command} --track"])
