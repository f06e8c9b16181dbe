"""pyinfra deploy of the operating system's hardening (SYS-01..SYS-12), twin of ``roles/system``."""

from __future__ import annotations

import re
import shlex
from typing import Any

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.facts.server import Command
from pyinfra.operations import apt, files, server, systemd

from govbaseline import hostfacts
from govbaseline.deploys import common

ROLE = "system"


@deploy("System")
def apply() -> None:
    v = common.settings(ROLE)
    if v is None:
        return
    apt.packages(name="SYS-01, SYS-02, SYS-04, SYS-09 | Packages the role needs", packages=v["system_packages"],
                 update=False)
    # Each area: its switch, then a waiver of its control (common.enforced), as the role's tasks/main.yml.
    if switched(v, "system_network_enabled") and common.enforced(ROLE, "network"):
        network(v)
    if switched(v, "system_kernel_enabled") and common.enforced(ROLE, "kernel"):
        kernel(v)
    if switched(v, "system_coredumps_enabled") and common.enforced(ROLE, "coredumps"):
        coredumps(v)
    if switched(v, "system_scheduler_enabled") and common.enforced(ROLE, "scheduler"):
        scheduler(v)
    if switched(v, "system_permissions_enabled") and common.enforced(ROLE, "permissions"):
        permissions(v)
    if switched(v, "system_time_enabled") and common.enforced(ROLE, "time"):
        time(v)
    if switched(v, "system_logins_enabled") and common.enforced(ROLE, "logins"):
        logins(v)
    if switched(v, "system_package_integrity_enabled") and common.enforced(ROLE, "package_integrity"):
        package_integrity(v)
    if switched(v, "system_modules_enabled") and common.enforced(ROLE, "modules"):
        modules(v)
    if switched(v, "system_sandbox_enabled") and common.enforced(ROLE, "sandbox"):
        sandbox(v)
    if switched(v, "system_accounting_enabled") and common.enforced(ROLE, "accounting"):
        accounting(v)
    if switched(v, "system_mounts_enabled") and common.enforced(ROLE, "mounts"):
        mounts(v)


def switched(v: dict[str, Any], toggle: str) -> bool:
    if not v[toggle]:
        host.noop(f"{toggle} is false")
    return bool(v[toggle])


def live_differs(parameters: dict[str, Any]) -> bool:
    """Whether the kernel's live values differ from ``parameters`` (as the role compares them: the
    lines ``sysctl NAME...`` prints, in order; a parameter the kernel lacks reads as different)."""
    told = host.get_fact(Command, "sysctl " + " ".join(shlex.quote(k) for k in parameters) + " 2>/dev/null; true")
    return (told or "").splitlines() != [f"{key} = {value}" for key, value in parameters.items()]


def sysctl(control: str, what: str, v: dict[str, Any], group: str) -> None:
    path = v[f"__system_sysctl_{group}_file"]
    persisted = common.put_text(f"{control} | Persist the {what} under /etc/sysctl.d",
                                common.render(ROLE, f"sysctl-{group}.conf.j2", v), path)
    if group == "kernel" and v["__system_container"]:
        host.noop(f"a {v['__system_container']} container shares the machine's kernel, whose kernel.* and fs.* "
                  f"parameters are the machine's to set: they are persisted in {path} and apply on a real host; "
                  "they are not applied here")
        return
    if persisted.will_change or live_differs(v[f"system_sysctl_{group}"]):
        server.shell(name=f"{control} | Apply the {what} now", commands=[f"sysctl -p {shlex.quote(path)}"])


def network(v: dict[str, Any]) -> None:
    # The kernel keeps net.* per network namespace: a container host has its own, set here too.
    sysctl("SYS-01", "kernel network parameters", v, "network")


def kernel(v: dict[str, Any]) -> None:
    sysctl("SYS-02", "kernel process-hardening parameters", v, "kernel")


