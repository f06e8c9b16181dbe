"""Role firewall's rules: what its ``meta/argument_specs.yml`` cannot say.

``RULES`` judges one variable each, ``CROSS_RULES`` several of the role's variables together;
``govbaseline.validation`` runs them, for both engines, after the argument spec.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from govbaseline.rules.common import CrossRule, Rule, cidr_list, int_range, port_list


def log_prefix(name: str, value: Any) -> list[str]:
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not value.isprintable() or '"' in value:
        return [f"{name} must be 1-64 printable characters without double quotes, not {value!r}"]
    return []


def ssh_not_open_to_all(values: Mapping[str, Any]) -> list[str]:
    port = values.get("firewall_ssh_port")
    if port in (values.get("firewall_allowed_tcp_ports") or []):
        return [f"firewall_allowed_tcp_ports lists {port}, the SSH port (firewall_ssh_port): SSH would be open to "
                "every address, not only firewall_management_cidrs. Remove it, and add the administrators' networks "
                "to firewall_management_cidrs"]
    return []


def _firewall_lockout(values: Mapping[str, Any], controller_address: str | None) -> list[str]:
    if not controller_address:
        return []
    try:
        address = ipaddress.ip_address(controller_address.split("%")[0])
    except ValueError:
        return []
    if address.is_loopback:
        return []
    networks = [ipaddress.ip_network(c) for c in values["firewall_management_cidrs"]]
    if not any(address in net for net in networks if net.version == address.version):
        return [
            f"firewall_management_cidrs ({', '.join(values['firewall_management_cidrs'])}) does not include "
            f"{address}, the address this controller connects from: the ruleset would cut this session off. "
            f"Add {address} (or its network) to firewall_management_cidrs"]
    return []


def _firewall_port_lockout(values: Mapping[str, Any], controller_port: Any) -> list[str]:
    """The ruleset accepts SSH on firewall_ssh_port only; the baseline does not move sshd (the access
    role leaves its Port alone), so a session on another port would be cut off at the reload."""
    try:
        port = int(str(controller_port).strip())
    except ValueError:
        return []
    if port == values["firewall_ssh_port"]:
        return []
    return [f"firewall_ssh_port is {values['firewall_ssh_port']}, but this controller's SSH session reaches sshd on "
            f"port {port}: the ruleset would accept SSH on {values['firewall_ssh_port']} only and cut this session "
            f"off (the baseline does not move sshd). Set firewall_ssh_port: {port}, the port sshd listens on; to "
            f"move SSH, make sshd listen on the new port first, connect on it (ansible_port), then set "
            f"firewall_ssh_port to it"]


# The host's listening TCP ports, one line separated by spaces (empty where ss is missing): the same
# shell in site.yml's first task, the firewall's preflight and pyinfra's CONNECTION (a unit test holds them to it).
LISTENING_TCP_PORTS = ("{ ss -Hltn 2>/dev/null || true; } | awk '{n=split($4, a, /:/); print a[n]}' | sort -un "
                       "| tr '\\n' ' '")


def _firewall_port_unserved(values: Mapping[str, Any], listening: Any) -> list[str]:
    """Without an SSH session to compare with (pull mode, a local run), nothing may at least listen
    on firewall_ssh_port: the ruleset would admit SSH on a port where no sshd answers, and every
    administrator would be shut out, with no session left to notice."""
    ports = {int(p) for p in str(listening or "").split() if p.isdigit()}
    if not ports or values["firewall_ssh_port"] in ports:
        return []
    return [f"firewall_ssh_port is {values['firewall_ssh_port']}, but nothing on the host listens there (listening "
            f"TCP ports: {', '.join(map(str, sorted(ports)))}): the ruleset would admit SSH where no sshd answers and "
            "shut every administrator out. Set firewall_ssh_port to the port sshd listens on (the baseline does not "
            "move sshd)"]


def lockout(values: Mapping[str, Any], context: Mapping[str, Any]) -> list[str]:
    """What would cut off the controller's session (``govbaseline.validation.check_lockout``): the
    controller's address outside the management networks, and SSH on another port (or on a port
    nothing listens on), all named in one run."""
    port_problems = _firewall_port_lockout(values, context.get("controller_port")) or \
        _firewall_port_unserved(values, context.get("listening_tcp_ports"))
    return _firewall_lockout(values, context.get("controller_address")) + port_problems


# One rule per variable, for what the argument spec cannot say; validation runs them in this order.
RULES: dict[str, Rule] = {
    "firewall_management_cidrs": cidr_list(non_empty=True),
    "firewall_ssh_port": int_range(1, 65535),
    "firewall_allowed_tcp_ports": port_list,
    "firewall_allowed_udp_ports": port_list,
    "firewall_icmp_rate_per_second": int_range(0, 1000),
    "firewall_new_conn_rate_per_second": int_range(1, 100000),
    "firewall_new_conn_burst": int_range(1, 100000),
    "firewall_log_drops_per_minute": int_range(0, 10000),
    "firewall_log_prefix": log_prefix,
    "firewall_rollback_timeout": int_range(10, 600),
}
# Rules that look at several of the role's variables together.
CROSS_RULES: list[CrossRule] = [ssh_not_open_to_all]
