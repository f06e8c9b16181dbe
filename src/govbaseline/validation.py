"""Validate role variables before anything on a host changes, the same way for both engines.

Types come from each role's ``meta/argument_specs.yml`` (checked with ansible-core's own
``ArgumentSpecValidator``, so Ansible and pyinfra agree); what a type cannot say (port ranges,
CIDR syntax, non-empty lists, lockout) is in ``RULES`` below. The Ansible side reaches this module
through the ``govbaseline_validate`` action plugin, the pyinfra side calls it directly.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from govbaseline.paths import PLAYBOOKS_DIR, ROLES_DIR

Rule = Callable[[str, Any], list[str]]


class ValidationError(ValueError):
    """One or more variables are wrong; ``problems`` names each variable and what is wrong."""

    def __init__(self, role: str, problems: list[str]):
        self.role = role
        self.problems = problems
        super().__init__(f"role {role}: " + "; ".join(problems))


def int_range(low: int, high: int) -> Rule:
    def rule(name: str, value: Any) -> list[str]:
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{name} must be a whole number, not {value!r}"]
        if not low <= value <= high:
            return [f"{name} must be between {low} and {high}, not {value}"]
        return []

    return rule


def port_list(name: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        return [f"{name} must be a list of ports, not {value!r}"]
    return [p for i, item in enumerate(value) for p in int_range(1, 65535)(f"{name}[{i}]", item)]


def cidr(name: str, value: Any) -> list[str]:
    if not isinstance(value, str):
        return [f"{name} must be a CIDR string such as 192.0.2.0/24, not {value!r}"]
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        return [f"{name} is not a valid network: {value!r} ({exc})"]
    return []


def cidr_list(non_empty: bool) -> Rule:
    def rule(name: str, value: Any) -> list[str]:
        if not isinstance(value, list):
            return [f"{name} must be a list of CIDRs, not {value!r}"]
        if non_empty and not value:
            return [f"{name} must list at least one network: an empty list would shut every administrator out"]
        return [p for i, item in enumerate(value) for p in cidr(f"{name}[{i}]", item)]

    return rule


def log_prefix(name: str, value: Any) -> list[str]:
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not value.isprintable() or '"' in value:
        return [f"{name} must be 1-64 printable characters without double quotes, not {value!r}"]
    return []


RULES: dict[str, dict[str, Rule]] = {
    "firewall": {
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
    },
}


def argument_spec(role: str) -> dict[str, Any]:
    path = ROLES_DIR / role / "meta" / "argument_specs.yml"
    data = yaml.safe_load(path.read_text())
    options: dict[str, Any] = data["argument_specs"]["main"]["options"]
    return options


def role_defaults(role: str) -> dict[str, Any]:
    data = yaml.safe_load((ROLES_DIR / role / "defaults" / "main.yml").read_text()) or {}
    return dict(data)


def role_vars(role: str, hostvars: Mapping[str, Any]) -> dict[str, Any]:
    """The role's defaults overlaid by the host's inventory variables (what Ansible would see)."""
    values = role_defaults(role)
    values.update({k: v for k, v in hostvars.items() if k.startswith(f"{role}_")})
    return values


def baseline_roles() -> list[str]:
    """The roles of the baseline, in order: read from ``playbooks/site.yml``, for both engines."""
    plays = yaml.safe_load((PLAYBOOKS_DIR / "site.yml").read_text())
    return [r["role"] if isinstance(r, dict) else r for play in plays for r in play.get("roles", [])]


def validated_vars(role: str, hostvars: Mapping[str, Any]) -> dict[str, Any]:
    """A host's variables for ``role`` (defaults overlaid), validated; raises ValidationError."""
    return validate(role, role_vars(role, hostvars))


def validate(role: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``values`` against the role's argument spec and rules; return them type-converted."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    spec = argument_spec(role)
    params = {k: v for k, v in values.items() if k in spec}
    problems: list[str] = []
    unknown = sorted(k for k in values if k.startswith(f"{role}_") and k not in spec)
    problems += [f"{k} is not a variable of role {role} (misspelt?)" for k in unknown]
    result = ArgumentSpecValidator(spec).validate(params)
    problems += [str(msg) for msg in result.error_messages]
    converted = dict(result.validated_parameters)
    if not result.error_messages:
        for name, rule in RULES.get(role, {}).items():
            if name in converted:
                problems += rule(name, converted[name])
    if problems:
        raise ValidationError(role, problems)
    return converted


def check_lockout(role: str, values: Mapping[str, Any], controller_address: str | None) -> None:
    """Refuse a firewall that would not let the controller's own SSH session back in."""
    if role != "firewall" or not controller_address:
        return
    try:
        address = ipaddress.ip_address(controller_address.split("%")[0])
    except ValueError:
        return
    if address.is_loopback:
        return
    networks = [ipaddress.ip_network(c) for c in values["firewall_management_cidrs"]]
    if not any(address in net for net in networks if net.version == address.version):
        raise ValidationError(role, [
            f"firewall_management_cidrs ({', '.join(values['firewall_management_cidrs'])}) does not include "
            f"{address}, the address this controller connects from: the ruleset would cut this session off. "
            f"Add {address} (or its network) to firewall_management_cidrs"])
