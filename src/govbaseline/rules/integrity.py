"""Role integrity's rules: what its ``meta/argument_specs.yml`` cannot say.

``RULES`` judges one variable each, ``CROSS_RULES`` several of the role's variables together;
``govbaseline.validation`` runs them, for both engines, after the argument spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from govbaseline.rules.common import (
    CrossRule,
    Rule,
    absolute_path,
    absolute_paths,
    calendar,
    int_range,
    non_empty,
    optional,
    system_folder,
)


def tamper_root(name: str, value: Any) -> list[str]:
    problems = absolute_path(name, value)
    if not problems and system_folder(value):
        problems.append(f"{name} is {value}: a system folder is not a web root (a restore would overwrite it); "
                        "name the web root, such as /var/www")
    return problems


def known_good_copy(values: Mapping[str, Any]) -> list[str]:
    """With restore on, the known-good copy must be set, and neither inside the web root (the watch
    would judge it as pages) nor holding it (the restore would copy the web root into itself)."""
    good = str(values.get("integrity_known_good_dir") or "").rstrip("/")
    root = str(values.get("integrity_web_root") or "").rstrip("/")
    if values.get("integrity_tamper_restore") and not good:
        return ["integrity_known_good_dir is empty: integrity_tamper_restore is true, so a known-good copy of the "
                "web root (a release folder on the host) is needed to restore from"]
    if good and root and (good == root or good.startswith(root + "/") or root.startswith(good + "/")):
        return [f"integrity_known_good_dir {good} overlaps integrity_web_root {root}: keep the release folder "
                "outside the web root, such as /srv/release"]
    if good and system_folder(good):
        return [f"integrity_known_good_dir is {good}: a system folder is not a release folder"]
    return []


# One rule per variable, for what the argument spec cannot say; validation runs them in this order.
RULES: dict[str, Rule] = {
    "integrity_aide_paths": non_empty(absolute_paths),
    "integrity_aide_exclude": absolute_paths,
    "integrity_check_calendar": calendar,
    "integrity_check_randomized_delay_minutes": int_range(0, 1440),
    "integrity_web_root": tamper_root,
    "integrity_tamper_delay_seconds": int_range(1, 300),
    "integrity_known_good_dir": optional(absolute_path),
}
# Rules that look at several of the role's variables together.
CROSS_RULES: list[CrossRule] = [known_good_copy]