def coredumps(v: dict[str, Any]) -> None:
    name = "SYS-03 | No core dumps for sessions and services (limits, systemd's default, systemd-coredump)"
    changed = [common.put_text(name, common.render(ROLE, "limits-core.conf.j2", v), v["__system_limits_file"])]
    for template, dropin in (("manager-core.conf.j2", v["__system_manager_dropin"]),
                             ("coredump.conf.j2", v["__system_coredump_dropin"])):
        changed.append(files.directory(name=f"SYS-03 | Create {dropin.rsplit('/', 1)[0]}",
                                       path=dropin.rsplit("/", 1)[0], user="root", group="root", mode="0755"))
        changed.append(common.put_text(name, common.render(ROLE, template, v), dropin))
    # systemd reads system.conf.d again on a reload: services started from now on get the limit.
    if any(op.will_change for op in changed):
        systemd.daemon_reload(name="SYS-03 | Give the services systemd starts from now on the new default limit")


def fix_modes(name: str, found: str, wanted: list[dict[str, Any]]) -> None:
    """Owner, group and mode of each existing path in ``wanted`` that ``stat -c '%n %a %U %G'``
    (``found``) shows otherwise, as the role's loop decides; a path that does not exist is left alone."""
    lines = found.splitlines()
    present = {line.split(" ", 1)[0] for line in lines}
    for item in wanted:
        if item["path"] in present and f"{item['path']} {item['mode']} {item['owner']} {item['group']}" not in lines:
            operation = files.directory if item.get("directory") else files.file
            operation(name=f"{name}: {item['path']}", path=item["path"], present=True,
                      mode=item["mode"], user=item["owner"], group=item["group"])


def scheduler(v: dict[str, Any]) -> None:
    # cron.allow is read by crontab (set-group-id crontab) and at.allow by at (set-user-id daemon):
    # their groups let each read its list, nobody else can.
    name = "SYS-04 | Limit cron and at to the listed accounts; remove the deny files"
    allow = common.render(ROLE, "allow.j2", v)
    common.put_text(name, allow, v["__system_cron_allow"], mode="0640", group="crontab")
    common.put_text(name, allow, v["__system_at_allow"], mode="0640", group="daemon")
    for deny in v["__system_deny_files"]:
        files.file(name=name, path=deny, present=False)
    paths = " ".join(shlex.quote(item["path"]) for item in v["__system_scheduler_modes"])
    found = host.get_fact(Command, f"stat -c '%n %a %U %G' -- {paths} 2>/dev/null; true") or ""
    fix_modes("SYS-04 | Only root may read and change the system crontab and the cron folders", found,
              v["__system_scheduler_modes"])


def permissions(v: dict[str, Any]) -> None:
    paths = " ".join(shlex.quote(item["path"]) for item in v["__system_account_modes"])
    found = host.get_fact(Command, f"stat -c '%n %a %U %G' -- {paths} {v['__system_host_key_glob']} 2>/dev/null; "
                                   "true") or ""
    fix_modes("SYS-05 | Account files with the owners and modes CIS states", found, v["__system_account_modes"])
    keys = [{"path": line.split(" ", 1)[0], **v["__system_host_key_mode"]} for line in found.splitlines()
            if re.match(r"/etc/ssh/ssh_host_[a-z0-9]+_key ", line)]
    fix_modes("SYS-05 | SSH host private keys readable by root alone", found, keys)


def time(v: dict[str, Any]) -> None:
    # chrony.conf is the role's whole file: Debian's default pool would otherwise stay beside the
    # inventory's servers. The CA file and the container drop-in exist only where they are needed.
    # chrony replaces the host's own time daemon: installed only where SYS-06 applies.
    apt.packages(name="SYS-06 | Install chrony (it replaces the host's own time daemon, so only where SYS-06 applies)",
                 packages=v["system_time_packages"], update=False)
    name = "SYS-06 | chrony follows the listed time servers (NTS where asked), in a container without setting the clock"
    changed = [common.put_text(name, common.render(ROLE, "chrony.conf.j2", v), v["__system_chrony_conf"])]
    ca, dropin = v["__system_chrony_nts_ca"], v["__system_chrony_container_dropin"]
    if v["system_time_nts_ca_cert"]:
        changed.append(common.put_text(name, v["system_time_nts_ca_cert"], ca))
    else:
        changed.append(files.file(name=name, path=ca, present=False))
    changed.append(files.directory(name=name, path=dropin.rsplit("/", 1)[0], user="root", group="root", mode="0755"))
    if v["__system_container"]:
        changed.append(common.put_text(name, common.render(ROLE, "chrony-container.conf.j2", v), dropin))
    else:
        changed.append(files.file(name=name, path=dropin, present=False))
    again = any(op.will_change for op in changed)
    service = systemd.service(name="SYS-06 | Run chrony with the new configuration", service="chrony", running=True,
                              enabled=True, restarted=again, daemon_reload=again)
    # A first synchronisation takes a few seconds (iburst): wait for it, so a verify right after the
    # converge sees the clock synchronised. A server that does not answer is verify's to report.
    if service.will_change:
        server.shell(name="SYS-06 | Wait up to 30 seconds for the first synchronisation after chrony (re)started",
                     commands=["chronyc waitsync 30 0 0 1 || true"])


