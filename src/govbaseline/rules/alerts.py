"""Role alerts's rules: what its ``meta/argument_specs.yml`` cannot say.

``RULES`` judges one variable each, ``CROSS_RULES`` several of the role's variables together;
``govbaseline.validation`` runs them, for both engines, after the argument spec.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Mapping
from typing import Any

from govbaseline.rules.common import (
    CrossRule,
    Rule,
    each,
    email,
    host_name_or_ip,
    int_range,
    optional,
    pem_certificate,
    printable,
    requires,
    url,
)

SEVERITIES = ("low", "medium", "high", "critical")


def recipients_by_severity(name: str, value: Any) -> list[str]:
    if not isinstance(value, dict):
        return [f"{name} must map severities ({', '.join(SEVERITIES)}) to lists of addresses, not {value!r}"]
    problems = [f"{name} has an unknown severity {k!r} (use {', '.join(SEVERITIES)})"
                for k in value if k not in SEVERITIES]
    for level, addresses in value.items():
        if addresses is None:
            continue
        if not isinstance(addresses, list):
            problems.append(f"{name}.{level} must be a list of addresses, not {addresses!r}")
            continue
        problems += each(email)(f"{name}.{level}", addresses)
    if not problems and not any(value.get(level) for level in SEVERITIES):
        problems.append(f"{name} names no address at all: alerts would reach nobody")
    return problems


def alerts_not_in_clear(values: Mapping[str, Any]) -> list[str]:
    """Alerts carry host names, findings and the webhook token / relay password: not in clear text
    beyond the local network."""
    problems = []
    hook = values.get("alerts_webhook_url") or ""
    parsed = urllib.parse.urlparse(hook) if isinstance(hook, str) else None
    if parsed is not None and parsed.scheme == "http" and parsed.hostname:
        try:
            private = ipaddress.ip_address(parsed.hostname).is_private
        except ValueError:
            private = False
        if not private:
            problems.append(f"alerts_webhook_url is plain http:// to {parsed.hostname}: every alert (and "
                            "alerts_webhook_token) would cross the network unencrypted. Use https:// (plain http is "
                            "accepted only to a private or loopback IP address, such as a local relay)")
    if values.get("alerts_smtp_user") and values.get("alerts_smtp_tls") == "off":
        problems.append("alerts_smtp_tls is off while alerts_smtp_user is set: the relay password would be sent in "
                        "clear text. Set alerts_smtp_tls to starttls or tls")
    return problems


# One rule per variable, for what the argument spec cannot say; validation runs them in this order.
RULES: dict[str, Rule] = {
    "alerts_smtp_host": host_name_or_ip,
    "alerts_smtp_port": int_range(1, 65535),
    "alerts_smtp_ca_cert": optional(pem_certificate),
    "alerts_from": optional(email),
    "alerts_recipients": recipients_by_severity,
    "alerts_cert_address": optional(email),
    "alerts_webhook_url": optional(url),
    "alerts_retry_interval_minutes": int_range(1, 1440),
    "alerts_subject_prefix": printable(1, 40),
    "alerts_flood_window_minutes": int_range(0, 1440),
    "alerts_flood_max_per_hour": int_range(0, 10000),
}
# Rules that look at several of the role's variables together.
CROSS_RULES: list[CrossRule] = [
    requires("alerts_smtp_user", "alerts_smtp_password", "the relay login needs its password"),
    alerts_not_in_clear,
]
