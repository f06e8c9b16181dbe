"""pyinfra deploy of pull mode, twin of ``roles/pull``: a timer that runs ansible-pull from the
organisation's repository and then the checks from inside the host (see ``govbaseline.pull``)."""

from __future__ import annotations

from typing import Any

from pyinfra.context import host
from pyinfra.operations import apt, files

from govbaseline.deploys import common

ROLE = "pull"


def apply() -> None:
    v = common.settings(ROLE)
    if v is None:
        return
    timer(v)  # no control of its own, so nothing here can be waived


def timer(v: dict[str, Any]) -> None:
    apt.packages(name="Pull | Install git, ansible-core and the check tools", packages=v["pull_packages"],
                 update=False)
    for path in (v["__pull_config"].rsplit("/", 1)[0], v["__pull_state_dir"]):
        files.directory(name=f"Pull | Create {path} (root only)", path=path, user="root", group="root", mode="0700")
    common.put_file("Pull | Install the pull command", ROLE, "govbaseline-pull", v["__pull_command"], mode="0755")
    common.put_text("Pull | Install the settings",
                    common.render(ROLE, "config.json.j2", {**v, "inventory_hostname": host.name}),
                    v["__pull_config"], mode="0600")
    if v["pull_repository_ca_cert"]:
        common.put_text("Pull | Install the repository server's CA certificate",
                        v["pull_repository_ca_cert"].strip() + "\n", v["__pull_ca_file"])
    else:
        files.file(name="Pull | Remove a repository CA certificate no longer configured", path=v["__pull_ca_file"],
                   present=False)
    if v["pull_vault_password"]:
        common.put_secret("Pull | Install the vault password (root only)", v["pull_vault_password"] + "\n",
                          v["__pull_vault_password_file"])
    else:
        files.file(name="Pull | Remove a vault password no longer configured", path=v["__pull_vault_password_file"],
                   present=False)
    common.scheduled_job("Pull", ROLE, v, v["__pull_unit"], "pull", "pull")