def logins(v: dict[str, Any]) -> None:
    # What a login shows names no operating system or version (CIS 1.7), new passwords are hashed
    # with yescrypt (CIS 5.4.1.4, 5.3.3.4.3), system accounts have no login shell (CIS 5.4.2.7).
    for path in (v["__system_issue"], v["__system_motd"]):
        common.put_text("SYS-07 | Write the local login banner and the message of the day", v["system_login_banner"],
                        path)
    scripts = " ".join(shlex.quote(p) for p in v["system_motd_scripts_off"])
    running = host.get_fact(Command, f"find {scripts} -maxdepth 0 -type f -perm /111 -printf '%m %p\\n' "
                                     "2>/dev/null; true") or ""
    for line in running.splitlines():
        mode, _, path = line.partition(" ")
        files.file(name="SYS-07 | Turn off the message-of-the-day scripts that print the system's version",
                   path=path, present=True, mode=f"{int(mode, 8) & ~0o111:o}")
    # grep/sed basic regexes (no ?): the same lines the role's lineinfile matches.
    for key, value in (("ENCRYPT_METHOD", "YESCRYPT"), ("YESCRYPT_COST_FACTOR", v["system_password_hash_cost"])):
        files.line(name="SYS-07 | Hash new passwords with yescrypt at the set cost (login.defs)",
                   path=v["__system_login_defs"], line=rf"^\s*[#]*\s*{key}\s", replace=f"{key}\t{value}")
    weak = "|".join(v["__system_weak_hashes"])
    pam = shlex.quote(v["__system_common_password"])
    b = "[[:blank:]]"  # space or tab, in grep's and sed's extended regexes alike
    older = f"^(password{b}.*pam_unix\\.so({b}.*)?){b}({weak})({b}|$)"  # as the role's replace
    if host.get_fact(Command, f"grep -Ec '{older}' {pam}; true").strip() not in ("", "0"):
        server.shell(name="SYS-07 | pam_unix hashes with yescrypt, not an older algorithm",
                     commands=[f"sed -Ei 's/{older}/\\1 yescrypt\\4/' {pam}"])
    read = host.get_fact(Command, f"sh -c {shlex.quote(v['__system_accounts_read'])} sh "
                                  f"{shlex.quote(v['__system_login_defs'])}") or ""
    for name in hostfacts.accounts_with_shell(read, [*v["__system_shell_exempt"], *v["system_shell_accounts"]]):
        server.shell(name=f"SYS-07 | Give the system account {name} /usr/sbin/nologin",
                     commands=[f"usermod -s {shlex.quote(v['__system_nologin'])} {shlex.quote(name)}"])


def package_integrity(v: dict[str, Any]) -> None:
    # A source marked trusted=yes was refused before any change (hostfacts.trusted_sources, run by
    # common.settings). Installed files are compared with their packages by verify only: a changed
    # program is evidence, never reinstalled here (that would also change what AIDE approved).
    common.put_text("SYS-08 | apt installs only what it can authenticate (no unauthenticated, insecure, downgraded "
                    "or weak sources)", common.render(ROLE, "apt-signed-packages.conf.j2", v),
                    v["__system_apt_signed_conf"])


