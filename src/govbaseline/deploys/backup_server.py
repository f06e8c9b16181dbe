"""pyinfra deploy of the backup server (BAK-02), twin of ``roles/backup_server``."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.operations import apt, files, systemd

from govbaseline import backup
from govbaseline.deploys import common

ROLE = "backup_server"


@deploy("Backup server")
def apply() -> None:
    v = common.settings(ROLE)
    if v is None:
        return
    fleet = json.loads(Path(host.data.govbaseline_fleet_file).read_text())
    names = fleet["groups"].get(v["backup_server_clients_group"], [])
    v = {**v, "__backup_server_clients": backup.server_clients({n: fleet["hostvars"][n] for n in names})}
    server(v)


def _put(name: str, content: str, dest: str, mode: str, user: str = "root", group: str = "root") -> Any:
    """A file from text; pyinfra never prints the content (keys, hashes, passwords)."""
    return files.put(name=name, src=StringIO(content), dest=dest, mode=mode, user=user, group=group)


def server(v: dict[str, Any]) -> None:
    owner = v["__backup_server_user"]
    apt.packages(name="BAK-02 | Install the REST server and restic", packages=v["backup_server_packages"],
                 update=False)
    files.directory(name="BAK-02 | Create the repository folder, owned by the REST server only",
                    path=v["backup_server_data_dir"], user=owner, group=owner, mode="0700")
    for path in (v["__backup_server_clients_file"].rsplit("/", 1)[0], v["__backup_server_state_dir"]):
        files.directory(name=f"BAK-02 | Create {path}", path=path, user=owner, group=owner, mode="0700")
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
    common.put_file("BAK-02 | Install the pruning command", ROLE, "govbaseline-backup-prune",
                    v["__backup_server_prune_command"], mode="0755")
    _put("BAK-02 | Install the clients' repository passwords and retention for the pruning job",
         common.render(ROLE, "clients.json.j2", v), v["__backup_server_clients_file"], "0600", user=owner, group=owner)
    common.scheduled_job("BAK-02", ROLE, v, v["__backup_server_prune_unit"], "prune", "pruning")
