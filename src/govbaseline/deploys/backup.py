"""pyinfra deploy of the backup client (BAK-01, BAK-03), twin of ``roles/backup``."""

from __future__ import annotations

from typing import Any

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.operations import apt, files

from govbaseline.deploys import common

ROLE = "backup"
# The control each scheduled job of vars/main.yml (__backup_jobs) serves.
JOB_CONTROLS = {"backup": "BAK-01", "check": "BAK-01", "drill": "BAK-03"}


@deploy("Backup")
def apply() -> None:
    v = common.settings(ROLE)
    if v is None:
        return
    if common.enforced(ROLE, "client"):
        client({**v, "inventory_hostname": host.name})


def client(v: dict[str, Any]) -> None:
    sftp = v["backup_sftp_packages"] if v["backup_transport"] == "sftp" else []
    apt.packages(name="BAK-01 | Install restic", packages=v["backup_packages"] + sftp, update=False)
    for path in (v["__backup_config_dir"], v["__backup_state_dir"], v["__backup_cache_dir"], v["__backup_dump_dir"]):
        files.directory(name=f"BAK-01 | Create {path} (root only)", path=path, user="root", group="root", mode="0700")
    files.directory(name="BAK-03 | Create the root-only scratch folder of the restore drills",
                    path=v["__backup_drill_dir"], user="root", group="root", mode="0700")
    common.put_secret("BAK-01 | Install the repository address with this host's account (root only)",
                      common.render(ROLE, "repository.j2", v), v["__backup_repository_file"])
    common.put_secret("BAK-01 | Install the repository password (root only)", v["backup_repository_password"],
                      v["__backup_password_file"])
    if v["backup_rest_ca_cert"]:
        common.put_text("BAK-01 | Install the CA the backup server's certificate is verified against",
                        v["backup_rest_ca_cert"], v["__backup_ca_file"])
    if v["backup_transport"] == "sftp":
        common.put_secret("BAK-01 | sftp - install this host's SSH key for its account on the backup server",
                          v["backup_sftp_private_key"].strip() + "\n", v["__backup_ssh_key_file"])
        for template, dest in (("known_hosts.j2", v["__backup_known_hosts"]),
                               ("ssh_config.j2", v["__backup_ssh_config"])):
            common.put_text(f"BAK-01 | sftp - install {dest}", common.render(ROLE, template, v), dest)
    common.put_text("BAK-01 | Install the backup settings (what, where, drill, alert severity)",
                    common.render(ROLE, "config.json.j2", v), v["__backup_config"])
    common.put_file("BAK-01 | Install the backup, check, drill and restore command", ROLE, "govbaseline-backup",
                    v["__backup_command"], mode="0755")
    for job in v["__backup_jobs"]:
        values = {**v, "job": job, "job_calendar": v[job["calendar_var"]], "job_delay": v[job["delay_var"]]}
        marker = f"{v['__backup_state_dir']}/{job['first_run']}" if job["first_run"] else None
        common.scheduled_job(JOB_CONTROLS[job["name"]], ROLE, values, job["unit"], "job", job["what"], marker)