def modules(v: dict[str, Any]) -> None:
    # Persisted only: a module loaded before stays until it is unloaded or the host reboots (verify
    # names it); modprobe reads the file at its next call.
    common.put_text("SYS-09 | Block the listed kernel modules from loading (modprobe.d)",
                    common.render(ROLE, "modprobe-blocked.conf.j2", v), v["__system_modprobe_file"])


def put_entries(control: str, entries: list[dict[str, Any]], v: dict[str, Any]) -> list[Any]:
    """The twin of the role's ``govbaseline_files`` task for a list of the role's vars: a folder for
    each ``state: directory`` entry, the rendered ``template`` for the others; returns the file
    operations (for ``will_change``)."""
    written = []
    for entry in entries:
        if entry.get("state") == "directory":
            files.directory(name=f"{control} | Create {entry['dest']}", path=entry["dest"], user="root",
                            group="root", mode=entry["mode"])
        else:
            written.append(common.put_text(f"{control} | Install {entry['dest']}",
                                           common.render(ROLE, entry["template"], v), entry["dest"], entry["mode"]))
    return written


# SYS-10: per host, the running govbaseline services to restart into their sandbox in finish().
STALE: dict[str, list[str]] = {}


def sandbox(v: dict[str, Any]) -> None:
    # The common drop-in and the drop-ins that replace it for pull mode and Lynis (vars/main.yml).
    written = put_entries("SYS-10", v["__system_sandbox_files"], v)
    if any(op.will_change for op in written):
        systemd.daemon_reload(name="SYS-10 | Load the sandbox (systemd reads drop-ins on a reload)")
    # A service keeps the sandbox it started in: those running in an older one (all running ones when
    # the common drop-in changes now) whose unit file is ready for it are restarted in finish(), once
    # every role has written its units; an "old-unit" one is restarted by its role with its new unit.
    written_now = "SANDBOX_WRITTEN=$(date +%s); " if written[0].will_change else ""
    listed = host.get_fact(Command, written_now + v["__system_sandbox_stale"]) or ""
    STALE[host.name] = [line.split()[0] for line in listed.splitlines() if line.endswith(" ready")]


def finish() -> None:
    """What the system role does once every role has written its units (as its Ansible handler):
    try-restart, so a service a role stopped in this run stays stopped."""
    units = STALE.pop(host.name, [])
    if units:
        server.shell(name="SYS-10 | Restart the govbaseline services into their sandbox",
                     commands=["systemctl try-restart " + " ".join(shlex.quote(u) for u in units)])


def accounting(v: dict[str, Any]) -> None:
    # acct.service turns accounting on at boot; `accton off` by hand leaves the unit active, so a
    # probe (the file grows when a process ends) decides whether it is restarted.
    apt.packages(name="SYS-11 | Install process accounting (acct)", packages=v["system_accounting_packages"],
                 update=False)
    probe = host.get_fact(Command, v["__system_accounting_probe"])
    systemd.service(name="SYS-11 | Record every process that ends, now and at boot (acct.service)",
                    service=v["__system_accounting_unit"], running=True, enabled=True,
                    restarted=(probe or "").strip() != "recording")


def mounts(v: dict[str, Any]) -> None:
    # The new /etc/fstab and the mount commands that apply it now come from the host's fstab and mounts
    # as read before any change (hostfacts.mount_options); a container gets neither.
    if not v["__system_container"]:  # mkinitramfs builds in a folder where programs run, not a noexec /var/tmp
        put_entries("SYS-12", v["__system_initramfs_files"], v)
    if v["__system_fstab"] is not None:
        written = common.put_text("SYS-12 | Mount the temporary folders nodev,nosuid,noexec at every boot (/etc/fstab)",
                                  v["__system_fstab"], "/etc/fstab")
        systemd.daemon_reload(name="SYS-12 | Tell systemd about the new /etc/fstab (its mount units are made from it)",
                              _if=written.did_change)
    for argv in v["__system_mounts_live"]:
        server.shell(name="SYS-12 | Apply the options now (mount -o remount, or mount a new bind)",
                     commands=[" ".join(shlex.quote(a) for a in argv)])
