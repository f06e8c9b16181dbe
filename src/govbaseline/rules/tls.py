"""Role tls's rules: what its ``meta/argument_specs.yml`` cannot say.

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
    each,
    email,
    host_name_or_ip,
    int_range,
    ip_address,
    non_empty,
    optional,
    pem_certificate,
    system_folder,
    url,
)


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


# One rule per variable, for what the argument spec cannot say; validation runs them in this order.
RULES: dict[str, Rule] = {
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
}
# Rules that look at several of the role's variables together.
CROSS_RULES: list[CrossRule] = [tls_certificate_files, tls_acme, tls_hsts_preload]
