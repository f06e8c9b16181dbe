"""pyinfra deploy of the firewall controls (FW-01, FW-02, FW-03), twin of ``roles/firewall``."""

from __future__ import annotations

from typing import Any

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.facts.server import Command
from pyinfra.operations import apt, systemd

from govbaseline import validation
from govbaseline.deploys import common, nftables

ROLE = "firewall"


def settings() -> dict[str, Any]:
    """Validated role variables for the current host; raises ValidationError before any change."""
    values = common.settings(ROLE)
    connection = host.get_fact(Command, "printenv SSH_CONNECTION || true") or ""
    validation.check_lockout(ROLE, values, {"controller_address": connection.split(" ")[0] if connection else None})
    return values


@deploy("Firewall")
def apply() -> None:
    values = settings()
    if not values["firewall_enabled"]:
        host.noop("firewall_enabled is false")
        return
    internal = common.internal(ROLE)
    apt.packages(name="FW-01 | Install nftables", packages=values["firewall_packages"], update=False)
    content = common.render(ROLE, "nftables.conf.j2", {**values, **internal})
    nftables.table(
        name="FW-01, FW-03 | Load the default-deny table with flood limits, armed to roll back unless confirmed",
        table=internal["__firewall_nft_table"], content=content,
        dest=values["firewall_config_path"], rollback_timeout=values["firewall_rollback_timeout"],
    )
    systemd.service(name="FW-01 | Load the ruleset at every boot", service=internal["__firewall_service_name"],
                    running=None, enabled=True)


@deploy("Firewall confirmation")
def confirm() -> None:
    """Run in a second pyinfra run: a new SSH connection proves the new ruleset lets SSH in."""
    values = validation.validated_vars(ROLE, host.data.govbaseline_hostvars)
    if values["firewall_enabled"]:
        nftables.confirm(name="FW-02 | Confirm the ruleset from a new connection, cancelling the rollback",
                         table=common.internal(ROLE)["__firewall_nft_table"], dest=values["firewall_config_path"])
