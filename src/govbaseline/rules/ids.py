"""Role ids's rules: what its ``meta/argument_specs.yml`` cannot say.

``RULES`` judges one variable each, ``CROSS_RULES`` several of the role's variables together;
``govbaseline.validation`` runs them, for both engines, after the argument spec.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from govbaseline.rules.common import (
    CrossRule,
    Rule,
    absolute_path,
    calendar,
    cidr_list,
    each,
    int_range,
    matching,
    optional,
    url,
)

interface_name = matching(r"[A-Za-z0-9_.:@-]{1,15}", "a network interface name such as eth0 or ens3")
rule_source = matching(r"(https?|file)://\S+", "an http(s) or file URL of a rule file or rule set")


def _too_wide(cidr_text: str) -> bool:
    try:
        net = ipaddress.ip_network(cidr_text, strict=False)
    except ValueError:
        return False
    return net.prefixlen < (8 if net.version == 4 else 16)


def never_ban_not_everyone(values: Mapping[str, Any]) -> list[str]:
    """fail2ban never bans management networks nor ids_never_ban_cidrs: one that spans (almost) the
    whole internet switches brute-force blocking off for everyone."""
    return [f"{name} has {net}: fail2ban never bans these networks, so nearly every attacker would be exempt from "
            f"brute-force blocking. Name the administrators' and monitoring networks only (at most /8 for IPv4, "
            f"/16 for IPv6)"
            for name in ("firewall_management_cidrs", "ids_never_ban_cidrs")
            for net in values.get(name) or [] if isinstance(net, str) and _too_wide(net)]


# One rule per variable, for what the argument spec cannot say; validation runs them in this order.
RULES: dict[str, Rule] = {
    "ids_never_ban_cidrs": cidr_list(False),
    "ids_ban_seconds": int_range(10, 2592000),
    "ids_find_seconds": int_range(10, 86400),
    "ids_max_retry": int_range(2, 100),
    "ids_web_4xx_max_retry": int_range(10, 10000),
    "ids_web_4xx_find_seconds": int_range(10, 86400),
    "ids_nginx_access_log": absolute_path,
    "ids_nginx_error_log": absolute_path,
    "ids_backports_mirror": url,
    "ids_suricata_interface": optional(interface_name),
    "ids_suricata_home_net": cidr_list(False),
    "ids_suricata_rule_urls": each(rule_source),
    "ids_suricata_update_calendar": calendar,
    "ids_suricata_alert_dedup_minutes": int_range(0, 1440),
    "ids_suricata_alert_max_per_hour": int_range(1, 1000),
}
# Rules that look at several of the role's variables together.
CROSS_RULES: list[CrossRule] = [never_ban_not_everyone]
