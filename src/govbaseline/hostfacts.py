"""What a run finds out about a host before it changes anything, and what the roles derive from it.

Both engines run ``OBSERVE`` on the host in their first step (Ansible: the ``govbaseline_validate``
action of site.yml's first play and of each role's preflight; pyinfra: ``deploys/common.settings``
and ``deploys/baseline.py``), hand the answer to ``decide`` and get the same internal variables, or
the same refusal naming the variable to set, before the first change. The checks call the same
functions (``suricata_interface``), so they judge what the engines chose.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from govbaseline.validation import ValidationError

# apt's sources (one-line and deb822 files), each line as "file:text" (sources.list(5)); read-only.
SOURCES_READ = ("grep -H '' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources "
                "2>/dev/null")

# Read-only, POSIX sh (pyinfra runs it with sh, Ansible over a raw SSH command); one "key=value"
# line each. ``ip -j`` writes one line of JSON; a family the kernel lacks (IPv6 switched off)
# answers nothing, read as no route.
OBSERVE = "; ".join((
    "echo \"route4=$(ip -j -4 route show default 2>/dev/null)\"",
    "echo \"route6=$(ip -j -6 route show default 2>/dev/null)\"",
    "echo \"links=$(ip -j link show 2>/dev/null)\"",
    # systemd runs the host when this folder exists (sd_booted(3)); every control is a systemd unit.
    # A container has no audit system of its own (auditd cannot run there); "none" on a machine.
    "echo \"container=$(systemd-detect-virt --container 2>/dev/null)\"",
    # The kernel's audit switch: 2 when the rules are locked until reboot (auditctl -e 2); empty in a
    # container or where auditd is not installed yet.
    "echo \"audit_enabled=$(auditctl -s 2>/dev/null | sed -n 's/^enabled //p')\"",
    # The rules the kernel holds and those the installed files give (augenrules compiles
    # /etc/audit/rules.d/*.rules), base64 on one line each: compared rule by rule (audit_rules_differ),
    # so a kernel whose rules were deleted (auditctl -D) or still are an older set gets them loaded.
    # "audit_loaded" is only written where auditctl answers (root, a kernel with an audit system).
    "if auditctl -s >/dev/null 2>&1; then echo \"audit_loaded=$(auditctl -l 2>/dev/null | base64 -w0)\"; fi",
    "echo \"audit_installed=$(cat /etc/audit/rules.d/*.rules 2>/dev/null | base64 -w0)\"",
    # The machine's architecture: 32-bit system calls exist (and must be audited) on x86_64.
    "echo \"arch=$(uname -m)\"",
    "if [ -d /run/systemd/system ]; then echo systemd=yes; else echo systemd=no; fi",
    # How many of apt's sources name the Debian security archive (patching installs from there).
    "echo \"security=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list "
    "/etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v '^[[:space:]]*#' | grep -c -- '-security')\"",
    # apt's sources, each line with its file's name, base64 on one line: sources marked trusted (no
    # signature checked) are refused by the system role (SYS-08; trusted_sources).
    f"echo \"sources=$({{ {SOURCES_READ}; }} | base64 -w0)\"",
    # Kernel modules in use (a count of users or modules using them; /proc/modules(5)) and the file
    # system types mounted or listed in /etc/fstab: the system role refuses to block them (SYS-09).
    "echo \"modules_used=$(awk '$3 > 0 || $4 != \"-\" {print $1}' /proc/modules 2>/dev/null | tr '\\n' ' ')\"",
    "echo \"fstypes=$(awk '$1 !~ /^#/ {print $3}' /proc/mounts /etc/fstab 2>/dev/null | sort -u | tr '\\n' ' ')\"",
    # The mounts as the kernel sees them (proc_pid_mountinfo(5)), /etc/fstab, the mount units an
    # administrator wrote (they override fstab's), and which temporary folders exist: SYS-12 adds
    # nodev,nosuid,noexec to the fstab lines of /tmp, /var/tmp and /dev/shm (mount_options).
    "echo \"mountinfo=$(base64 -w0 /proc/self/mountinfo 2>/dev/null)\"",
    "echo \"fstab=$(base64 -w0 /etc/fstab 2>/dev/null)\"",
    "echo \"mount_units=$(cd /etc/systemd/system 2>/dev/null && ls -d -- *.mount *.mount.d 2>/dev/null "
    "| tr '\\n' ' ')\"",
    "echo \"folders=$(for d in /tmp /var/tmp /dev/shm; do [ -d \"$d\" ] && [ ! -L \"$d\" ] "
    "&& printf '%s ' \"$d\"; done)\"",
))


def parse(text: str) -> dict[str, Any]:
    """The answer of ``OBSERVE`` as data: default routes per family, interface names, systemd, the
    number of security sources. Missing or unreadable parts read as none."""
    raw = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def listed(key: str) -> list[dict[str, Any]]:
        try:
            value = json.loads(raw.get(key, "").strip() or "[]")
        except json.JSONDecodeError:
            return []
        return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []

    security = raw.get("security", "").strip()
    return {
        "routes4": listed("route4"),
        "routes6": listed("route6"),
        "interfaces": [link["ifname"] for link in listed("links") if "ifname" in link],
        "systemd": raw.get("systemd", "").strip() == "yes",
        "security_sources": int(security) if security.isdigit() else 0,
        "container": "" if raw.get("container", "").strip() in ("", "none") else raw["container"].strip(),
        "architecture": raw.get("arch", "").strip(),
        "audit_locked": raw.get("audit_enabled", "").strip() == "2",
        # (loaded, installed) rules text; loaded is None where the kernel could not be asked.
        "audit_rules": (_unbase64(raw["audit_loaded"]) if "audit_loaded" in raw else None,
                        _unbase64(raw.get("audit_installed", ""))),
        "sources": _unbase64(raw.get("sources", "")),
        "modules_used": raw.get("modules_used", "").split(),
        "fstypes": raw.get("fstypes", "").split(),
        "mountinfo": _unbase64(raw.get("mountinfo", "")),
        "fstab": _unbase64(raw.get("fstab", "")),
        "mount_units": raw.get("mount_units", "").split(),
        "folders": raw.get("folders", "").split(),
    }


def _unbase64(text: str) -> str:
    try:
        return base64.b64decode(text.strip(), validate=True).decode("utf-8", "replace")
    except ValueError:
        return ""


def audit_rule_signatures(text: str) -> Counter[tuple[str, ...]]:
    """Each audit rule of a rules file or of ``auditctl -l``, in one comparable form: a watch as
    (watch, path without a trailing /, permissions, key); a system-call rule as (rule, action,
    system calls, -F fields, key), where ``auditctl -l``'s ``-S all``, ``-F key=K`` and ``-1`` read as
    a file's missing -S, ``-k K`` and ``unset``. Lines that are no rule (-D, -b, -e, comments) are left out."""
    found: Counter[tuple[str, ...]] = Counter()
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2 or words[0] not in ("-w", "-a"):
            continue
        key, perms, syscalls, fields = "", "", set(), set()
        rest = iter(words[2:])
        for word in rest:
            value = next(rest, "")
            if word == "-k" or (word == "-F" and value.startswith("key=")):
                key = value.removeprefix("key=")
            elif word == "-p":
                perms = "".join(sorted(value))
            elif word == "-S" and value != "all":
                syscalls |= set(value.split(","))
            elif word == "-F":
                fields.add(value.replace("=unset", "=-1"))
        if words[0] == "-w":
            found[("watch", words[1].rstrip("/") or "/", perms, key)] += 1
        else:
            found[("rule", words[1], ",".join(sorted(syscalls)), " ".join(sorted(fields)), key)] += 1
    return found


