"""Validate role variables before anything on a host changes, the same way for both engines.

Types come from each role's ``meta/argument_specs.yml`` (checked with ansible-core's own
``ArgumentSpecValidator``, so Ansible and pyinfra agree); what a type cannot say (port ranges,
CIDR syntax, non-empty lists, lockout) is in ``RULES`` below. The Ansible side reaches this module
through the ``govbaseline_validate`` action plugin, the pyinfra side calls it directly.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import re
import shlex
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from govbaseline.paths import PLAYBOOKS_DIR, ROLES_DIR
from govbaseline.rules.common import (
    Rule,
    absolute_path,
    absolute_paths,
    calendar,
    cidr_list,
    each,
    email,
    host_name_or_ip,
    inside,
    int_range,
    ip_address,
    matching,
    non_empty,
    optional,
    pem_certificate,
    port_list,
    printable,
    requires,
    system_folder,
    url,
    username,
)


class ValidationError(ValueError):
    """One or more variables are wrong; ``problems`` names each variable and what is wrong."""

    def __init__(self, role: str, problems: list[str]):
        self.role = role
        self.problems = problems
        # The whole baseline's problems already name their roles.
        super().__init__(("" if role == "baseline" else f"role {role}: ") + "; ".join(problems))


def log_prefix(name: str, value: Any) -> list[str]:
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not value.isprintable() or '"' in value:
        return [f"{name} must be 1-64 printable characters without double quotes, not {value!r}"]
    return []


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


PUBLIC_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|"
                        r"sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n]*)?$")
ALGORITHM = re.compile(r"^[A-Za-z0-9@.+_-]+$")


def username_list(name: str, value: Any) -> list[str]:
    problems = each(username)(name, value)
    if "root" in value:
        problems.append(f"{name} must not list root")
    return problems


def admin_users(name: str, value: Any) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for i, user in enumerate(value):
        problems += username(f"{name}[{i}].name", user["name"])
        if user["name"] in seen:
            problems.append(f"{name}[{i}].name {user['name']!r} is listed twice")
        seen.add(user["name"])
        keys = user["ssh_public_keys"]
        if not keys:
            problems.append(f"{name}[{i}].ssh_public_keys is empty: {user['name']} could not log in (keys only)")
        for j, key in enumerate(keys):
            if not PUBLIC_KEY.match(key.strip()):
                problems.append(f"{name}[{i}].ssh_public_keys[{j}] is not an OpenSSH public key line "
                                f"(type, base64 key, optional comment): {key[:40]!r}")
    return problems


def algorithms(name: str, value: Any) -> list[str]:
    return [f"{name}[{i}] is not an SSH algorithm name: {a!r}" for i, a in enumerate(value)
            if not isinstance(a, str) or not ALGORITHM.match(a)]


def umask(name: str, value: Any) -> list[str]:
    if not isinstance(value, str) or not re.fullmatch(r"0?[0-7]{3}", value):
        return [f"{name} must be three octal digits such as \"027\", not {value!r}"]
    if int(value, 8) & 0o027 != 0o027:
        return [f"{name} {value} is looser than 027: group members could write and others could read"]
    return []


def non_empty_text(name: str, value: Any) -> list[str]:
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        return [f"{name} must be non-empty text"]
    return []


def ageing_order(values: Mapping[str, Any]) -> list[str]:
    problems = []
    if values["access_password_min_days"] >= values["access_password_max_days"]:
        problems.append("access_password_min_days must be below access_password_max_days")
    if values["access_password_warn_days"] >= values["access_password_max_days"]:
        problems.append("access_password_warn_days must be below access_password_max_days")
    return problems


def vendors_are_not_admins(values: Mapping[str, Any]) -> list[str]:
    both = sorted({u["name"] for u in values["access_admin_users"]} & set(values["access_vendor_accounts"]))
    return [f"access_vendor_accounts and access_admin_users both list {', '.join(both)}"] if both else []


def some_admin_can_log_in(values: Mapping[str, Any]) -> list[str]:
    if not values["access_admin_users"] and values["access_permit_root_login"] == "no":
        return ["no administrator could log in with a key: access_admin_users is empty and "
                "access_permit_root_login is 'no'. List an administrator with a key in access_admin_users "
                "(or set access_permit_root_login: prohibit-password)"]
    return []


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


def server_name(name: str, value: Any) -> list[str]:
    """A DNS name nginx answers to, optionally a leading wildcard label (*.example.gov)."""
    if isinstance(value, str) and value.startswith("*."):
        value = value[2:]
    return host_name_or_ip(name, value)


def server_names(name: str, value: Any) -> list[str]:
    if not value:
        return [f"{name} is empty: name the site (the primary DNS name first), e.g. [www.example.gov]"]
    return each(server_name)(name, value)


def header_value(name: str, value: Any) -> list[str]:
    if not isinstance(value, str) or not value.strip() or not value.isprintable() or '"' in value \
            or len(value) > 2000:
        return [f"{name} must be a header value: printable text without double quotes, at most 2000 "
                f"characters, not {value!r}"]
    return []


def content_security_policy(name: str, value: Any) -> list[str]:
    problems = header_value(name, value)
    if not problems and "frame-ancestors" in value:
        problems.append(f"{name} must not contain frame-ancestors: set tls_frame_ancestors instead")
    return problems


REFERRER_POLICIES = ("no-referrer", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin",
                     "same-origin", "strict-origin", "strict-origin-when-cross-origin")


def referrer_policy(name: str, value: Any) -> list[str]:
    if value not in REFERRER_POLICIES:
        return [f"{name} must be one of {', '.join(REFERRER_POLICIES)} (unsafe-url leaks full addresses), "
                f"not {value!r}"]
    return []


def nginx_size(name: str, value: Any) -> list[str]:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]+[kKmMgG]?", value):
        return [f"{name} must be an nginx size such as 1m or 512k, not {value!r}"]
    return []


def extension(name: str, value: Any) -> list[str]:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9]{1,16}", value):
        return [f"{name} must be a file name ending without the dot (letters and digits), not {value!r}"]
    return []


def web_root(name: str, value: Any) -> list[str]:
    problems = absolute_path(name, value)
    if not problems and system_folder(value):
        problems.append(f"{name} is {value}: a system folder would be published; use a folder of its own "
                        "such as /var/www/html")
    return problems


def _covers(pattern: str, site: str) -> bool:
    """Does a certificate name (possibly *.example.gov) cover the site name ``site``?"""
    pattern, site = pattern.lower(), site.lower()
    if pattern == site:
        return True
    return pattern.startswith("*.") and not site.startswith("*.") and "." in site \
        and site.split(".", 1)[1] == pattern[2:]


def tls_certificate_files(values: Mapping[str, Any]) -> list[str]:
    """Certificate and key from the operator: present, PEM, matching, valid now and for every name.

    Messages never quote the key: it is a secret.
    """
    if values.get("tls_certificate_source") != "files":
        return []
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert_pem, key_pem = values.get("tls_certificate", ""), values.get("tls_private_key", "")
    problems = []
    if not cert_pem:
        problems.append("tls_certificate is missing: tls_certificate_source is files, so the PEM certificate "
                        "(with its intermediates) is needed")
    if not key_pem:
        problems.append("tls_private_key is missing: tls_certificate_source is files, so its PEM private key "
                        "is needed (keep it in Ansible Vault)")
    if problems:
        return problems
    try:
        chain = x509.load_pem_x509_certificates(cert_pem.encode())
    except ValueError as exc:
        return [f"tls_certificate is not a PEM certificate ({exc})"]
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError):
        return ["tls_private_key is not an unencrypted PEM private key (its content is not shown)"]
    leaf = chain[0]
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, spki) != \
            leaf.public_key().public_bytes(serialization.Encoding.DER, spki):
        problems.append("tls_private_key does not belong to tls_certificate (their public keys differ)")
    now = dt.datetime.now(dt.UTC)
    if leaf.not_valid_after_utc <= now:
        problems.append(f"tls_certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d}")
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        covered = [*san.get_values_for_type(x509.DNSName),
                   *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]
    except x509.ExtensionNotFound:
        covered = []
    for site in values.get("tls_server_names") or []:
        if not any(_covers(pattern, site) for pattern in covered):
            problems.append(f"tls_certificate does not cover {site} of tls_server_names "
                            f"(it names {', '.join(covered) or 'nothing'})")
    return problems


def tls_acme(values: Mapping[str, Any]) -> list[str]:
    if values.get("tls_certificate_source") != "acme":
        return []
    problems = [] if values.get("tls_acme_email") else [
        "tls_acme_email is missing: tls_certificate_source is acme, and the ACME CA needs an account address"]
    if any(str(n).startswith("*.") for n in values.get("tls_server_names") or []):
        problems.append("tls_server_names has a wildcard name: ACME with certbot's standalone HTTP challenge "
                        "cannot issue it; use tls_certificate_source: files")
    return problems


def tls_hsts_preload(values: Mapping[str, Any]) -> list[str]:
    if values.get("tls_hsts_preload") and not values.get("tls_hsts_include_subdomains"):
        return ["tls_hsts_preload needs tls_hsts_include_subdomains: true (browsers' preload lists require it)"]
    return []


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


def calendar_command(value: str) -> str:
    """Read-only shell command judging a calendar where its timer will run: the host's systemd. It
    always exits 0 (a pyinfra fact fails on anything else); its output goes to ``calendar_problem``."""
    return (f"out=$(LC_ALL=C systemd-analyze calendar -- {shlex.quote(value)} 2>&1) && echo ok || "
            "printf 'refused %s\\n' \"$out\"")


def calendars(role: str, values: Mapping[str, Any]) -> dict[str, str]:
    """The role's calendar variables and their values (what the host's systemd must accept)."""
    return {name: values[name] for name, rule in RULES.get(role, {}).items() if rule is calendar and name in values}


def calendar_problem(name: str, value: str, output: str) -> str | None:
    """The refusal for a calendar the host's systemd does not accept, from ``calendar_command``'s output."""
    if output.strip() == "ok":
        return None
    detail = output.strip().removeprefix("refused").strip() or "no answer"
    return (f"{name} is not a calendar this host's systemd accepts: {value!r} ({detail}); set it to an "
            "expression `systemd-analyze calendar` accepts on the host, such as daily or 'Mon *-*-* 02:00'")


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


def ssh_private_key(name: str, value: Any) -> list[str]:
    """An unencrypted OpenSSH (or PEM) private key; the message never shows the value (a secret)."""
    if not isinstance(value, str):
        return [f"{name} must be a private key as text (OpenSSH format), not a {type(value).__name__}"]
    from govbaseline import backup  # here: backup imports this module

    try:
        backup.ssh_public_key(value)
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


def backup_server_platform(values: Mapping[str, Any], major_version: str) -> list[str]:
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


interface_name = matching(r"[A-Za-z0-9_.:@-]{1,15}", "a network interface name such as eth0 or ens3")
rule_source = matching(r"(https?|file)://\S+", "an http(s) or file URL of a rule file or rule set")


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


# The allowed values of the kernel parameters the system role sets by default (by the last part of
# the name; 0/1 switches unless listed). A parameter not listed takes any whole number.
SYSCTL_RANGES = {"rp_filter": (0, 2), "accept_ra": (0, 2), "tcp_syncookies": (0, 2), "randomize_va_space": (0, 2),
                 "kptr_restrict": (0, 2), "ptrace_scope": (0, 3), "protected_fifos": (0, 2),
                 "protected_regular": (0, 2), "suid_dumpable": (0, 2), "unprivileged_bpf_disabled": (0, 2),
                 **dict.fromkeys(("ip_forward", "forwarding", "send_redirects", "accept_redirects", "secure_redirects",
                                  "accept_source_route", "log_martians", "icmp_echo_ignore_broadcasts",
                                  "icmp_ignore_bogus_error_responses", "dmesg_restrict", "protected_hardlinks",
                                  "protected_symlinks", "kexec_load_disabled"), (0, 1))}


def sysctl_parameters(prefixes: tuple[str, ...]) -> Rule:
    """A dict of kernel parameters (``net.ipv4.tcp_syncookies: 1``) whose names start with one of
    ``prefixes`` and whose values are whole numbers the kernel accepts for them."""
    def rule(name: str, value: Any) -> list[str]:
        if not isinstance(value, dict) or not value:
            return [f"{name} must map kernel parameters to values (e.g. {prefixes[0]}...: 1), not {value!r}; "
                    f"to set none, switch the area off"]
        problems = []
        for key, setting in value.items():
            if not isinstance(key, str) or not re.fullmatch(r"[a-z]+(\.[A-Za-z0-9_/-]+)+", key) \
                    or not key.startswith(prefixes):
                problems.append(f"{name} has {key!r}: a parameter name must start with {' or '.join(prefixes)} "
                                "and be written with dots (as sysctl prints it)")
                continue
            text = str(setting) if isinstance(setting, int) and not isinstance(setting, bool) else setting
            if not isinstance(text, str) or not re.fullmatch(r"-?\d{1,10}", text):
                problems.append(f"{name}[{key!r}] must be a whole number, not {setting!r}")
                continue
            low, high = SYSCTL_RANGES.get(key.rsplit(".", 1)[-1], (-2**31, 2**31 - 1))
            if not low <= int(text) <= high:
                problems.append(f"{name}[{key!r}] must be between {low} and {high}, not {setting}")
        return problems

    return rule


def cron_allow_users(name: str, value: Any) -> list[str]:
    problems = each(username)(name, value)
    if not problems and "root" not in value:
        problems.append(f"{name} must list root: with /etc/cron.allow present, an account not listed cannot use "
                        "cron or at, and root's own jobs would be refused. Add root")
    return problems


def no_suid_dumps(values: Mapping[str, Any]) -> list[str]:
    """SYS-03 keeps set-uid programs from dumping core through SYS-02's fs.suid_dumpable."""
    if not (values.get("system_coredumps_enabled") and values.get("system_kernel_enabled")):
        return []
    kernel = values.get("system_sysctl_kernel")
    if isinstance(kernel, dict) and str(kernel.get("fs.suid_dumpable")) != "0":
        return [f"system_sysctl_kernel has fs.suid_dumpable {kernel.get('fs.suid_dumpable')!r}, but core dumps are "
                "off (system_coredumps_enabled): a set-uid program's dump would hold another user's secrets. "
                "Set fs.suid_dumpable: 0 in system_sysctl_kernel, or system_coredumps_enabled: false"]
    return []


