"""Role pull's rules: what its ``meta/argument_specs.yml`` cannot say.

``RULES`` judges one variable each, ``CROSS_RULES`` several of the role's variables together;
``govbaseline.validation`` runs them, for both engines, after the argument spec.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from govbaseline.rules.common import CrossRule, Rule, calendar, int_range, optional, pem_certificate


def repository_url(name: str, value: Any) -> list[str]:
    """Where a host in pull mode fetches the code it runs as root: authenticated transports only,
    and no credentials in the URL (it is in process lists and logs)."""
    if not isinstance(value, str) or not value.isprintable() or " " in value:
        return [f"{name} must be an https:// or ssh:// git URL, not {value!r}"]
    scp_like = re.fullmatch(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/].*", value)
    parsed = urllib.parse.urlparse(value)
    if scp_like:
        return []
    if parsed.scheme not in ("https", "ssh") or not parsed.hostname:
        return [f"{name} must be an https:// or ssh:// (or user@host:path) git URL, not {value!r}: the host runs "
                "what it fetches as root, so plain http:// and git:// are refused"]
    if parsed.password or (parsed.scheme == "https" and parsed.username):
        return [f"{name} must not carry credentials (they would show in process lists and logs): use a deploy "
                "key (ssh://) or a repository readable by the hosts"]
    return []


def relative_path(name: str, value: Any) -> list[str]:
    if not isinstance(value, str) or not value or value.startswith("/") or ".." in value.split("/") \
            or not value.isprintable():
        return [f"{name} must be a path inside the repository (relative, no '..'), not {value!r}"]
    return []


def git_ref(name: str, value: Any) -> list[str]:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9._/-]{1,200}", value) or ".." in value \
            or value.startswith(("-", "/")):
        return [f"{name} must be a branch or tag name (letters, digits, . _ / -), not {value!r}"]
    return []


def pull_repository(values: Mapping[str, Any]) -> list[str]:
    if values.get("pull_enabled") and not values.get("pull_repository_url"):
        return ["pull_repository_url is missing: pull_enabled is true, so the host needs the organisation's "
                "repository to pull from"]
    return []


def platform(values: Mapping[str, Any], major_version: str) -> list[str]:
    """Pull mode runs the roles with the host's own ansible-core, which Debian 12's is too old for."""
    if values.get("pull_enabled") and major_version == "12":
        return ["pull_enabled needs Debian 13: Debian 12's ansible-core (2.14) is older "
                "than the roles need (2.18); keep Debian 12 hosts in push mode"]
    return []


# One rule per variable, for what the argument spec cannot say; validation runs them in this order.
RULES: dict[str, Rule] = {
    "pull_repository_url": optional(repository_url),
    "pull_repository_branch": git_ref,
    "pull_repository_ca_cert": optional(pem_certificate),
    "pull_inventory": relative_path,
    "pull_playbook": relative_path,
    "pull_calendar": calendar,
    "pull_randomized_delay_minutes": int_range(0, 1440),
}
# Rules that look at several of the role's variables together.
CROSS_RULES: list[CrossRule] = [pull_repository]