def audit_rules_differ(installed: str, loaded: str) -> str:
    """How the kernel's rules (``auditctl -l``) differ from the installed ones, per key, with an
    example of each side; "" when they are the same rules. The engines reload on a difference and
    LOG-01's check fails on it: one comparison for both."""
    want, have = audit_rule_signatures(installed), audit_rule_signatures(loaded)
    missing, extra = want - have, have - want
    keys = sorted({sig[-1] or "-" for sig in (*missing, *extra)})

    def show(sig: tuple[str, ...]) -> str:
        return " ".join(part for part in sig[1:-1] if part)

    parts = []
    for key in keys:
        lost = [show(sig) for sig in missing.elements() if (sig[-1] or "-") == key]
        more = [show(sig) for sig in extra.elements() if (sig[-1] or "-") == key]
        said = [f"{len(lost)} installed not loaded (e.g. {lost[0]})" if lost else "",
                f"{len(more)} loaded not installed (e.g. {more[0]})" if more else ""]
        parts.append(f"{key}: " + ", ".join(x for x in said if x))
    return "; ".join(parts)


# Debian's first UID for people (login.defs UID_MIN when it is not set) and nobody's UID.
UID_MIN = 1000
NOBODY_UID = 65534


def accounts_with_shell(read: str, exempt: Iterable[str]) -> list[str]:
    """Local system accounts with a login shell, sorted, from the output of the system role's
    ``__system_accounts_read`` (/etc/passwd, a ``==`` line, /etc/shells, a ``==`` line, login.defs' UID_MIN).

    A system account has a UID below UID_MIN (1000 when unset) or is nobody (65534); a login shell
    is one listed in /etc/shells. Accounts named in ``exempt`` are left out. Source: CIS Debian
    Linux 12 Benchmark v1.1.0 5.4.2.7 "Ensure system accounts do not have a valid login shell".
    """
    parts: list[list[str]] = [[]]
    for line in read.splitlines():
        if line.strip() == "==":
            parts.append([])
        else:
            parts[-1].append(line)
    passwd, shells_lines, uid_min_lines = [*parts, [], [], []][:3]
    shells = {line.strip() for line in shells_lines if line.strip().startswith("/")}
    words = " ".join(uid_min_lines).split()
    uid_min = int(words[0]) if words and words[0].isdigit() else UID_MIN
    skip = set(exempt)
    found = set()
    for line in passwd:
        fields = line.split(":")
        if len(fields) < 7 or not fields[2].isdigit() or fields[0] in skip:
            continue
        uid = int(fields[2])
        # An empty shell field means /bin/sh (passwd(5)).
        if (uid < uid_min or uid == NOBODY_UID) and (fields[6] or "/bin/sh") in shells:
            found.add(fields[0])
    return sorted(found)


