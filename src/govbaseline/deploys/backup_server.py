"""pyinfra deploy of the backup server (BAK-02), twin of ``roles/backup_server``."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.operations import apt, files, server, systemd

from govbaseline import backup
from govbaseline.deploys import common

ROLE = "backup_server"


@deploy("Backup server")
def apply() -> None:
    v = common.settings(ROLE)
    if v is None or not common.enforced(ROLE, "server"):
        return
    fleet = json.loads(Path(host.data.govbaseline_fleet_file).read_text())
    names = fleet["groups"].get(v["backup_server_clients_group"], [])
    clients = backup.server_clients({n: fleet["hostvars"][n] for n in names}, v["__backup_server_transport"])
    configure({**v, "__backup_server_clients": clients})


def _put(name: str, content: str, dest: str, mode: str, user: str = "root", group: str = "root") -> Any:
    """A file from text; pyinfra never prints the content (keys, hashes, passwords)."""
    return files.put(name=name, src=StringIO(content), dest=dest, mode=mode, user=user, group=group)


def configure(v: dict[str, Any]) -> None:
    transport = v["__backup_server_transport"]
    owner = v["__backup_server_owners"][transport]
    apt.packages(name=f"BAK-02 | Install restic and the server ({transport})",
                 packages=v["backup_server_packages" if transport == "rest" else "backup_server_sftp_packages"],
                 update=False)
    files.directory(name="BAK-02 | Create the repository folder, owned by the pruning job's user only",
                    path=v["backup_server_data_dir"], user=owner, group=owner, mode="0700")
    for path in (v["__backup_server_clients_file"].rsplit("/", 1)[0], v["__backup_server_state_dir"]):
        files.directory(name=f"BAK-02 | Create {path}", path=path, user=owner, group=owner, mode="0700")
    if transport == "rest":
        rest(v)
    else:
        sftp(v)
    common.put_file("BAK-02 | Install the pruning and copy command", ROLE, "govbaseline-backup-server",
                    v["__backup_server_command"], mode="0755")
    _put("BAK-02 | Install the clients' repository passwords and retention for the pruning job",
         common.render(ROLE, "clients.json.j2", v), v["__backup_server_clients_file"], "0600", user=owner, group=owner)
    common.scheduled_job("BAK-02", ROLE, v, v["__backup_server_prune_unit"], "prune", "pruning")


def rest(v: dict[str, Any]) -> None:
    owner = v["__backup_server_user"]
    changed = [
        _put("BAK-02 | Install the server certificate", v["backup_server_certificate"], v["__backup_server_tls_cert"],
             "0644"),
        _put("BAK-02 | Install its private key, readable by the REST server only", v["backup_server_private_key"],
             v["__backup_server_tls_key"], "0640", group=owner),
        _put("BAK-02 | Install one account per client (bcrypt hashes)", common.render(ROLE, "users.htpasswd.j2", v),
             v["__backup_server_htpasswd"], "0640", group=owner),
        _put("BAK-02 | Serve HTTPS, append-only, each account in its own repository",
             common.render(ROLE, "rest-server.default.j2", v), v["__backup_server_defaults"], "0644"),
    ]
    systemd.service(name="BAK-02 | Start the REST server (restarted when its settings, accounts or certificate "
                         "changed)", service="restic-rest-server.service", running=True, enabled=True,
                    restarted=any(op.will_change for op in changed))


def sftp(v: dict[str, Any]) -> None:
    group, chroots = v["__backup_server_sftp_group"], v["backup_server_sftp_dir"]
    keys = v["__backup_server_sftp_keys_dir"]
    server.group(name="BAK-02 | sftp - Create the group of the clients' SFTP accounts", group=group, system=True)
    for path in (chroots, keys):
        files.directory(name=f"BAK-02 | sftp - Create {path} (root only writes)", path=path, user="root",
                        group="root", mode="0755")
    for client in v["__backup_server_clients"]:
        account = client["account"]
        server.user(name=f"BAK-02 | sftp - Create the account {account} (no shell, no password, SFTP only)",
                    user=account, group=group, system=True, home=f"{chroots}/{account}", create_home=False,
                    # The home is the chroot: it stays root's (sshd refuses a chroot its user owns).
                    ensure_home=False, shell="/usr/sbin/nologin", comment=f"govbaseline backup client {client['name']}")
        files.directory(name=f"BAK-02 | sftp - Create {account}'s chroot (root's)", path=f"{chroots}/{account}",
                        user="root", group="root", mode="0755")
        files.directory(name=f"BAK-02 | sftp - Create {account}'s repository folder", path=f"{chroots}/{account}/repo",
                        user=account, group=group, mode="0700")
        _put(f"BAK-02 | sftp - Install {account}'s SSH key (derived from the client's)",
             f"{client['ssh_key']} govbaseline-backup {client['name']}\n", f"{keys}/{account}.pub", "0644")
    common.sshd_dropin("BAK-02", "BAK-02 | sftp - Confine the accounts to SFTP in their chroot, key only (checked "
                       "by sshd -t)", v["__backup_server_sshd_dropin"], common.render(ROLE, "sshd.conf.j2", v), "0644")
    unit = v["__backup_server_copy_unit"]
    changed = [common.put_text(f"BAK-02 | sftp - Install {unit}.{kind}", common.render(ROLE, f"copy.{kind}.j2", v),
                               f"/etc/systemd/system/{unit}.{kind}") for kind in ("service", "path", "timer")]
    again = any(op.will_change for op in changed)
    common.restore_schedule("BAK-02", f"{unit}.timer", "copy of new snapshots")
    for kind in ("path", "timer"):
        systemd.service(name=f"BAK-02 | sftp - Start {unit}.{kind}", service=f"{unit}.{kind}", running=True,
                        enabled=True, restarted=again, daemon_reload=again and kind == "path")
