"""pyinfra deploy of brute-force blocking (IDS-02), twin of ``roles/ids``."""

from __future__ import annotations

from typing import Any

from pyinfra.api.deploy import deploy
from pyinfra.operations import apt, server, systemd

from govbaseline.deploys import common

ROLE = "ids"


@deploy("IDS")
def apply() -> None:
    v = common.settings(ROLE)
    if v is None:
        return
    bruteforce(v)


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