TIME_SERVER_KEYS = {"name", "pool", "nts"}


def time_servers(name: str, value: Any) -> list[str]:
    """SYS-06's servers: a non-empty list of ``{name: host, pool: bool, nts: bool}`` (pool and nts optional)."""
    if not isinstance(value, list) or not value:
        return [f"{name} must list at least one time server, such as [{{name: ntp.example.gov, nts: true}}]; "
                "to leave the clock alone, set system_time_enabled: false"]
    problems = []
    for i, server in enumerate(value):
        if not isinstance(server, dict):
            problems.append(f"{name}[{i}] must be a mapping such as {{name: ntp.example.gov, nts: true}}, "
                            f"not {server!r}")
            continue
        unknown = sorted(set(server) - TIME_SERVER_KEYS, key=str)
        if unknown:
            problems.append(f"{name}[{i}] has unknown keys {unknown}: only name, pool and nts")
        problems += host_name_or_ip(f"{name}[{i}].name", server.get("name"))
        problems += [f"{name}[{i}].{key} must be true or false, not {server[key]!r}"
                     for key in ("pool", "nts") if key in server and not isinstance(server[key], bool)]
    names = [s.get("name") for s in value if isinstance(s, dict)]
    problems += [f"{name} lists {n} twice" for n in sorted({n for n in names if names.count(n) > 1}, key=str)]
    return problems