def default_interface(observed: Mapping[str, Any]) -> str | None:
    """The interface of the default route: the IPv4 one's, else the IPv6 one's (an IPv6-only host),
    the lowest metric first; None when the host has no default route at all."""
    for family in ("routes4", "routes6"):
        routes = sorted((r for r in observed.get(family, []) if r.get("dev")), key=lambda r: r.get("metric", 0))
        if routes:
            return str(routes[0]["dev"])
    return None


def suricata_interface(values: Mapping[str, Any], observed: Mapping[str, Any]) -> str | None:
    """The interface Suricata listens on: ``ids_suricata_interface``, else the default route's."""
    return values.get("ids_suricata_interface") or default_interface(observed)


def _ids(values: Mapping[str, Any], observed: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    if not (values.get("ids_enabled") and values.get("ids_suricata_enabled")):
        return {}, []
    have = ", ".join(i for i in observed.get("interfaces", []) if i != "lo") or "none"
    chosen = values.get("ids_suricata_interface")
    if chosen and observed.get("interfaces") and chosen not in observed["interfaces"]:
        return {}, [f"ids_suricata_interface is {chosen}, but this host has no such interface (it has {have}): "
                    "Suricata would not start. Set ids_suricata_interface to the public interface"]
    iface = suricata_interface(values, observed)
    if iface is None:
        return {}, ["this host has no default route (IPv4 or IPv6), so the public interface Suricata listens on "
                    f"cannot be found: set ids_suricata_interface to it (this host has {have}), "
                    "or ids_suricata_enabled: false"]
    return {"__ids_iface": iface}, []


def _patching(values: Mapping[str, Any], observed: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    if not values.get("patching_enabled") or observed.get("security_sources"):
        return {}, []
    return {}, ["none of apt's sources is the Debian security archive, so unattended-upgrades would install "
                "no security update: add <codename>-security (https://security.debian.org/debian-security) "
                "to /etc/apt/sources.list.d, or set patching_enabled: false"]


def _audit(values: Mapping[str, Any], observed: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    return {"__audit_container": observed.get("container", ""),
            "__audit_b32": observed.get("architecture") == "x86_64",
            # The kernel refuses rule changes until reboot: a changed rules file loads at the next boot.
            "__audit_locked": bool(observed.get("audit_locked")),
            # The kernel's rules are not the installed ones (deleted, or never loaded): load them.
            "__audit_reload": _audit_reload(observed)}, []


def _audit_reload(observed: Mapping[str, Any]) -> bool:
    loaded, installed = observed.get("audit_rules", (None, ""))
    if loaded is None or observed.get("container"):
        return False  # no audit system to ask (a container, auditd not installed yet)
    return bool(audit_rules_differ(installed, loaded))


# The words apt reads as true and as false in a boolean option (apt-pkg's StringToBool).
APT_TRUE = frozenset({"yes", "true", "with", "on", "enable", "1"})
APT_FALSE = frozenset({"no", "false", "without", "off", "disable", "0"})
# The options of a source that switch apt-secure's checks off for it (sources.list(5)): no signature
# checked at all, an unsigned repository, a weak (SHA-1) signature, a signed one turned unsigned.
UNCHECKED_OPTIONS = ("trusted", "allow-insecure", "allow-weak", "allow-downgrade-to-insecure")


def _apt_true(value: str) -> bool:
    """apt's reading of a boolean option value: quotes and %XX escapes removed, a whole number true
    unless 0."""
    text = re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m[1], 16)), value.strip().strip("\"'")).lower()
    return text in APT_TRUE or (text.isdigit() and int(text) != 0)


