"""What every pyinfra deploy does the same way: validated settings, internal vars, files from text."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from functools import cache
from io import StringIO
from pathlib import Path
from typing import Any

import yaml
from pyinfra import logger
from pyinfra.api.command import FileUploadCommand
from pyinfra.api.operation import operation
from pyinfra.context import host
from pyinfra.facts.files import File, Sha256File
from pyinfra.facts.server import Command, LinuxDistribution
from pyinfra.operations import files, server, systemd

from govbaseline import hostfacts, templating, validation
from govbaseline.deploys import timers
from govbaseline.paths import ROLES_DIR
from govbaseline.rules.firewall import LISTENING_TCP_PORTS

# What site.yml's first task reads too: where this controller connects from, on which port of
# sshd (SSH_CONNECTION is "client_ip client_port server_ip server_port"), and as whom.
CONNECTION = ('echo "address=${SSH_CONNECTION%% *}"; echo "port=${SSH_CONNECTION##* }"; echo "user=$(id -un)"; '
              'echo "groups=$(id -Gn)"; echo "listening=$(' + LISTENING_TCP_PORTS + ')"')


def connection() -> dict[str, Any]:
    """The lockout context of ``validation.check_lockout`` for the current host (one fact per host),
    with the inventory's groups (variables naming a host or group are judged against them)."""
    # Run without sudo even where the inventory becomes root (ansible_become), as Ansible's task is
    # (become: false): sudo clears SSH_CONNECTION and would name root as the connecting account.
    told = host.get_fact(Command, CONNECTION, _sudo=False) or ""
    seen = dict(line.split("=", 1) for line in told.splitlines() if "=" in line)
    return {**inventory_context(host.data.get("govbaseline_fleet_file"),
                                host.data.govbaseline_hostvars.get("govbaseline_probe_host")),
            "controller_address": seen.get("address") or None, "controller_port": seen.get("port") or None,
            "listening_tcp_ports": seen.get("listening", ""), "connecting_user": seen.get("user") or None,
            "connecting_groups": seen.get("groups", "").split()}


def inventory_context(fleet_file: str | None, probe_host: str | None) -> dict[str, Any]:
    """The whole inventory's groups (the file ``govbaseline apply`` writes) and the host's vantage point."""
    if not fleet_file:
        return {}
    groups = json.loads(Path(fleet_file).read_text())["groups"]
    return {"inventory_groups": groups, "probe_host": probe_host or ""}


def observed() -> dict[str, Any]:
    """What the roles derive from the host (``hostfacts.OBSERVE``, read-only, one fact per host)."""
    return hostfacts.parse(host.get_fact(Command, hostfacts.OBSERVE) or "")


def settings(role: str) -> dict[str, Any] | None:
    """The host's validated variables for ``role`` with the role's internal ones, or None when the
    role is switched off; raises ValidationError (bad value, unsupported host, lockout, a host the
    role cannot work on) before any change."""
    distro = host.get_fact(LinuxDistribution) or {}
    platform = (str(distro.get("name") or "unknown"), str(distro.get("major") or "?"))
    values = validation.applied_vars(role, host.data.govbaseline_hostvars, platform[1])
    if not values[f"{role}_enabled"]:
        host.noop(f"{role}_enabled is false")
        return None
    validation.check_platform(role, *platform)
    validation.check_platform(role, *platform, values)
    validation.check_lockout(role, values, connection())
    # Calendars are judged by the host's systemd, where the timers will run (library-free: a fact).
    problems = [problem for name, value in validation.calendars(role, values).items()
                if (problem := validation.calendar_problem(name, value, host.get_fact(
                    Command, validation.calendar_command(value)) or ""))]
    if problems:
        raise validation.ValidationError(role, problems)
    return {**values, **hostfacts.decide({role: values}, observed())}


@cache
def part_controls(role: str) -> dict[str, frozenset[str]]:
    """The controls each task file of a role carries, read from the role's tasks/main.yml tags:
    a deploy's part of the same name (``scan`` for ``scan.yml``) carries the same controls, so a
    waiver skips the same work in both engines."""
    parts: dict[str, frozenset[str]] = {}
    for task in yaml.safe_load((ROLES_DIR / role / "tasks" / "main.yml").read_text()) or []:
        include = task.get("ansible.builtin.include_tasks")
        name = task.get("ansible.builtin.import_tasks") or (include.get("file") if isinstance(include, dict) else None)
        if name:
            parts[name.removesuffix(".yml")] = frozenset(
                tag.upper() for tag in task.get("tags", []) if re.fullmatch(r"[a-z]+-\d+", tag))
    return parts


def enforced(role: str, part: str) -> bool:
    """False when a control of this part of the role is waived on the host (``govbaseline apply``
    passes the host's waived controls as ``govbaseline_waived``): the part is skipped, and said so."""
    hit = sorted(part_controls(role)[part] & set(host.data.get("govbaseline_waived") or ()))
    if hit:
        logger.warning(f"{host.name}: {role} {part} skipped: {', '.join(hit)} waived")
        return False
    return True


def render(role: str, template: str, values: dict[str, Any]) -> str:
    return templating.render(role, template, values)


def put_text(name: str, content: str, dest: str, mode: str = "0644", user: str = "root",
             group: str = "root") -> Any:
    """Install a file from text (a rendered template or a secret); unchanged content is a no-op."""
    return files.put(name=name, src=StringIO(content), dest=dest, mode=mode, user=user, group=group)


def put_secret(name: str, content: str, dest: str) -> Any:
    """Like put_text, mode 0600, and pyinfra prints nothing of the content."""
    return files.put(name=name, src=StringIO(content), dest=dest, mode="0600", user="root", group="root")


