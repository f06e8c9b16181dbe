"""Rules across roles: combinations of several roles' values that would defeat a control."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from govbaseline.rules.common import inside

# Roles whose jobs warn through the alert channel (govbaseline-alert, installed by the alerts role).
ALERTING_ROLES = ("tls", "ids", "integrity", "patching", "antivirus", "vulnscan", "backup")


def cross_role(values: Mapping[str, Mapping[str, Any]], off: Iterable[str] = ()) -> list[str]:
    """Problems across roles (``govbaseline.validation.check_baseline``); ``values`` holds the validated
    variables of each role that is switched on, ``off`` names the host's roles that are switched off."""
    firewall, tls, scan = values.get("firewall"), values.get("tls"), values.get("vulnscan")
    problems = []
    silenced = [role for role in ALERTING_ROLES if role in values]
    if "alerts" in set(off) and silenced:
        problems.append(f"alerts_enabled is false, but these roles warn through the alert channel (govbaseline-alert): "
                        f"{', '.join(silenced)}. Their warnings (intrusions, tampering, malware, failed backups, "
                        "expiring certificates) would reach no one. Keep the alert channel (alerts_enabled: true, "
                        "alerts_smtp_host and alerts_recipients set), or switch those roles off too "
                        f"({', '.join(f'{r}_enabled: false' for r in silenced)})")
    if firewall and tls and 443 not in firewall.get("firewall_allowed_tcp_ports", []):
        problems.append("firewall_allowed_tcp_ports lacks 443: the tls role serves HTTPS there and the firewall "
                        "would drop every client. Add 443 (and 80 for the redirect), or set tls_enabled: false")
    if firewall and scan and scan.get("vulnscan_scanner_host") and \
            scan["vulnscan_port_scan_max_rate"] >= firewall["firewall_new_conn_rate_per_second"]:
        problems.append(f"vulnscan_port_scan_max_rate ({scan['vulnscan_port_scan_max_rate']}/s) must stay below "
                        f"firewall_new_conn_rate_per_second ({firewall['firewall_new_conn_rate_per_second']}/s): "
                        "the firewall's flood limit would drop probes and hide open ports from the scan")
    return problems + contradictions(values)


def contradictions(values: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Combinations of roles' values that would defeat a control, make a renewal or a job impossible,
    or send something where it must not go (README: "What is refused before any change, and why").
    Each rule applies when both roles are in ``values`` (the host's roles that are on)."""
    firewall, tls, antivirus = values.get("firewall"), values.get("tls"), values.get("antivirus")
    integrity, audit, backup = values.get("integrity"), values.get("audit"), values.get("backup")
    problems = []
    if firewall and tls and tls.get("tls_certificate_source") == "acme" \
            and 80 not in firewall.get("firewall_allowed_tcp_ports", []):
        problems.append("firewall_allowed_tcp_ports lacks 80 while tls_certificate_source is acme: the ACME HTTP-01 "
                        "challenge of the first certificate and of every renewal comes in on port 80, so the "
                        "certificate would expire. Add 80 to firewall_allowed_tcp_ports (nginx only redirects it), or "
                        "use tls_certificate_source: files")
    web_root = str(tls.get("tls_web_root", "")) if tls else ""
    if web_root and integrity and integrity.get("integrity_tamper_enabled") and \
            not inside(web_root, str(integrity.get("integrity_web_root", ""))):
        problems.append(f"tls_web_root {web_root} is outside integrity_web_root {integrity['integrity_web_root']}: "
                        "the tamper watch would guard a folder nginx does not serve. Set integrity_web_root to "
                        "tls_web_root or a folder holding it")
    if web_root and audit and not inside(web_root, str(audit.get("audit_web_root", ""))):
        problems.append(f"tls_web_root {web_root} is outside audit_web_root {audit['audit_web_root']}: changes to "
                        "the published site would not be audited. Set audit_web_root to tls_web_root or a folder "
                        "holding it")
    if web_root and backup and not any(inside(web_root, p) for p in backup.get("backup_paths", [])):
        problems.append(f"tls_web_root {web_root} is inside none of backup_paths: the published site would not be "
                        "backed up. Add it (or a folder holding it) to backup_paths")
    quarantine = str(antivirus.get("antivirus_quarantine_dir", "")) if antivirus else ""
    roots = [("tls_web_root", web_root, "published by nginx")] + (
        [("integrity_web_root", str(integrity.get("integrity_web_root", "")),
          "judged (and restored over) by the tamper watch")] if integrity else [])
    problems += [f"antivirus_quarantine_dir {quarantine} is inside {name} {root}: infected files would be {what}. "
                 "Keep the quarantine outside every web root, such as /var/lib/govbaseline/quarantine"
                 for name, root, what in roots if quarantine and root and inside(quarantine, root)]
    return problems