def trusted_sources(read: str) -> list[str]:
    """apt sources that switch signature checks off, as ``file:line: text``, from ``SOURCES_READ``'s
    output: a one-line entry with ``trusted``, ``allow-insecure``, ``allow-weak`` or
    ``allow-downgrade-to-insecure`` set true among its ``[options]``, a deb822 stanza with one of
    those fields (``Trusted: yes``) and not ``Enabled: no``. sources.list(5): apt then installs from
    the source what no trusted key signed."""
    found: list[str] = []
    stanza: list[tuple[str, int, str]] = []  # a deb822 stanza's lines: (file, number, text)
    numbers: Counter[str] = Counter()

    def field(text: str) -> str:
        return text.split(":", 1)[0].strip().lower() if ":" in text and not text[:1].isspace() else ""

    def close() -> None:
        fields = {field(text): text.split(":", 1)[1] for _, _, text in stanza if field(text)}
        if fields.get("enabled", "yes").strip().lower() not in APT_FALSE:
            found.extend(f"{f}:{n}: {text.strip()}" for f, n, text in stanza
                         if field(text) in UNCHECKED_OPTIONS and _apt_true(text.split(":", 1)[1]))
        stanza.clear()

    for line in read.splitlines():
        path, sep, text = line.partition(":")
        if not sep:
            continue
        numbers[path] += 1
        if stanza and (stanza[0][0] != path or not text.strip()):
            close()
        if text.lstrip().startswith("#"):
            continue
        if path.endswith(".sources"):
            if text.strip():
                stanza.append((path, numbers[path], text))
            continue
        words = text.split()
        options = text[text.find("[") + 1:text.find("]")] if words and words[0] in ("deb", "deb-src") \
            and len(words) > 1 and words[1].startswith("[") and "]" in text else ""
        pairs = [option.split("=", 1) for option in options.split() if "=" in option]
        if any(key.lower() in UNCHECKED_OPTIONS and _apt_true(value) for key, value in pairs):
            found.append(f"{path}:{numbers[path]}: {text.strip()}")
    if stanza:
        close()
    return found