def nts_ca_needs_an_nts_server(values: Mapping[str, Any]) -> list[str]:
    """A CA for NTS servers is only read for a server with ``nts: true``: a CA without one means the
    operator meant NTS and would get plain, forgeable NTP."""
    servers = values.get("system_time_servers")
    if not (values.get("system_time_enabled") and values.get("system_time_nts_ca_cert") and isinstance(servers, list)):
        return []
    if not any(isinstance(s, dict) and s.get("nts") is True for s in servers):
        return ["system_time_nts_ca_cert is set but no server in system_time_servers has nts: true: the clock would "
                "follow plain, forgeable NTP. Add nts: true to the servers that offer NTS, or empty "
                "system_time_nts_ca_cert"]
    return []


def derived(role: str, values: Mapping[str, Any], major_version: str) -> dict[str, Any]:
    """Internal variables that follow from validated values and the host's Debian version, the
    same for both engines (Ansible gets them as facts from the validation task)."""
    if role == "backup_server":
        return {"__backup_server_transport": backup_server_transport(values, major_version)}
    return {}


RULES: dict[str, dict[str, Rule]] = {
    "firewall": {
        "firewall_management_cidrs": cidr_list(non_empty=True),
        "firewall_ssh_port": int_range(1, 65535),
        "firewall_allowed_tcp_ports": port_list,
        "firewall_allowed_udp_ports": port_list,
        "firewall_icmp_rate_per_second": int_range(0, 1000),
        "firewall_new_conn_rate_per_second": int_range(1, 100000),
        "firewall_new_conn_burst": int_range(1, 100000),
        "firewall_log_drops_per_minute": int_range(0, 10000),
        "firewall_log_prefix": log_prefix,
        "firewall_rollback_timeout": int_range(10, 600),
    },
    "alerts": {
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
    },
    "access": {
        "access_admin_group": username,
        "access_admin_users": admin_users,
        "access_ssh_max_auth_tries": int_range(1, 10),
        "access_ssh_login_grace_time": int_range(5, 600),
        "access_ssh_client_alive_interval": int_range(1, 3600),
        "access_ssh_client_alive_count_max": int_range(1, 10),
        "access_ssh_kex_remove": algorithms,
        "access_ssh_ciphers_remove": algorithms,
        "access_ssh_macs_remove": algorithms,
        "access_ssh_banner": non_empty_text,
        "access_shell_timeout": int_range(60, 86400),
        "access_vendor_accounts": username_list,
        "access_password_min_length": int_range(8, 128),
        "access_password_min_classes": int_range(1, 4),
        "access_faillock_deny": int_range(1, 100),
        "access_faillock_fail_interval": int_range(60, 86400),
        "access_faillock_unlock_time": int_range(0, 604800),
        "access_password_max_days": int_range(1, 99999),
        "access_password_min_days": int_range(0, 365),
        "access_password_warn_days": int_range(0, 365),
        "access_umask": umask,
        "access_sudo_log": absolute_path,
    },
    "audit": {
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
    },
    "tls": {
        "tls_server_names": server_names,
        "tls_trusted_ca_cert": optional(pem_certificate),
        "tls_acme_email": optional(email),
        "tls_acme_server": url,
        "tls_resolvers": each(ip_address),
        "tls_hsts_max_age": int_range(31536000, 2**31 - 1),
        "tls_content_security_policy": content_security_policy,
        "tls_frame_ancestors": header_value,
        "tls_referrer_policy": referrer_policy,
        "tls_permissions_policy": header_value,
        "tls_rate_limit_per_second": int_range(1, 10000),
        "tls_rate_limit_burst": int_range(0, 100000),
        "tls_connections_per_address": int_range(1, 10000),
        "tls_client_max_body_size": nginx_size,
        "tls_client_body_timeout": int_range(1, 600),
        "tls_client_header_timeout": int_range(1, 600),
        "tls_keepalive_timeout": int_range(0, 600),
        "tls_send_timeout": int_range(1, 600),
        "tls_web_root": web_root,
        "tls_sensitive_extensions": non_empty(each(extension)),
        "tls_waf_paranoia_level": int_range(1, 4),
        "tls_expiry_warn_days": int_range(1, 365),
        "tls_expiry_extra_certificates": absolute_paths,
    },
    "patching": {
        "patching_extra_origins": each(origin_pattern),
        "patching_package_blacklist": each(regex),
        "patching_reboot_time": time_of_day,
        "patching_max_pending_days": int_range(0, 90),
        "patching_max_list_age_days": int_range(1, 30),
    },
    "antivirus": {
        "antivirus_private_mirrors": each(url),
        "antivirus_custom_signature_urls": each(signature_url),
        "antivirus_signature_checks_per_day": int_range(1, 50),
        "antivirus_max_signature_age_days": int_range(1, 60),
        "antivirus_scan_paths": non_empty(absolute_paths),
        "antivirus_scan_calendar": calendar,
        "antivirus_scan_randomized_delay_minutes": int_range(0, 1440),
        "antivirus_quarantine_dir": absolute_path,
    },
    "integrity": {
        "integrity_aide_paths": non_empty(absolute_paths),
        "integrity_aide_exclude": absolute_paths,
        "integrity_check_calendar": calendar,
        "integrity_check_randomized_delay_minutes": int_range(0, 1440),
        "integrity_web_root": tamper_root,
        "integrity_tamper_delay_seconds": int_range(1, 300),
        "integrity_known_good_dir": optional(absolute_path),
    },
    "ids": {
        "ids_never_ban_cidrs": cidr_list(False),
        "ids_ban_seconds": int_range(10, 2592000),
        "ids_find_seconds": int_range(10, 86400),
        "ids_max_retry": int_range(2, 100),
        "ids_web_4xx_max_retry": int_range(10, 10000),
        "ids_web_4xx_find_seconds": int_range(10, 86400),
        "ids_nginx_access_log": absolute_path,
        "ids_nginx_error_log": absolute_path,
        "ids_backports_mirror": url,
        "ids_suricata_interface": optional(interface_name),
        "ids_suricata_home_net": cidr_list(False),
        "ids_suricata_rule_urls": each(rule_source),
        "ids_suricata_update_calendar": calendar,
        "ids_suricata_alert_dedup_minutes": int_range(0, 1440),
        "ids_suricata_alert_max_per_hour": int_range(1, 1000),
    },
    "vulnscan": {
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
    },
    "backup": {
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
    },
    "pull": {
        "pull_repository_url": optional(repository_url),
        "pull_repository_branch": git_ref,
        "pull_repository_ca_cert": optional(pem_certificate),
        "pull_inventory": relative_path,
        "pull_playbook": relative_path,
        "pull_calendar": calendar,
        "pull_randomized_delay_minutes": int_range(0, 1440),
    },
    "system": {
        "system_sysctl_network": sysctl_parameters(("net.",)),
        "system_sysctl_kernel": sysctl_parameters(("kernel.", "fs.")),
        "system_cron_allow_users": cron_allow_users,
        "system_time_servers": time_servers,
        "system_time_nts_ca_cert": optional(pem_certificate),
        "system_time_max_offset_ms": int_range(1, 60000),
        "system_file_search_seconds": int_range(10, 3600),
    },
    "backup_server": {
        "backup_server_port": int_range(1, 65535),
        "backup_server_data_dir": absolute_path,
        "backup_server_sftp_dir": absolute_path,
        "backup_server_clients_group": printable(1, 100),
        "backup_server_prune_calendar": calendar,
        "backup_server_prune_randomized_delay_minutes": int_range(0, 1440),
    },
}


