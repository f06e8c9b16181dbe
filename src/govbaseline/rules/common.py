"""Rule types that several roles' rules are made of: ranges, lists, CIDRs, names, paths, calendars.

A rule takes a variable's name and value and returns its problems, each a sentence naming the
variable and what is wrong (an empty list when the value is good). A role's own rules are in
``rules/<role>.py``; what runs them is ``govbaseline.validation``.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

# A rule judges one variable: its name and value in, the problems out (none when good).
Rule = Callable[[str, Any], list[str]]
# A rule across variables judges a role's validated values together.
CrossRule = Callable[[Mapping[str, Any]], list[str]]


def int_range(low: int, high: int) -> Rule:
    def rule(name: str, value: Any) -> list[str]:
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{name} must be a whole number, not {value!r}"]
        if not low <= value <= high:
            return [f"{name} must be between {low} and {high}, not {value}"]
        return []

    return rule


def each(rule: Rule) -> Rule:
    """Apply ``rule`` to every item of a list, naming each as ``name[i]``."""

    def check(name: str, value: Any) -> list[str]:
        return [p for i, item in enumerate(value) for p in rule(f"{name}[{i}]", item)]

    return check


def optional(rule: Rule) -> Rule:
    """An empty string means "not set"; anything else must pass ``rule``."""

    def check(name: str, value: Any) -> list[str]:
        return [] if value == "" else rule(name, value)

    return check


def matching(pattern: str, what: str) -> Rule:
    """A string that matches ``pattern`` as a whole; refused as "must be <what>"."""

    def rule(name: str, value: Any) -> list[str]:
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            return [f"{name} must be {what}, not {value!r}"]
        return []

    return rule


def port_list(name: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        return [f"{name} must be a list of ports, not {value!r}"]
    return each(int_range(1, 65535))(name, value)


def cidr(name: str, value: Any) -> list[str]:
    if not isinstance(value, str):
        return [f"{name} must be a CIDR string such as 192.0.2.0/24, not {value!r}"]
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        return [f"{name} is not a valid network: {value!r} ({exc})"]
    return []


def cidr_list(non_empty: bool) -> Rule:
    def rule(name: str, value: Any) -> list[str]:
        if not isinstance(value, list):
            return [f"{name} must be a list of CIDRs, not {value!r}"]
        if non_empty and not value:
            return [f"{name} must list at least one network: an empty list would shut every administrator out"]
        return each(cidr)(name, value)

    return rule


EMAIL = re.compile(r"^[^@\s<>,;]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$|^[^@\s<>,;]+@[A-Za-z0-9-]+$")
LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){LABEL}(\.{LABEL})*$")


def host_name_or_ip(name: str, value: Any) -> list[str]:
    if not isinstance(value, str) or not value:
        return [f"{name} must name a host (DNS name or IP address); it is empty"]
    try:
        ipaddress.ip_address(value)
        return []
    except ValueError:
        pass
    if not HOSTNAME.match(value):
        return [f"{name} is not a valid host name or IP address: {value!r}"]
    return []


def email(name: str, value: Any) -> list[str]:
    if not isinstance(value, str) or not EMAIL.match(value):
        return [f"{name} must be a mail address such as security@example.gov, not {value!r}"]
    return []


def url(name: str, value: Any) -> list[str]:
    parsed = urllib.parse.urlparse(value) if isinstance(value, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
        return [f"{name} must be an http:// or https:// URL, not {value!r}"]
    return []


def printable(low: int, high: int) -> Rule:
    def rule(name: str, value: Any) -> list[str]:
        if not isinstance(value, str) or not low <= len(value) <= high or not value.isprintable():
            return [f"{name} must be {low}-{high} printable characters, not {value!r}"]
        return []

    return rule


def requires(name: str, needed: str, what: str) -> CrossRule:
    """A cross-variable rule: when ``name`` is set, ``needed`` must be set too."""

    def rule(values: Mapping[str, Any]) -> list[str]:
        if values.get(name) and not values.get(needed):
            return [f"{needed} is missing: {name} is set, so {what}"]
        return []

    return rule


USERNAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


def username(name: str, value: Any) -> list[str]:
    if not isinstance(value, str) or not USERNAME.match(value):
        return [f"{name} must be an account name (lower case letters, digits, _ and -, at most 32), not {value!r}"]
    return []


def absolute_path(name: str, value: Any) -> list[str]:
    if not isinstance(value, str) or not value.startswith("/") or "\n" in value:
        return [f"{name} must be an absolute path, not {value!r}"]
    return []


PROTECTED_DIRS = {"/", "/bin", "/boot", "/etc", "/home", "/lib", "/opt", "/root", "/sbin", "/srv", "/usr", "/var",
                  "/var/lib", "/var/log"}


def system_folder(path: str) -> bool:
    return path.rstrip("/") in PROTECTED_DIRS | {""}


absolute_paths = each(absolute_path)


def pem_certificate(name: str, value: Any) -> list[str]:
    if not isinstance(value, str) or "-----BEGIN CERTIFICATE-----" not in value \
            or "-----END CERTIFICATE-----" not in value:
        return [f"{name} is not a PEM certificate (-----BEGIN CERTIFICATE----- ...)"]
    return []


def non_empty(rule: Rule) -> Rule:
    def check(name: str, value: Any) -> list[str]:
        return [f"{name} must not be empty"] if not value else rule(name, value)

    return check


def ip_address(name: str, value: Any) -> list[str]:
    try:
        ipaddress.ip_address(value)
    except (TypeError, ValueError):
        return [f"{name} must be an IP address, not {value!r}"]
    return []


def calendar(name: str, value: Any) -> list[str]:
    """A systemd OnCalendar expression: a pre-check by the controller's systemd-analyze where it has one.
    The judgement that counts is the host's (``govbaseline.validation.calendar_command``), made by both
    engines before any change, so a controller without systemd skips nothing."""
    if not isinstance(value, str) or not value.strip() or not value.isprintable():
        return [f"{name} must be a systemd calendar expression such as daily or 'Mon *-*-* 02:00', not {value!r}"]
    refusal = _controller_calendar_refusal(value)
    return [f"{name} is not a systemd calendar expression: {value!r} ({refusal})"] if refusal is not None else []


@functools.cache
def _controller_calendar_refusal(value: str) -> str | None:
    """systemd-analyze's refusal of a calendar on the controller (None if accepted or no systemd):
    asked once per expression, as every host of a fleet usually shares its schedules."""
    analyze = shutil.which("systemd-analyze")
    if analyze:
        out = subprocess.run([analyze, "calendar", value], capture_output=True, text=True, check=False)
        if out.returncode != 0:
            return out.stderr.strip()
    return None


def inside(path: str, folder: str) -> bool:
    """Is ``path`` the folder ``folder`` or inside it (whatever trailing slashes either has)?"""
    path, folder = path.rstrip("/") or "/", folder.rstrip("/") or "/"
    return path == folder or path.startswith(folder.rstrip("/") + "/")


# getty's escapes that print the system's name, release, kernel and machine (agetty(8)), and the names
# that give the system away. Source: CIS Debian Linux 12 Benchmark v1.1.0 1.7.1-1.7.3.
BANNER_ESCAPES = re.compile(r"\\[mrsvS]")
BANNER_NAMES = re.compile(r"\b(debian|ubuntu|gnu/linux|linux)\b", re.IGNORECASE)


def login_banner(name: str, value: Any) -> list[str]:
    """A login banner (SYS-07's /etc/issue and /etc/motd, ACC-01's SSH banner): some text, without getty's
    escapes or the system's name (CIS 1.7)."""
    if not isinstance(value, str) or not value.strip():
        return [f"{name} must be the text shown at login (e.g. \"Authorised use only.\"), not {value!r}"]
    problems = [f"{name} uses getty's escape {m.group(0)!r}, which prints the system's name or version: take it out"
                for m in BANNER_ESCAPES.finditer(value)]
    problems += [f"{name} names the operating system ({m.group(0)!r}): a banner must not tell who reads it what "
                 "to attack; take it out" for m in BANNER_NAMES.finditer(value)]
    return problems