def _system(values: Mapping[str, Any], observed: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    # A container shares the machine's kernel: its kernel.* and fs.* parameters are not applied there.
    derived = {"__system_container": observed.get("container", "")}
    problems = blocked_in_use(values, observed)
    mounts, found = mount_options(values, observed)
    derived.update(mounts)
    problems += found
    if values.get("system_accounting_enabled") and observed.get("container"):
        problems.append(f"system_accounting_enabled is true, but this host is a {observed['container']} container: "
                        "process accounting is the machine's kernel's (accton needs CAP_SYS_PACCT there). Set "
                        "system_accounting_enabled: false for it, and turn accounting on where the kernel runs")
    unchecked = trusted_sources(observed.get("sources", ""))
    if values.get("system_package_integrity_enabled") and unchecked:
        problems.append(f"apt installs from {'; '.join(unchecked)} without checking its signatures (trusted or "
                        "allow-insecure, allow-weak, allow-downgrade-to-insecure), and SYS-08 promises signed "
                        "packages only: sign the repository and name its key with signed-by (sources.list(5)), or "
                        "remove the source; or set system_package_integrity_enabled: false and waive SYS-08")
    return derived, problems


def blocked_in_use(values: Mapping[str, Any], observed: Mapping[str, Any]) -> list[str]:
    """SYS-09's modules this host uses: one in use now (outside a container: a container's
    /proc/modules is the machine's) or the type of a file system mounted or in /etc/fstab. Blocked,
    the next boot would go without what needs it (a disk, an application's protocol)."""
    blocked = values.get("system_blocked_modules") if values.get("system_modules_enabled") else None
    if not isinstance(blocked, list):
        return []
    used = set() if observed.get("container") else set(observed.get("modules_used", ()))
    fstypes = {fstype.replace("-", "_") for fstype in observed.get("fstypes", ())}
    problems = []
    for module in blocked:
        name = str(module).replace("-", "_")
        if name in used:
            problems.append(f"system_blocked_modules has {module}, which is in use on this host (/proc/modules): "
                            f"blocking it would take it away at the next boot. Remove it from the list, or stop what "
                            f"uses it and unload it (modprobe -r {module}) before the run")
        elif name in fstypes:
            problems.append(f"system_blocked_modules has {module}, the type of a file system mounted or listed in "
                            "/etc/fstab: the host could not mount it at the next boot. Remove it from the list")
    return problems


# The options of the fstab line SYS-12 writes for a temporary folder that has none: a tmpfs keeps
# what systemd mounts it with (mount-setup.c for /dev/shm; Debian 13's tmp.mount for /tmp), a folder
# on its parent's file system is bound onto itself (its files stay; mount(8) since util-linux 2.27
# applies the flags with the bind).
FSTAB_COMMENT = "# govbaseline (SYS-12): nothing here runs, acts as a device or takes a set-user-ID owner's rights\n"
TMPFS_OPTIONS = {"/dev/shm": "defaults", "/tmp": "mode=1777,strictatime,size=50%,nr_inodes=1m"}


def _unescape(field: str) -> str:
    """A path of fstab(5) or mountinfo: spaces, tabs and backslashes are written as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounted(mountinfo: str, path: str) -> tuple[str, list[str]] | None:
    """The file system type and per-mount options (``["rw", "nosuid", ...]``) of the mount on top at
    ``path``, from proc_pid_mountinfo(5) text; None where ``path`` is no mount point of its own."""
    found = None
    for line in mountinfo.splitlines():
        head, sep, tail = line.partition(" - ")
        fields = head.split()
        if sep and len(fields) >= 6 and _unescape(fields[4]) == path:
            found = (tail.split()[0] if tail.split() else "", fields[5].split(","))
    return found


def mount_options(values: Mapping[str, Any], observed: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """SYS-12: what the converge does so that each of ``system_temporary_mounts`` is mounted with
    ``system_temporary_mount_options`` now and at every boot. Returns the internal variables
    ``__system_fstab`` (the whole new /etc/fstab, or None when it stays as it is: the options added to
    the folder's line, or a line added) and ``__system_mounts_live`` (the ``mount`` commands, as
    argument lists, that apply fstab's options now), and the problems that refuse the host: a folder
    that is missing, listed twice in fstab, mounted by a mount unit of /etc/systemd/system (it
    overrides fstab) or mounted by something else than fstab with a type other than tmpfs. A container
    gets nothing: its container manager mounts its folders (the check says what to ask of it).
    CIS Debian Linux 12 Benchmark v1.1.0 1.1.2.1 (/tmp), 1.1.2.2 (/dev/shm), 1.1.2.5 (/var/tmp)."""
    derived: dict[str, Any] = {"__system_fstab": None, "__system_mounts_live": []}
    paths, wanted = values.get("system_temporary_mounts"), values.get("system_temporary_mount_options")
    if not values.get("system_mounts_enabled") or observed.get("container") \
            or not isinstance(paths, list) or not isinstance(wanted, list):
        return derived, []
    fstab = observed.get("fstab", "")
    lines = fstab.splitlines(keepends=True)
    problems: list[str] = []
    live = []
    for path in paths:
        unit = path.strip("/").replace("/", "-") + ".mount"  # systemd-escape --path, for these three
        listed = [i for i, line in enumerate(lines)
                  if len(line.split()) >= 3 and not line.lstrip().startswith("#")
                  and _unescape(line.split()[1]).rstrip("/") == path]
        mount = mounted(observed.get("mountinfo", ""), path)
        if path not in observed.get("folders", ()):
            problems.append(f"system_temporary_mounts has {path}, which is not a folder on this host: create it "
                            "(mode 1777) or remove it from the list")
            continue
        own = [name for name in (unit, unit + ".d") if name in observed.get("mount_units", ())]
        if own:
            problems.append(f"{path} is mounted as /etc/systemd/system/{own[0]} says, which overrides /etc/fstab: add "
                            f"{','.join(wanted)} to its Options= yourself, or remove {path} from "
                            "system_temporary_mounts")
            continue
        if len(listed) > 1:
            problems.append(f"/etc/fstab lists {path} {len(listed)} times: keep one line, then run again")
            continue
        if listed:
            fields = lines[listed[0]].split()
            options = fields[3].split(",") if len(fields) > 3 else ["defaults"]
            missing = [option for option in wanted if option not in options]
            if missing:
                fields += ["defaults", "0", "0"][len(fields) - 3:]  # fstab(5): options, dump and pass may be left out
                fields[3] = ",".join(options + missing)
                lines[listed[0]] = "\t".join(fields) + "\n"
        elif mount is not None and mount[0] != "tmpfs":
            problems.append(f"{path} is a {mount[0]} mount that /etc/fstab does not list: add it to /etc/fstab with "
                            f"{','.join(wanted)}, or remove {path} from system_temporary_mounts")
            continue
        else:
            source, kind, base = ("tmpfs", "tmpfs", TMPFS_OPTIONS.get(path, "mode=1777,strictatime")) \
                if mount is not None else (path, "none", "bind")
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            lines += [FSTAB_COMMENT,
                      f"{source}\t{path}\t{kind}\t{base},{','.join(wanted)}\t0\t0\n"]
        if mount is None:
            live.append(["mount", path])
        elif any(option not in mount[1] for option in wanted):
            live.append(["mount", "-o", "remount", path])
    new = "".join(lines)
    derived.update({"__system_fstab": new if new != fstab else None, "__system_mounts_live": live})
    return derived, problems


DECIDERS = {"audit": _audit, "ids": _ids, "patching": _patching, "system": _system}


def decide(values: Mapping[str, Mapping[str, Any]], observed: Mapping[str, Any]) -> dict[str, Any]:
    """What each role in ``values`` (role -> its validated variables) derives from the host, as
    internal variables; raises ValidationError naming every role that cannot work on this host
    and the variable to set, so the run stops before its first change."""
    problems: list[str] = []
    if values and not observed.get("systemd", True):
        problems.append("govbaseline needs systemd as the host's init system (every control runs as a systemd "
                        "unit), and /run/systemd/system is missing: this host cannot be managed")
    derived: dict[str, Any] = {}
    for role, role_values in values.items():
        if role in DECIDERS:
            facts, found = DECIDERS[role](role_values, observed)
            derived.update(facts)
            problems += [f"role {role}: {p}" for p in found]
    if problems:
        # Each problem names its role already, as validation.validate_roles' do.
        raise ValidationError("baseline", problems)
    return derived
