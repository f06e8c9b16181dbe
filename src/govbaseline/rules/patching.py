"""Role patching's rules: what its ``meta/argument_specs.yml`` cannot say.

``RULES`` judges one variable each, ``CROSS_RULES`` several of the role's variables together;
``govbaseline.validation`` runs them, for both engines, after the argument spec.
"""

from __future__ import annotations

import re
from typing import Any

from govbaseline.rules.common import CrossRule, Rule, each, int_range, matching

ORIGIN_KEYS = {"origin", "o", "label", "l", "codename", "n", "suite", "archive", "a", "component", "c", "site"}


def origin_pattern(name: str, value: Any) -> list[str]:
    """An unattended-upgrades Origins-Pattern entry: key=value pairs separated by commas."""
    pairs = value.split(",") if isinstance(value, str) and value and '"' not in value else []
    if not pairs or not all("=" in p and p.split("=", 1)[0] in ORIGIN_KEYS and p.split("=", 1)[1] for p in pairs):
        return [f"{name} must be key=value pairs such as origin=Debian,codename=${{distro_codename}}-updates "
                f"(keys: {', '.join(sorted(ORIGIN_KEYS))}), not {value!r}"]
    return []


def regex(name: str, value: Any) -> list[str]:
    if not isinstance(value, str) or not value or '"' in value:
        return [f"{name} must be a non-empty regular expression without double quotes, not {value!r}"]
    try:
        re.compile(value)
    except re.error as exc:
        return [f"{name} is not a valid regular expression: {value!r} ({exc})"]
    return []


time_of_day = matching(r"([01][0-9]|2[0-3]):[0-5][0-9]", "a time of day HH:MM such as 03:00")


# One rule per variable, for what the argument spec cannot say; validation runs them in this order.
RULES: dict[str, Rule] = {
    "patching_extra_origins": each(origin_pattern),
    "patching_package_blacklist": each(regex),
    "patching_reboot_time": time_of_day,
    "patching_max_pending_days": int_range(0, 90),
    "patching_max_list_age_days": int_range(1, 30),
}
# Rules that look at several of the role's variables together: none yet.
CROSS_RULES: list[CrossRule] = []
