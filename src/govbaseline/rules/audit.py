"""Role audit's rules: what its ``meta/argument_specs.yml`` cannot say.

``RULES`` judges one variable each, ``CROSS_RULES`` several of the role's variables together;
``govbaseline.validation`` runs them, for both engines, after the argument spec.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from govbaseline.rules.common import (
    CrossRule,
    Rule,
    absolute_path,
    absolute_paths,
    host_name_or_ip,
    int_range,
    optional,
    pem_certificate,
    system_folder,
)


def deletable_log_dirs(name: str, value: Any) -> list[str]:
    """Folders whose old files are deleted: never a system folder itself."""
    problems = absolute_paths(name, value)
    for i, item in enumerate(value):
        if isinstance(item, str) and system_folder(item):
            problems.append(f"{name}[{i}] is {item}: old files would be deleted from a system folder; "
                            "name the web server's own log folder, such as /var/log/nginx")
    return problems


def size(name: str, value: Any) -> list[str]:
    if not isinstance(value, str) or not re.fullmatch(r"[1-9][0-9]*[KMGT]?", value):
        return [f"{name} must be a size such as 500M or 2G, not {value!r}"]
    return []


def log_host_ca(values: Mapping[str, Any]) -> list[str]:
    if not values.get("audit_log_host"):
        return []
    ca = values.get("audit_log_ca_cert", "")
    if not ca:
        return ["audit_log_ca_cert is missing: audit_log_host is set, and its certificate must be verified "
                "against a CA (PEM text)"]
    return pem_certificate("audit_log_ca_cert", ca)


# One rule per variable, for what the argument spec cannot say; validation runs them in this order.
RULES: dict[str, Rule] = {
    "audit_web_root": absolute_path,
    "audit_watch_paths": absolute_paths,
    "audit_privileged_commands": absolute_paths,
    "audit_journal_max_use": size,
    "audit_journal_max_retention_days": int_range(1, 3650),
    "audit_log_host": optional(host_name_or_ip),
    "audit_log_port": int_range(1, 65535),
    "audit_log_host_name": optional(host_name_or_ip),
    "audit_web_log_retention_days": int_range(1, 3650),
    "audit_web_log_paths": deletable_log_dirs,
}
# Rules that look at several of the role's variables together.
CROSS_RULES: list[CrossRule] = [log_host_ca]