def ssh_not_open_to_all(values: Mapping[str, Any]) -> list[str]:
    port = values.get("firewall_ssh_port")
    if port in (values.get("firewall_allowed_tcp_ports") or []):
        return [f"firewall_allowed_tcp_ports lists {port}, the SSH port (firewall_ssh_port): SSH would be open to "
                "every address, not only firewall_management_cidrs. Remove it, and add the administrators' networks "
                "to firewall_management_cidrs"]
    return []


def _too_wide(cidr_text: str) -> bool:
    try:
        net = ipaddress.ip_network(cidr_text, strict=False)
    except ValueError:
        return False
    return net.prefixlen < (8 if net.version == 4 else 16)


def never_ban_not_everyone(values: Mapping[str, Any]) -> list[str]:
    """fail2ban never bans management networks nor ids_never_ban_cidrs: one that spans (almost) the
    whole internet switches brute-force blocking off for everyone."""
    return [f"{name} has {net}: fail2ban never bans these networks, so nearly every attacker would be exempt from "
            f"brute-force blocking. Name the administrators' and monitoring networks only (at most /8 for IPv4, "
            f"/16 for IPv6)"
            for name in ("firewall_management_cidrs", "ids_never_ban_cidrs")
            for net in values.get(name) or [] if isinstance(net, str) and _too_wide(net)]


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


