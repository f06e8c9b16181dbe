"""pyinfra deploy of the firewall controls (FW-01, FW-02, FW-03), twin of ``roles/firewall``."""

from __future__ import annotations

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.operations import apt, systemd

from govbaseline import validation
from govbaseline.deploys import common, nftables

ROLE = "firewall"


@deploy("Firewall")
def apply() -> None:
    v = common.settings(ROLE)
    if v is None or not common.enforced(ROLE, "ruleset"):
        return
    apt.packages(name="FW-01 | Install nftables", packages=v["firewall_packages"], update=False)
    nftables.table(
        name="FW-01, FW-03 | Load the default-deny table with flood limits, armed to roll back unless confirmed",
        table=v["__firewall_nft_table"], content=common.render(ROLE, "nftables.conf.j2", v),
        dest=v["firewall_config_path"], rollback_timeout=v["firewall_rollback_timeout"],
    )
    systemd.service(name="FW-01 | Load the ruleset at every boot", service=v["__firewall_service_name"],
                    running=None, enabled=True)


@deploy("Firewall confirmation")
def confirm() -> None:
    """Run in a second pyinfra run: a new SSH connection proves the new ruleset lets SSH in."""
    values = validation.validated_vars(ROLE, host.data.govbaseline_hostvars)
    if values["firewall_enabled"]:
        nftables.confirm(name="FW-02 | Confirm the ruleset from a new connection, cancelling the rollback",
                         table=validation.internal_vars(ROLE)["__firewall_nft_table"],
                         dest=values["firewall_config_path"])
