"""Role antivirus's rules: what its ``meta/argument_specs.yml`` cannot say.

``RULES`` judges one variable each, ``CROSS_RULES`` several of the role's variables together;
``govbaseline.validation`` runs them, for both engines, after the argument spec.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

from govbaseline.rules.common import (
    CrossRule,
    Rule,
    absolute_path,
    absolute_paths,
    calendar,
    each,
    int_range,
    non_empty,
    system_folder,
    url,
)

SIGNATURE_FILES = (".hdb", ".hsb", ".mdb", ".msb", ".ndb", ".ldb", ".cdb", ".idb", ".fp", ".sfp", ".ign2",
                   ".yar", ".yara", ".cvd", ".cld", ".cud", ".crb", ".ftm", ".pdb", ".gdb", ".wdb", ".cbc")


def signature_url(name: str, value: Any) -> list[str]:
    parsed = urllib.parse.urlparse(value) if isinstance(value, str) else None
    if parsed is None or parsed.scheme not in ("http", "https", "file") or \
            (parsed.scheme != "file" and not parsed.hostname):
        return [f"{name} must be an http://, https:// or file:// URL of a ClamAV signature file, not {value!r}"]
    if not parsed.path.endswith(SIGNATURE_FILES):
        return [f"{name} must name a ClamAV signature file ({', '.join(SIGNATURE_FILES[:6])}, ...), not {value!r}"]
    return []


def signature_source(values: Mapping[str, Any]) -> list[str]:
    source = values.get("antivirus_signature_source")
    if source == "private_mirror" and not values.get("antivirus_private_mirrors"):
        return ["antivirus_private_mirrors is empty: antivirus_signature_source is private_mirror"]
    if source == "custom" and not values.get("antivirus_custom_signature_urls"):
        return ["antivirus_custom_signature_urls is empty: antivirus_signature_source is custom, so there "
                "would be no signatures at all"]
    return []


def quarantine_outside_scans(values: Mapping[str, Any]) -> list[str]:
    quarantine = str(values.get("antivirus_quarantine_dir", "")).rstrip("/")
    problems = [f"antivirus_quarantine_dir {quarantine} is inside antivirus_scan_paths entry {path}: every scan "
                "would find the quarantined files again"
                for path in values.get("antivirus_scan_paths") or []
                if quarantine == path.rstrip("/") or quarantine.startswith(path.rstrip("/") + "/")]
    if system_folder(quarantine) or quarantine in ("/var/lib", "/var/lib/govbaseline"):
        problems.append(f"antivirus_quarantine_dir must be a folder of its own, not {quarantine}")
    return problems


# One rule per variable, for what the argument spec cannot say; validation runs them in this order.
RULES: dict[str, Rule] = {
    "antivirus_private_mirrors": each(url),
    "antivirus_custom_signature_urls": each(signature_url),
    "antivirus_signature_checks_per_day": int_range(1, 50),
    "antivirus_max_signature_age_days": int_range(1, 60),
    "antivirus_scan_paths": non_empty(absolute_paths),
    "antivirus_scan_calendar": calendar,
    "antivirus_scan_randomized_delay_minutes": int_range(0, 1440),
    "antivirus_quarantine_dir": absolute_path,
}
# Rules that look at several of the role's variables together.
CROSS_RULES: list[CrossRule] = [signature_source, quarantine_outside_scans]