# Rules that look at several variables of a role together.
CROSS_RULES: dict[str, list[Callable[[Mapping[str, Any]], list[str]]]] = {
    "alerts": [requires("alerts_smtp_user", "alerts_smtp_password", "the relay login needs its password"),
               alerts_not_in_clear],
    "firewall": [ssh_not_open_to_all],
    "ids": [never_ban_not_everyone],
    "access": [ageing_order, vendors_are_not_admins, some_admin_can_log_in],
    "audit": [log_host_ca],
    "tls": [tls_certificate_files, tls_acme, tls_hsts_preload],
    "antivirus": [signature_source, quarantine_outside_scans],
    "integrity": [known_good_copy],
    "backup": [backup_secrets, backup_retention, drill_inside_backup, drill_not_excluded],
    "backup_server": [backup_server_tls],
    "pull": [pull_repository],
    "system": [no_suid_dumps, nts_ca_needs_an_nts_server],
}

SUPPORTED = {"Debian": ("12", "13")}


def check_platform(role: str, distribution: str, major_version: str,
                   values: Mapping[str, Any] | None = None) -> None:
    """Refuse hosts the baseline was not built and tested for, and (given the role's validated
    ``values``) what the role cannot do on this Debian version."""
    if major_version not in SUPPORTED.get(distribution, ()):
        raise ValidationError(role, [
            f"govbaseline supports Debian 12 and 13; this host runs {distribution} {major_version}"])
    if role == "backup_server" and values is not None and (problems := backup_server_platform(values, major_version)):
        raise ValidationError(role, problems)
    if role == "pull" and values is not None and values.get("pull_enabled") and major_version == "12":
        raise ValidationError(role, ["pull_enabled needs Debian 13: Debian 12's ansible-core (2.14) is older "
                                     "than the roles need (2.18); keep Debian 12 hosts in push mode"])


