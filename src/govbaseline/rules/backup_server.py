"""Role backup_server's rules: what its ``meta/argument_specs.yml`` cannot say.

``RULES`` judges one variable each, ``CROSS_RULES`` several of the role's variables together;
``govbaseline.validation`` runs them, for both engines, after the argument spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from govbaseline.rules.common import CrossRule, Rule, absolute_path, calendar, int_range, pem_certificate, printable


def backup_server_tls(values: Mapping[str, Any]) -> list[str]:
    """The certificate and key, when given, are PEM (whether the server needs them depends on its
    transport, which check_platform judges with the host's Debian version)."""
    if not values.get("backup_server_enabled"):
        return []
    problems = []
    cert, key = values.get("backup_server_certificate", ""), values.get("backup_server_private_key", "")
    if cert and (p := pem_certificate("backup_server_certificate", cert)):
        problems += p
    if key and "PRIVATE KEY-----" not in key:
        problems.append("backup_server_private_key is not a PEM private key")
    return problems


def backup_server_transport(values: Mapping[str, Any], major_version: str) -> str:
    """How the backup server serves its clients: restic's REST server, or the SFTP fallback where
    Debian has no restic-rest-server (Debian 12). ``auto`` picks by the Debian version."""
    wanted = values.get("backup_server_transport", "auto")
    if wanted == "auto":
        return "sftp" if major_version == "12" else "rest"
    return str(wanted)


def platform(values: Mapping[str, Any], major_version: str) -> list[str]:
    """What the backup server cannot do on this Debian version: REST without restic-rest-server, or
    without its certificate and key."""
    if not values.get("backup_server_enabled"):
        return []
    transport = backup_server_transport(values, major_version)
    if transport == "rest" and major_version == "12":
        return ["backup_server_transport is rest, but Debian 12 has no restic-rest-server package: use sftp "
                "(or auto), or put the backup server on Debian 13"]
    problems = []
    if transport == "rest":
        if not values.get("backup_server_certificate"):
            problems.append("backup_server_certificate is missing: the REST server only serves HTTPS (PEM text)")
        if not values.get("backup_server_private_key"):
            problems.append("backup_server_private_key is missing: the certificate's key (PEM; put it in Ansible "
                            "Vault)")
    return problems


def derived(values: Mapping[str, Any], major_version: str) -> dict[str, Any]:
    """The transport the server's tasks and checks use (``__backup_server_transport``)."""
    return {"__backup_server_transport": backup_server_transport(values, major_version)}


# One rule per variable, for what the argument spec cannot say; validation runs them in this order.
RULES: dict[str, Rule] = {
    "backup_server_port": int_range(1, 65535),
    "backup_server_data_dir": absolute_path,
    "backup_server_sftp_dir": absolute_path,
    "backup_server_clients_group": printable(1, 100),
    "backup_server_prune_calendar": calendar,
    "backup_server_prune_randomized_delay_minutes": int_range(0, 1440),
}
# Rules that look at several of the role's variables together.
CROSS_RULES: list[CrossRule] = [backup_server_tls]
