"""Role vulnscan's rules: what its ``meta/argument_specs.yml`` cannot say.

``RULES`` judges one variable each, ``CROSS_RULES`` several of the role's variables together;
``govbaseline.validation`` runs them, for both engines, after the argument spec.
"""

from __future__ import annotations

import re
from typing import Any

from govbaseline.rules.common import CrossRule, Rule, calendar, each, int_range, matching, optional, printable


def nmap_ports(name: str, value: Any) -> list[str]:
    """nmap's -p syntax for TCP: numbers and ranges separated by commas, within 1-65535."""
    parts = value.split(",") if isinstance(value, str) and value else []
    good = bool(parts)
    for part in parts:
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()) or \
                not 1 <= int(low) <= int(high or low) <= 65535:
            good = False
    return [] if good else [f"{name} must be ports and ranges such as 1-1024,8080 within 1-65535, not {value!r}"]


def lynis_test_id(name: str, value: Any) -> list[str]:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Z]{3,6}-[0-9]{4}", value):
        return [f"{name} must be a Lynis test id such as PKGS-7392, not {value!r}"]
    return []


# One rule per variable, for what the argument spec cannot say; validation runs them in this order.
RULES: dict[str, Rule] = {
    "vulnscan_lynis_calendar": calendar,
    "vulnscan_lynis_randomized_delay_minutes": int_range(0, 1440),
    "vulnscan_lynis_keep_reports": int_range(1, 1000),
    "vulnscan_min_hardening_index": int_range(0, 100),
    "vulnscan_accepted_warnings": each(lynis_test_id),
    "vulnscan_scanner_host": optional(matching(r"[^\s,:\[\]]{1,253}", "a host's name in the inventory")),
    "vulnscan_fleet_group": printable(1, 100),
    "vulnscan_port_scan_calendar": calendar,
    "vulnscan_port_scan_randomized_delay_minutes": int_range(0, 1440),
    "vulnscan_port_scan_ports": nmap_ports,
    "vulnscan_port_scan_max_rate": int_range(1, 10000),
}
# Rules that look at several of the role's variables together: none yet.
CROSS_RULES: list[CrossRule] = []
