"""Validate role variables before anything on a host changes, the same way for both engines.

Types come from each role's ``meta/argument_specs.yml`` (checked with ansible-core's own
``ArgumentSpecValidator``, so Ansible and pyinfra agree); what a type cannot say (port ranges,
CIDR syntax, non-empty lists, lockout) is in each role's rules, ``rules/<role>.py``, registered in
``ROLES`` below. The Ansible side reaches this module through the ``govbaseline_validate`` action
plugin, the pyinfra side calls it directly.
"""

from __future__ import annotations

import copy
import functools
import shlex
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from govbaseline.paths import PLAYBOOKS_DIR, ROLES_DIR
from govbaseline.rules import (
    access,
    alerts,
    antivirus,
    audit,
    backup,
    backup_server,
    baseline,
    firewall,
    ids,
    integrity,
    patching,
    pull,
    system,
    tls,
    vulnscan,
)
from govbaseline.rules.common import CrossRule, Rule, calendar


class ValidationError(ValueError):
    """One or more variables are wrong; ``problems`` names each variable and what is wrong."""

    def __init__(self, role: str, problems: list[str]):
        self.role = role
        self.problems = problems
        # The whole baseline's problems already name their roles.
        super().__init__(("" if role == "baseline" else f"role {role}: ") + "; ".join(problems))


# Each role's rules, in the module named for its role: rules/firewall.py for roles/firewall/ (beside
# deploys/firewall.py and checks/test_firewall.py). A new rule of a role goes into its module's RULES
# or CROSS_RULES; a new role's module is added to this tuple (a unit test holds it to site.yml's roles).
ROLES: dict[str, ModuleType] = {module.__name__.rpartition(".")[2]: module for module in (
    access, alerts, antivirus, audit, backup, backup_server, firewall, ids, integrity, patching, pull, system, tls,
    vulnscan)}
# One rule per variable, by role.
RULES: dict[str, dict[str, Rule]] = {role: module.RULES for role, module in ROLES.items()}
# Rules that look at several variables of a role together.
CROSS_RULES: dict[str, list[CrossRule]] = {role: module.CROSS_RULES for role, module in ROLES.items()}
# Where a role needs them, its module says what the role cannot do on a host's Debian version
# (platform), what would cut off the controller's session (lockout, see check_lockout) and which
# internal variables follow from its values and the Debian version (derived).
PLATFORM: dict[str, Callable[[Mapping[str, Any], str], list[str]]] = {
    role: module.platform for role, module in ROLES.items() if hasattr(module, "platform")}
LOCKOUT: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], list[str]]] = {
    role: module.lockout for role, module in ROLES.items() if hasattr(module, "lockout")}
DERIVED: dict[str, Callable[[Mapping[str, Any], str], dict[str, Any]]] = {
    role: module.derived for role, module in ROLES.items() if hasattr(module, "derived")}


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


def derived(role: str, values: Mapping[str, Any], major_version: str) -> dict[str, Any]:
    """Internal variables that follow from validated values and the host's Debian version, the
    same for both engines (Ansible gets them as facts from the validation task)."""
    return DERIVED[role](values, major_version) if role in DERIVED else {}


SUPPORTED = {"Debian": ("12", "13")}


def check_platform(role: str, distribution: str, major_version: str,
                   values: Mapping[str, Any] | None = None) -> None:
    """Refuse hosts the baseline was not built and tested for, and (given the role's validated
    ``values``) what the role cannot do on this Debian version."""
    if major_version not in SUPPORTED.get(distribution, ()):
        raise ValidationError(role, [
            f"govbaseline supports Debian 12 and 13; this host runs {distribution} {major_version}"])
    if values is not None and role in PLATFORM and (problems := PLATFORM[role](values, major_version)):
        raise ValidationError(role, problems)


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


def check_baseline(values: Mapping[str, Mapping[str, Any]], off: Iterable[str] = ()) -> None:
    """Rules across roles, for the whole baseline; ``values`` holds the validated variables of each
    role that is switched on (a role that is off is absent: no rule may demand its values), ``off``
    names the roles of the host that are switched off."""
    problems = baseline.cross_role(values, off)
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
    if role in LOCKOUT and (problems := LOCKOUT[role](values, context)):
        raise ValidationError(role, problems)