@functools.cache
def _parsed(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - safe loaders only


def load_yaml(path: Path) -> Any:
    """A role file's data, parsed once per process (libyaml where present: the pure-Python parser
    takes over a second for the files one verify reads); a copy, so callers may change it."""
    return copy.deepcopy(_parsed(path))


def argument_spec(role: str) -> dict[str, Any]:
    data = load_yaml(ROLES_DIR / role / "meta" / "argument_specs.yml")
    options: dict[str, Any] = data["argument_specs"]["main"]["options"]
    return options


def role_defaults(role: str) -> dict[str, Any]:
    data = load_yaml(ROLES_DIR / role / "defaults" / "main.yml") or {}
    return dict(data)


def role_of(name: str) -> str | None:
    """The role a variable belongs to: the longest role name it starts with (``backup_server_port``
    is role backup_server's, ``backup_paths`` role backup's)."""
    owners = [role for role in baseline_roles() if name.startswith(f"{role}_")]
    return max(owners, key=len) if owners else None


# Variables of another role that a role reads (its templates use them): the host's value, or that
# role's default. They are in the reading role's argument_specs too, so both engines check them.
# ids: its web jails read nginx's logs, so they are on only where the tls role is (tls_enabled).
# backup: the antivirus quarantine is never backed up (its path comes from the antivirus role).
READS: dict[str, tuple[str, ...]] = {"ids": ("firewall_management_cidrs", "firewall_ssh_port", "tls_enabled"),
                                     "backup": ("antivirus_quarantine_dir",)}


def role_vars(role: str, hostvars: Mapping[str, Any]) -> dict[str, Any]:
    """The role's defaults overlaid by the host's inventory variables (what Ansible would see)."""
    values = role_defaults(role)
    for name in READS.get(role, ()):
        owner = role_of(name)
        values[name] = hostvars.get(name, role_defaults(owner).get(name) if owner else None)
    values.update({k: v for k, v in hostvars.items() if role_of(k) == role})
    return values


@functools.lru_cache(maxsize=1)
def site_plays() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(host group, roles) of each play of ``playbooks/site.yml``, in order: what both engines apply
    where (web servers get the baseline, backup servers the backup server)."""
    plays = yaml.safe_load((PLAYBOOKS_DIR / "site.yml").read_text())
    # The playbook names the collection's roles by their full names (govbaseline.baseline.firewall).
    return tuple((str(play["hosts"]), tuple((r["role"] if isinstance(r, dict) else r).rpartition(".")[2]
                                            for r in play.get("roles", [])))
                 for play in plays)


def baseline_roles() -> list[str]:
    """Every role of ``playbooks/site.yml`` once, in the order of the plays."""
    return list(dict.fromkeys(role for _, roles in site_plays() for role in roles))


def roles_for(groups: Iterable[str]) -> list[str]:
    """The roles a host in these inventory groups gets, in the order of the plays."""
    wanted = set(groups)
    return list(dict.fromkeys(role for group, roles in site_plays() if group in wanted for role in roles))


def validated_vars(role: str, hostvars: Mapping[str, Any]) -> dict[str, Any]:
    """A host's variables for ``role`` (defaults overlaid), validated; raises ValidationError."""
    return validate(role, role_vars(role, hostvars))


def switched_on(role: str, values: Mapping[str, Any]) -> bool:
    """Whether ``<role>_enabled`` is true in ``values`` (a role without the switch is always on).
    Raises ValidationError when the switch itself is not a boolean."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    switch = f"{role}_enabled"
    spec = argument_spec(role)
    if switch not in spec or switch not in values:
        return True
    result = ArgumentSpecValidator({switch: spec[switch]}).validate({switch: values[switch]})
    if result.error_messages:
        raise ValidationError(role, [str(msg) for msg in result.error_messages])
    return bool(result.validated_parameters[switch])


def internal_vars(role: str) -> dict[str, Any]:
    """The role's internal variables (``__<role>_*``: paths, unit names, tables): ``vars/main.yml``,
    then ``vars/Debian.yml``. The engines install by these names and the checks look them up here."""
    values: dict[str, Any] = {}
    for name in ("main.yml", "Debian.yml"):
        path = ROLES_DIR / role / "vars" / name
        if path.exists():
            values.update(load_yaml(path) or {})
    return values


def applied_vars(role: str, hostvars: Mapping[str, Any], major_version: str | None = None) -> dict[str, Any]:
    """What an engine applies of ``role`` on a host, and so what its checks judge: the role's
    defaults overlaid by the host's inventory variables, validated and type-converted (``"443"``
    becomes ``443``), with the role's internal variables and, given the host's Debian
    ``major_version``, what follows from it (``derived``). A role switched off yields
    ``{"<role>_enabled": False}`` alone. Raises ValidationError for a bad value."""
    values = validated_vars(role, hostvars)
    if not values.get(f"{role}_enabled", True):
        return values
    extra = derived(role, values, major_version) if major_version else {}
    return {**values, **internal_vars(role), **extra}


def declared_tcp_ports(hostvars: Mapping[str, Any]) -> list[int]:
    """The TCP ports a host opens on purpose, sorted: ``firewall_allowed_tcp_ports`` and
    ``firewall_ssh_port`` (the firewall role's defaults where unset), type-converted as the firewall
    role applies them (``"443"`` is 443). The declaration stands where the firewall role is off: the
    fleet scan (VULN-02) judges every other open port. Raises ValidationError for a bad value."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    names = ("firewall_allowed_tcp_ports", "firewall_ssh_port")
    values = role_vars("firewall", hostvars)
    spec = argument_spec("firewall")
    result = ArgumentSpecValidator({n: spec[n] for n in names}).validate({n: values[n] for n in names})
    if result.error_messages:
        raise ValidationError("firewall", [str(msg) for msg in result.error_messages])
    ports = result.validated_parameters
    return sorted({*ports["firewall_allowed_tcp_ports"], ports["firewall_ssh_port"]})


def validate(role: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``values`` against the role's argument spec and rules; return them type-converted.

    A role switched off (``<role>_enabled: false``) is neither applied nor checked, so its other
    variables are not judged either: the result is ``{"<role>_enabled": False}`` alone."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    if not switched_on(role, values):
        return {f"{role}_enabled": False}
    spec = argument_spec(role)
    params = {k: v for k, v in values.items() if k in spec}
    problems: list[str] = []
    unknown = sorted(k for k in values if role_of(k) == role and k not in spec)
    problems += [f"{k} is not a variable of role {role} (misspelt?)" for k in unknown]
    # YAML reads an unquoted off/no/yes as a boolean; Ansible's validator would quietly turn it back
    # into "off", but the role's templates see the boolean. Refuse it, so both engines agree.
    problems += [f"{k} must be one of {', '.join(map(str, spec[k]['choices']))}, not the boolean {v!r}: "
                 f"quote it (YAML reads unquoted off/no/yes as true or false)"
                 for k, v in params.items() if isinstance(v, bool) and spec[k].get("choices")
                 and spec[k].get("type", "str") == "str"]
    result = ArgumentSpecValidator(spec).validate(params)
    problems += [str(msg) for msg in result.error_messages]
    converted = dict(result.validated_parameters)
    if not result.error_messages:
        for name, rule in RULES.get(role, {}).items():
            if name in converted:
                problems += rule(name, converted[name])
        for cross in CROSS_RULES.get(role, []):
            problems += cross(converted)
    if problems:
        raise ValidationError(role, problems)
    return converted


def validate_roles(values: Mapping[str, Mapping[str, Any]], context: Mapping[str, Any],
                      platform: tuple[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Several roles (the whole baseline, or one) at once, before anything changes: what both engines
    run first.

    ``values`` holds each role's variables (defaults overlaid by the host's), ``context`` what the
    host told about the connection and the inventory's groups (``check_lockout``; ``probe_host``:
    the host's ``govbaseline_probe_host``), ``platform`` its distribution and major
    version. All problems of all roles are collected into one ValidationError (each prefixed with
    its role), so one run names every bad value; the rules across roles run when each role is good.
    """
    problems = [f"govbaseline: {p}" for p in inventory_names(
        "govbaseline", {"govbaseline_probe_host": context.get("probe_host")}, context)]
    converted: dict[str, dict[str, Any]] = {}
    for role, role_values in values.items():
        try:
            converted[role] = validate(role, role_values)
            if not converted[role].get(f"{role}_enabled", True):
                continue  # switched off: not applied, so neither the platform nor a lockout matters
            if platform is not None:
                check_platform(role, *platform)
                check_platform(role, *platform, converted[role])
            check_lockout(role, converted[role], context)
        except ValidationError as exc:
            problems += [f"role {exc.role}: {p}" for p in exc.problems]
    if not problems:
        try:
            # The rules across roles see the roles that are switched on only.
            check_baseline({role: v for role, v in converted.items() if v.get(f"{role}_enabled", True)},
                           off=[role for role, v in converted.items() if not v.get(f"{role}_enabled", True)])
        except ValidationError as exc:
            problems += [f"{exc.role}: {p}" for p in exc.problems]
    if problems:
        raise ValidationError("baseline", problems)
    return converted


# Roles whose jobs warn through the alert channel (govbaseline-alert, installed by the alerts role).
ALERTING_ROLES = ("tls", "ids", "integrity", "patching", "antivirus", "vulnscan", "backup")


def check_baseline(values: Mapping[str, Mapping[str, Any]], off: Iterable[str] = ()) -> None:
    """Rules across roles, for the whole baseline; ``values`` holds the validated variables of each
    role that is switched on (a role that is off is absent: no rule may demand its values), ``off``
    names the roles of the host that are switched off."""
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
    problems += contradictions(values)
    if problems:
        raise ValidationError("baseline", problems)


# Variables that name a host or a group of the inventory, not a DNS name: judged against the inventory
# of the run (``context["inventory_groups"]``: group -> hosts, as Ansible's ``groups``), so a name in no
# inventory is refused before any change instead of showing up later as an ssh error.
# "govbaseline": variables of no role (the checks' vantage point), judged once per host by validate_roles.
INVENTORY_HOSTS: dict[str, tuple[str, ...]] = {"vulnscan": ("vulnscan_scanner_host",),
                                               "govbaseline": ("govbaseline_probe_host",)}
INVENTORY_GROUPS: dict[str, tuple[str, ...]] = {"vulnscan": ("vulnscan_fleet_group",),
                                                "backup_server": ("backup_server_clients_group",)}
# The role a named host must get, for the name to do anything (the scanner runs the port scan).
INVENTORY_HOST_ROLE = {"vulnscan_scanner_host": "vulnscan"}


def _listed(names: Iterable[str], limit: int = 10) -> str:
    names = sorted(names)
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "") or "none"


def inventory_names(role: str, values: Mapping[str, Any], context: Mapping[str, Any]) -> list[str]:
    """Problems of the role's variables that name an inventory host or group; none without an inventory."""
    groups: Mapping[str, list[str]] | None = context.get("inventory_groups")
    if groups is None:
        return []
    hosts = {h for members in groups.values() for h in members}
    problems = []
    named = {name: values.get(name) for name in INVENTORY_HOSTS.get(role, ())}
    for name, value in named.items():
        if not value:
            continue
        if value not in hosts:
            problems.append(f"{name} is {value!r}, which is not a host of the inventory (it has {_listed(hosts)}): "
                            "name the host exactly as the inventory does")
        elif (needed := INVENTORY_HOST_ROLE.get(name)) and \
                needed not in roles_for(g for g, members in groups.items() if value in members):
            problems.append(f"{name} is {value!r}, but that host is in no group that gets role {needed} "
                            f"(playbooks/site.yml): nothing would run there. Name a host that gets role {needed}")
    for name in INVENTORY_GROUPS.get(role, ()):
        value = values.get(name)
        if value and value not in groups:
            problems.append(f"{name} is {value!r}, which is not a group of the inventory (it has "
                            f"{_listed(g for g in groups if g not in ('all', 'ungrouped'))}): name one of its groups")
    return problems


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


def check_lockout(role: str, values: Mapping[str, Any], context: Mapping[str, Any]) -> None:
    """Refuse a run that would cut off the session it comes from; ``context`` is what the host told.

    firewall: ``controller_address`` (the SSH client address the host sees) and ``controller_port``
    (the port of sshd the session reached: SSH_CONNECTION's fourth field), ``listening_tcp_ports``
    (the host's listening TCP ports, ``ss -Hltn``; empty where ss is missing);
    access: ``connecting_user`` and ``connecting_groups`` (the account the controller logs in as);
    every role: ``inventory_groups`` (``inventory_names``).
    """
    if problems := inventory_names(role, values, context):
        raise ValidationError(role, problems)
    if role == "firewall":
        port_problems = _firewall_port_lockout(values, context.get("controller_port")) or \
            _firewall_port_unserved(values, context.get("listening_tcp_ports"))
        try:
            _firewall_lockout(values, context.get("controller_address"))
        except ValidationError as exc:  # both lockouts named in one run
            raise ValidationError("firewall", exc.problems + port_problems) from None
        if port_problems:
            raise ValidationError("firewall", port_problems)
    elif role == "access":
        _access_lockout(values, context.get("connecting_user"), list(context.get("connecting_groups") or []))


def _firewall_lockout(values: Mapping[str, Any], controller_address: str | None) -> None:
    if not controller_address:
        return
    try:
        address = ipaddress.ip_address(controller_address.split("%")[0])
    except ValueError:
        return
    if address.is_loopback:
        return
    networks = [ipaddress.ip_network(c) for c in values["firewall_management_cidrs"]]
    if not any(address in net for net in networks if net.version == address.version):
        raise ValidationError("firewall", [
            f"firewall_management_cidrs ({', '.join(values['firewall_management_cidrs'])}) does not include "
            f"{address}, the address this controller connects from: the ruleset would cut this session off. "
            f"Add {address} (or its network) to firewall_management_cidrs"])


def _firewall_port_lockout(values: Mapping[str, Any], controller_port: Any) -> list[str]:
    """The ruleset accepts SSH on firewall_ssh_port only; the baseline does not move sshd (the access
    role leaves its Port alone), so a session on another port would be cut off at the reload."""
    try:
        port = int(str(controller_port).strip())
    except ValueError:
        return []
    if port == values["firewall_ssh_port"]:
        return []
    return [f"firewall_ssh_port is {values['firewall_ssh_port']}, but this controller's SSH session reaches sshd on "
            f"port {port}: the ruleset would accept SSH on {values['firewall_ssh_port']} only and cut this session "
            f"off (the baseline does not move sshd). Set firewall_ssh_port: {port}, the port sshd listens on; to "
            f"move SSH, make sshd listen on the new port first, connect on it (ansible_port), then set "
            f"firewall_ssh_port to it"]


# The host's listening TCP ports, one line separated by spaces (empty where ss is missing): the same
# shell in site.yml's first task, the firewall's preflight and pyinfra's CONNECTION (a unit test holds them to it).
LISTENING_TCP_PORTS = ("{ ss -Hltn 2>/dev/null || true; } | awk '{n=split($4, a, /:/); print a[n]}' | sort -un "
                       "| tr '\\n' ' '")


def _firewall_port_unserved(values: Mapping[str, Any], listening: Any) -> list[str]:
    """Without an SSH session to compare with (pull mode, a local run), nothing may at least listen
    on firewall_ssh_port: the ruleset would admit SSH on a port where no sshd answers, and every
    administrator would be shut out, with no session left to notice."""
    ports = {int(p) for p in str(listening or "").split() if p.isdigit()}
    if not ports or values["firewall_ssh_port"] in ports:
        return []
    return [f"firewall_ssh_port is {values['firewall_ssh_port']}, but nothing on the host listens there (listening "
            f"TCP ports: {', '.join(map(str, sorted(ports)))}): the ruleset would admit SSH where no sshd answers and "
            "shut every administrator out. Set firewall_ssh_port to the port sshd listens on (the baseline does not "
            "move sshd)"]


def _access_lockout(values: Mapping[str, Any], user: str | None, groups: list[str]) -> None:
    if not user:
        return
    group = values["access_admin_group"]
    problems = []
    if user in values["access_vendor_accounts"]:
        problems.append(f"access_vendor_accounts lists {user}, the account this controller logs in as")
    if user == "root":
        if values["access_permit_root_login"] == "no":
            problems.append("this controller logs in as root but access_permit_root_login is 'no': the run would "
                            "cut it off. Connect as an administrator from access_admin_users (with become), or "
                            "set access_permit_root_login: prohibit-password")
    elif user not in {u["name"] for u in values["access_admin_users"]} and group not in groups:
        problems.append(f"this controller logs in as {user}, who is neither in access_admin_users nor in the "
                        f"group {group}: AllowGroups would cut it off. Add {user} to access_admin_users")
    if problems:
        raise ValidationError("access", problems)
