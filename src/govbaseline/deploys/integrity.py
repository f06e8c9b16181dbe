"""pyinfra deploy of file integrity (FIM-01) and web tamper detection (FIM-02), twin of ``roles/integrity``."""

from __future__ import annotations

from typing import Any

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.facts.files import File
from pyinfra.operations import apt, files, server, systemd

from govbaseline.deploys import common

ROLE = "integrity"


@deploy("Integrity")
def apply() -> None:
    v = common.settings(ROLE)
    if v is None:
        return
    changed = aide(v) if common.enforced(ROLE, "aide") else False
    if common.enforced(ROLE, "tamper"):
        tamper(v, changed)


def aide(v: dict[str, Any]) -> bool:
    """FIM-01; returns whether the command or its settings changed (the watch restarts)."""
    apt.packages(name="FIM-01 | Install AIDE, inotify-tools and rsync", packages=v["integrity_packages"], update=False)
    changed = [common.put_file("FIM-01 | Install the integrity command", ROLE, "govbaseline-integrity",
                               v["__integrity_command"], mode="0755")]
    for path, mode in ((v["__integrity_config"].rsplit("/", 1)[0], "0755"),
                       (v["__integrity_aide_db"].rsplit("/", 1)[0], "0700"), (v["__integrity_state_dir"], "0700")):
        files.directory(name=f"FIM-01 | Create {path}", path=path, user="root", group="root", mode=mode)
    changed += [common.put_text(f"FIM-01 | Install {dest}", common.render(ROLE, src, v), dest)
                for src, dest in (("aide.conf.j2", v["__integrity_aide_conf"]),
                                  ("config.json.j2", v["__integrity_config"]))]
    common.mask_units("FIM-01 | Mask Debian's daily AIDE check (Debian's rules, govbaseline's database)",
                      [v["__integrity_debian_timer"]])
    if not host.get_fact(File, path=v["__integrity_aide_db"]):
        server.shell(name="FIM-01 | Make the database and the web manifest where they are missing",
                     commands=[f"{v['__integrity_command']} init"])
    common.scheduled_job("FIM-01", ROLE, v, v["__integrity_check_unit"], "check", "integrity check")
    return any(op.will_change for op in changed)


def tamper(v: dict[str, Any], settings_changed: bool) -> None:
    unit = common.put_text("FIM-02 | Install the web tamper watch", common.render(ROLE, "tamper.service.j2", v),
                           f"/etc/systemd/system/{v['__integrity_tamper_unit']}.service")
    on = bool(v["integrity_tamper_enabled"])
    systemd.service(name="FIM-02 | Run the web tamper watch now and at boot" if on else "FIM-02 | Stop the web "
                    "tamper watch", service=f"{v['__integrity_tamper_unit']}.service", running=on, enabled=on,
                    daemon_reload=unit.will_change, restarted=on and (settings_changed or unit.will_change))


def finish() -> None:
    """After every role of the run: on the first converge (no database before it), the host as the
    baseline left it is the known-good state (Ansible: the handler "Approve the converged host")."""
    v = common.settings(ROLE)
    if v is None or not common.enforced(ROLE, "aide") or host.get_fact(File, path=v["__integrity_aide_db"]):
        return
    server.shell(name="FIM-01 | Approve the converged host (first converge)",
                 commands=[f"{v['__integrity_command']} approve --reason 'first converge'"])
