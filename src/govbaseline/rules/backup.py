"""Role backup's rules: what its ``meta/argument_specs.yml`` cannot say.

``RULES`` judges one variable each, ``CROSS_RULES`` several of the role's variables together;
``govbaseline.validation`` runs them, for both engines, after the argument spec.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from govbaseline.rules.common import (
    CrossRule,
    Rule,
    absolute_path,
    absolute_paths,
    calendar,
    host_name_or_ip,
    inside,
    int_range,
    non_empty,
    optional,
    pem_certificate,
)


def backup_rest_url(name: str, value: Any) -> list[str]:
    parsed = urllib.parse.urlparse(value) if isinstance(value, str) else None
    if parsed is None or parsed.scheme != "https" or not parsed.hostname or parsed.path or parsed.query:
        return [f"{name} must be the backup server's https://<name>:<port> address (nothing after the port), "
                f"not {value!r}"]
    if parsed.username or parsed.password:
        return [f"{name} must not carry credentials (they would show in logs): use backup_rest_password"]
    return []


def url_safe_secret(name: str, value: Any) -> list[str]:
    """A password that becomes part of a URL: unreserved characters only, so it needs no escaping."""
    if value == "" or (isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9._~-]{16,128}", value)):
        return []
    return [f"{name} must be 16-128 characters of A-Z a-z 0-9 . _ ~ - (it becomes part of the server's URL; "
            "e.g. the output of openssl rand -hex 24)"]


def read_subset(name: str, value: Any) -> list[str]:
    text = str(value)
    if re.fullmatch(r"(100|[1-9][0-9]?)(\.[0-9]+)?%", text):
        return []
    if re.fullmatch(r"[1-9][0-9]*/[1-9][0-9]*", text) and int(text.split("/")[0]) <= int(text.split("/")[1]):
        return []
    return [f"{name} must be a share of the data such as 5% or 1/10, not {value!r}"]


def ssh_host_key(name: str, value: Any) -> list[str]:
    """One OpenSSH public key line (``ssh-ed25519 AAAA...``), as in a known_hosts file without the host."""
    parts = value.split() if isinstance(value, str) else []
    if len(parts) >= 2 and re.fullmatch(r"(ssh-(ed25519|rsa)|ecdsa-sha2-nistp(256|384|521))", parts[0]) and \
            re.fullmatch(r"AAAA[A-Za-z0-9+/]+={0,2}", parts[1]) and "\n" not in value.strip():
        return []
    return [f"{name} must be the backup server's SSH host key, one line such as 'ssh-ed25519 AAAA...' "
            f"(ssh-keyscan -t ed25519 <server> prints it), not {value!r}"]


def ssh_public_key(private_key: str) -> str:
    """The OpenSSH public key line of an OpenSSH (or PEM) private key, without a comment."""
    from cryptography.hazmat.primitives import serialization  # here: most runs never read a key

    data = private_key.encode()
    key: Any
    try:
        key = serialization.load_ssh_private_key(data, password=None)
    except ValueError:
        key = serialization.load_pem_private_key(data, password=None)
    public: bytes = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return public.decode()


def ssh_private_key(name: str, value: Any) -> list[str]:
    """An unencrypted OpenSSH (or PEM) private key; the message never shows the value (a secret)."""
    if not isinstance(value, str):
        return [f"{name} must be a private key as text (OpenSSH format), not a {type(value).__name__}"]
    try:
        ssh_public_key(value)
    except (ValueError, TypeError, AttributeError):
        return [f"{name} is not an unencrypted OpenSSH private key (make one with ssh-keygen -t ed25519 -N '' "
                "and put the private key text in Ansible Vault)"]
    return []


def backup_secrets(values: Mapping[str, Any]) -> list[str]:
    if not values.get("backup_enabled"):
        return []
    needed: tuple[tuple[str, str], ...]
    if values.get("backup_transport") == "sftp":
        needed = (
            ("backup_sftp_host", "the backup server's name or address (backup_transport is sftp)"),
            ("backup_sftp_host_key", "the backup server's SSH host key, so this host knows it talks to the real one"),
            ("backup_sftp_private_key", "this host's SSH key for its account on the backup server (Ansible Vault)"),
        )
    else:
        needed = (
            ("backup_rest_url", "the backup server's https:// address (role backup_server)"),
            ("backup_rest_password", "this host's password on the backup server (put it in Ansible Vault)"),
        )
    return [f"{name} is missing: {what}" for name, what in (
        *needed,
        ("backup_repository_password", "the key of this host's encrypted repository (put it in Ansible Vault)"),
    ) if not values.get(name)]


def backup_retention(values: Mapping[str, Any]) -> list[str]:
    keep = [values.get(f"backup_keep_{k}") for k in ("daily", "weekly", "monthly")]
    if all(isinstance(k, int) for k in keep) and not any(keep):
        return ["backup_keep_daily, backup_keep_weekly and backup_keep_monthly are all 0: pruning would delete "
                "every snapshot"]
    return []


def drill_inside_backup(values: Mapping[str, Any]) -> list[str]:
    roots = [p.rstrip("/") or "/" for p in values.get("backup_paths", []) if isinstance(p, str)]
    return [f"backup_drill_paths[{i}] {path} is not inside any of backup_paths: the drill could not restore it"
            for i, path in enumerate(values.get("backup_drill_paths", []))
            if isinstance(path, str) and not any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)]


def drill_not_excluded(values: Mapping[str, Any]) -> list[str]:
    """A drill path inside an excluded folder (backup_exclude's plain paths, or the antivirus
    quarantine the role always excludes) is in no snapshot: every drill would fail."""
    excluded = [(f"backup_exclude[{i}]", p) for i, p in enumerate(values.get("backup_exclude") or [])
                if isinstance(p, str) and p.startswith("/") and not any(c in p for c in "*?[")]
    if values.get("antivirus_quarantine_dir"):
        excluded.append(("antivirus_quarantine_dir", values["antivirus_quarantine_dir"]))
    return [f"backup_drill_paths[{i}] {path} is inside {name} {folder}, which is never backed up: every restore "
            f"drill would find nothing to restore. Name a backed-up folder such as /var/www"
            for i, path in enumerate(values.get("backup_drill_paths") or []) if isinstance(path, str)
            for name, folder in excluded if inside(path, folder)]


# One rule per variable, for what the argument spec cannot say; validation runs them in this order.
RULES: dict[str, Rule] = {
    "backup_rest_url": optional(backup_rest_url),
    "backup_rest_ca_cert": optional(pem_certificate),
    "backup_rest_password": url_safe_secret,
    "backup_sftp_host": optional(host_name_or_ip),
    "backup_sftp_port": int_range(1, 65535),
    "backup_sftp_host_key": optional(ssh_host_key),
    "backup_sftp_private_key": optional(ssh_private_key),
    "backup_paths": non_empty(absolute_paths),
    "backup_calendar": calendar,
    "backup_randomized_delay_minutes": int_range(0, 1440),
    "backup_keep_daily": int_range(0, 1000),
    "backup_keep_weekly": int_range(0, 1000),
    "backup_keep_monthly": int_range(0, 1000),
    "backup_check_calendar": calendar,
    "backup_check_read_subset": read_subset,
    "backup_max_age_hours": int_range(1, 8760),
    "backup_drill_calendar": calendar,
    "backup_drill_paths": non_empty(absolute_paths),
    "antivirus_quarantine_dir": absolute_path,
}
# Rules that look at several of the role's variables together.
CROSS_RULES: list[CrossRule] = [backup_secrets, backup_retention, drill_inside_backup, drill_not_excluded]