def put_file(name: str, role: str, source: str, dest: str, mode: str = "0644") -> Any:
    """Install one of the role's ``files/`` as is."""
    return files.put(name=name, src=str(ROLES_DIR / role / "files" / source), dest=dest, mode=mode,
                     user="root", group="root")


@operation()
def checked_file(dest: str, content: str, check: str, mode: str = "0644") -> Any:
    """
    Install a file from text only after ``check`` (a command with ``{}`` for the candidate path)
    accepts it, like Ansible's ``validate``; unchanged content and mode is a no-op.

    + dest: where the file goes (owned by root)
    + content: the whole file
    + check: e.g. ``/usr/sbin/sshd -t -f {}`` or ``/usr/sbin/visudo -cf {}``
    + mode: octal mode string
    """
    digest = host.get_fact(Sha256File, path=dest)
    info = host.get_fact(File, path=dest)
    wanted = hashlib.sha256(content.encode()).hexdigest()
    if digest == wanted and info and info["user"] == "root" and info["mode"] == int(mode[-3:]):
        host.noop(f"{dest} is as wanted")
        return
    candidate = f"{dest}.govbaseline-candidate"
    yield FileUploadCommand(StringIO(content), candidate)
    q_cand, q_dest = shlex.quote(candidate), shlex.quote(dest)
    yield (f"{check.format(q_cand)} || {{ rm -f {q_cand}; exit 1; }}; "
           f"chown root:root {q_cand} && chmod {mode} {q_cand} && mv {q_cand} {q_dest}")


def sshd_dropin(control: str, name: str, dest: str, content: str, mode: str, service: str = "ssh.service") -> None:
    """An sshd_config.d drop-in, accepted only if ``sshd -t`` accepts it alone and then the whole
    configuration with it (a broken combination fails the run before the reload)."""
    dropin = checked_file(name=name, dest=dest, content=content, check="/usr/sbin/sshd -t -f {}", mode=mode)
    if dropin.will_change:
        server.shell(name=f"{control} | Check the whole SSH configuration before it is reloaded",
                     commands=["/usr/sbin/sshd -t"])
        systemd.service(name=f"{control} | Reload ssh", service=service, reloaded=True)


def scheduled_job(control: str, role: str, v: dict[str, Any], unit: str, template: str, what: str,
                  first_run_marker: str | None = None) -> None:
    """Install ``<unit>.service`` and ``<unit>.timer`` from the role's ``<template>.service.j2`` and
    ``<template>.timer.j2`` and start the timer; with ``first_run_marker`` (a file the job writes),
    also start the first run in the background while it does not exist, so verify has a result to read."""
    changed = [put_text(f"{control} | Install the scheduled {what}", render(role, f"{template}.{kind}.j2", v),
                        f"/etc/systemd/system/{unit}.{kind}") for kind in ("service", "timer")]
    restore_schedule(control, f"{unit}.timer", what)
    systemd.service(name=f"{control} | Start the {what} timer", service=f"{unit}.timer", running=True, enabled=True,
                    daemon_reload=any(op.will_change for op in changed))
    if first_run_marker is None:
        return
    if host.get_fact(File, path=first_run_marker):
        host.noop(f"{control} | the {what} has run before: its timer runs the next one")
        return
    # As plugins/modules/first_run.py: not again while the first run is still going on a busy host.
    started = host.get_fact(Command, f"systemctl show -p InactiveExitTimestampMonotonic --value {unit}.service")
    if (started or "0").strip() not in ("", "0"):
        host.noop(f"{control} | the first {what} has started since boot")
        return
    server.shell(name=f"{control} | Start the first {what} in the background",
                 commands=[f"systemctl start --no-block {unit}.service"])


def restore_schedule(control: str, timer: str, what: str, vendor: bool = False) -> None:
    """The schedule the inventory declares, not one a foreign drop-in or a mask made (module timer_schedule);
    ``vendor``: a package ships the timer, so a copy of its unit file in /etc or /run is foreign too."""
    timers.schedule(name=f"{control} | Restore the declared schedule of the {what} (foreign drop-ins, mask)",
                    timer=timer, vendor=vendor)


def mask_units(name: str, units: list[str]) -> None:
    """Stop, disable and mask ``units`` (vendor units the baseline replaces) unless each is masked
    already; a unit not installed yet is masked too (systemd allows it), the twin of the roles'
    ``systemd_service: masked`` tasks."""
    listed = " ".join(units)
    states = (host.get_fact(Command, f"for u in {listed}; do systemctl is-enabled $u 2>/dev/null || true; done")
              or "").split()
    if states.count("masked") < len(units):
        server.shell(name=name, commands=[f"systemctl disable --now {listed} 2>/dev/null; systemctl mask {listed}"])


def service_dropins(control: str, dropins: dict[str, str], filename: str) -> bool:
    """Install one drop-in (``/etc/systemd/system/<service>.service.d/<filename>``) per service from
    ``{service: content}``; reload systemd when one changed. Returns whether one changed."""
    changed = []
    for service, content in dropins.items():
        folder = f"/etc/systemd/system/{service}.service.d"
        files.directory(name=f"{control} | Create the drop-in folder of {service}.service", path=folder,
                        user="root", group="root", mode="0755")
        changed.append(put_text(f"{control} | Adjust {service}.service", content, f"{folder}/{filename}"))
    if any(op.will_change for op in changed):
        systemd.daemon_reload(name=f"{control} | Load the drop-ins")
        return True
    return False
