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
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from govbaseline.validation import ValidationError

# apt's sources (one-line and deb822 files), each line as "file:text" (sources.list(5)); read-only.
SOURCES_READ = ("grep -H '' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources "
                "2>/dev/null")

# SYS-12's folders (the choices of system_temporary_mounts) and their systemd mount units.
TEMPORARY_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm")


def mount_unit(path: str) -> str:
    """systemd's mount unit of one of SYS-12's folders (``systemd-escape --path --suffix=mount``)."""
    return path.strip("/").replace("/", "-") + ".mount"


TEMPORARY_UNITS = " ".join(mount_unit(path) for path in TEMPORARY_FOLDERS)

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
    # SYS-12 (mount_options): the mounts as the kernel sees them (proc_pid_mountinfo(5)); /etc/fstab and
    # its size in bytes (a read that lost something is told apart from an empty file); what systemd
    # mounts the three temporary folders with at boot (a unit or drop-in of /etc/systemd/system
    # overrides fstab, a masked unit mounts nothing); which of them are folders and which links.
    "echo \"mountinfo=$(base64 -w0 /proc/self/mountinfo 2>/dev/null)\"",
    "echo \"fstab=$(base64 -w0 /etc/fstab 2>/dev/null)\"",
    "echo \"fstab_size=$({ wc -c < /etc/fstab; } 2>/dev/null || echo missing)\"",
    f"echo \"mount_units=$(for u in {TEMPORARY_UNITS}; do systemctl show -p Id -p LoadState "
    "-p FragmentPath -p DropInPaths -p Options \"$u\" 2>/dev/null; echo; done | base64 -w0)\"",
    f"echo \"folders=$(for d in {' '.join(TEMPORARY_FOLDERS)}; do if [ -L \"$d\" ]; then printf '%s:link ' \"$d\"; "
    "elif [ -d \"$d\" ]; then printf '%s:folder ' \"$d\"; fi; done)\"",
    # The unit files and drop-ins as written (systemctl show's Options is the live mount's while mounted).
    f"echo \"mount_unit_files=$(for u in {TEMPORARY_UNITS}; do echo \"### $u\"; "
    "systemctl cat \"$u\" 2>/dev/null; done | base64 -w0)\"",
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
        "fstab": _strict_text(raw.get("fstab", "")),
        "fstab_size": raw.get("fstab_size", "").strip(),
        "mount_units": unit_properties(_unbase64(raw.get("mount_units", ""))),
        "unit_options": configured_options(_unbase64(raw.get("mount_unit_files", ""))),
        "folders": dict(item.rpartition(":")[::2] for item in raw.get("folders", "").split() if ":" in item),
    }


def _strict_text(text: str) -> str | None:
    """base64 of a file that must come back byte for byte (it is written back): None where it is not
    UTF-8 text."""
    try:
        return base64.b64decode(text.strip(), validate=True).decode("utf-8")
    except ValueError:
        return None


def unit_properties(text: str) -> dict[str, dict[str, str]]:
    """``systemctl show -p Id -p ...`` of several units, each block ended by an empty line, by Id."""
    units: dict[str, dict[str, str]] = {}
    for block in text.split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if props.get("Id"):
            units[props["Id"]] = props
    return units


def configured_options(text: str) -> dict[str, str]:
    """The Options= each mount unit's files set, by unit, from ``systemctl cat`` of several units
    (each after a "### UNIT" line): the last one of its [Mount] sections across the unit file and
    its drop-ins, an empty one resetting it, ``%%`` read as ``%`` (systemd.mount(5)); a unit whose
    files set none is left out."""
    found: dict[str, str] = {}
    unit, section = "", ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("### "):
            unit, section = line[4:].strip(), ""
        elif line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Mount" and line.startswith("Options=") and unit:
            found[unit] = line.partition("=")[2].strip().replace("%%", "%")
    return {unit: options for unit, options in found.items() if options}


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


FSTAB_COMMENT = "# govbaseline (SYS-12): nothing here runs, acts as a device or takes a set-user-ID owner's rights\n"
# The options that undo each of SYS-12's (mount(8)); a line with both would mount with the last.
OPPOSITE = {"nodev": "dev", "nosuid": "suid", "noexec": "exec"}
# A tmpfs's own options worth keeping in its new fstab line (tmpfs(5)), from the kernel's view of it.
TMPFS_KEPT = ("size=", "nr_inodes=", "mode=", "uid=", "gid=", "huge=")


def _unescape(field: str) -> str:
    """A path of fstab(5) or mountinfo: spaces, tabs and backslashes are written as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _mounts(mountinfo: str) -> Iterator[tuple[str, str, list[str], list[str]]]:
    """Each mount of proc_pid_mountinfo(5) text, in order: mount point, file system type, per-mount
    options (``["rw", "nosuid", ...]``) and file system options."""
    for line in mountinfo.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, after = head.split(), tail.split()
        if sep and len(fields) >= 6:
            yield (_unescape(fields[4]), after[0] if after else "", fields[5].split(","),
                   after[2].split(",") if len(after) > 2 else [])


def mounted(mountinfo: str, path: str) -> tuple[str, list[str], list[str]] | None:
    """The file system type, per-mount options and file system options of the mount on top at
    ``path`` (``_mounts``); None where ``path`` is no mount point of its own."""
    found = None
    for point, fstype, options, fs_options in _mounts(mountinfo):
        if point == path:
            found = (fstype, options, fs_options)
    return found


def unit_override(props: Mapping[str, str]) -> str:
    """Where a mount unit is set other than by /etc/fstab (from ``systemctl show``): a unit file of
    /etc/systemd/system (it overrides fstab's) or drop-ins (they apply to fstab's unit too), but
    not systemd's own runtime folders; "" where none is."""
    own = [p for p in [props.get("FragmentPath", "")] if p.startswith("/etc/")]
    own += [p for p in props.get("DropInPaths", "").split() if not p.startswith("/run/")]
    return " and ".join(own)


def in_force(options: list[str], option: str) -> bool:
    """Whether ``option`` (nodev, nosuid, noexec) holds in a mount's option list: listed, and after
    its opposite where both are (mount(8) takes the last)."""
    opposite = OPPOSITE.get(option, "")
    last = max((i for i, o in enumerate(options) if o == option), default=-1)
    return last >= 0 and last > max((i for i, o in enumerate(options) if o == opposite), default=-1)


def mount_options(values: Mapping[str, Any], observed: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """SYS-12: what the converge does so that each of ``system_temporary_mounts`` is mounted with
    ``system_temporary_mount_options`` now and at every boot. Returns the internal variables
    ``__system_fstab`` (the whole new /etc/fstab, or None when it stays as it is: the options added
    to the folder's line and their opposites taken out, or a line added: a tmpfs keeping its size
    where the folder is a tmpfs now, else the folder bound onto itself) and ``__system_mounts_live``
    (the ``mount`` commands, as argument lists, that apply the options now), and the problems that
    refuse the host before any change: a folder missing or a link; a masked mount unit; a unit or
    drop-in of /etc/systemd/system (it overrides fstab) without the options; an fstab line listed
    twice, with noauto, or not mounted now (mounting it would hide what programs keep there); a mount
    fstab does not list, other than a tmpfs; an fstab that could not be read whole as text. A
    container gets nothing: its container manager mounts its folders (the check says what to ask).
    CIS Debian Linux 12 Benchmark v1.1.0 1.1.2.1 (/tmp), 1.1.2.2 (/dev/shm), 1.1.2.5 (/var/tmp)."""
    derived: dict[str, Any] = {"__system_fstab": None, "__system_mounts_live": []}
    paths, wanted = values.get("system_temporary_mounts"), values.get("system_temporary_mount_options")
    if not values.get("system_mounts_enabled") or observed.get("container") \
            or not isinstance(paths, list) or not isinstance(wanted, list):
        return derived, []
    fstab, size = observed.get("fstab"), observed.get("fstab_size", "")
    if fstab is None or (size != "missing" and size != str(len(fstab.encode()))):
        return derived, ["/etc/fstab could not be read whole as UTF-8 text, and SYS-12 writes it back with the "
                         "temporary folders' options: make it plain text, or set system_mounts_enabled: false"]
    lines = fstab.splitlines(keepends=True)
    problems: list[str] = []
    live = []
    joined = ",".join(wanted)
    for path in paths:
        unit = mount_unit(path)
        props = observed.get("mount_units", {}).get(unit, {})
        mount = mounted(observed.get("mountinfo", ""), path)
        kind = observed.get("folders", {}).get(path)
        listed = [i for i, line in enumerate(lines) if len(line.split()) >= 3 and not line.lstrip().startswith("#")
                  and _unescape(line.split()[1]).rstrip("/") == path]
        override = unit_override(props)
        if kind != "folder":
            problems.append(f"system_temporary_mounts has {path}, which is " + (
                "a symbolic link on this host: SYS-12 mounts folders; make it a folder (mode 1777) or remove it from "
                "the list" if kind == "link" else "not a folder on this host: create it (mode 1777) or remove it "
                                                  "from the list"))
            continue
        if props.get("LoadState") == "masked":
            problems.append(f"{unit} is masked, which keeps every mount of {path} away at boot (fstab's too): "
                            f"systemctl unmask {unit} (where {path} is no tmpfs, it is then bound onto itself, its "
                            f"files staying where they are), or remove {path} from system_temporary_mounts")
            continue
        if override:
            boot = observed.get("unit_options", {}).get(unit, "")
            if not all(in_force(boot.split(","), option) for option in wanted):
                problems.append(f"{path} is mounted at boot as {override} says (it overrides /etc/fstab), with "
                                f"Options={boot}: add {joined} there (systemctl edit {unit}), or remove {path} "
                                "from system_temporary_mounts")
                continue
            if mount is None:
                problems.append(f"{unit} ({override}) has not mounted {path} now, and mounting it would hide what "
                                f"running programs keep in {path}: start {unit} at a quiet moment or reboot, then run "
                                "again")
                continue
        elif len(listed) > 1:
            problems.append(f"/etc/fstab lists {path} {len(listed)} times: keep one line, then run again")
            continue
        elif listed:
            fields = lines[listed[0]].split()
            fields += ["defaults", "0", "0"][len(fields) - 3:]  # fstab(5): options, dump and pass may be left out
            options = fields[3].split(",")
            if "noauto" in options:
                problems.append(f"/etc/fstab's line for {path} has noauto, so nothing mounts it at boot: take noauto "
                                f"out, or remove {path} from system_temporary_mounts")
                continue
            if mount is None and not (fields[0] == fields[1] and "bind" in options):
                problems.append(f"/etc/fstab's line for {path} ({fields[0]}, {fields[2]}) is not mounted now, and "
                                f"mounting it would hide what running programs keep in {path}: mount it at a quiet "
                                "moment or reboot, then run again")
                continue
            kept = [o for o in options if o not in [OPPOSITE[w] for w in wanted if w in OPPOSITE]]
            if kept != options or any(option not in options for option in wanted):
                fields[3] = ",".join(kept + [option for option in wanted if option not in kept])
                lines[listed[0]] = "\t".join(fields) + "\n"
        elif mount is not None and mount[0] != "tmpfs":
            problems.append(f"{path} is a {mount[0]} mount that /etc/fstab does not list: add it to /etc/fstab with "
                            f"{joined}, or remove {path} from system_temporary_mounts")
            continue
        else:
            below = [m[0] for m in _mounts(observed.get("mountinfo", "")) if m[0].startswith(path + "/")]
            if mount is None and below:
                problems.append(f"{path} has mounts below it ({', '.join(below)}), which binding {path} onto itself "
                                f"would hide: unmount them, or remove {path} from system_temporary_mounts")
                continue
            if mount is not None:
                # A tmpfs keeps what its unit mounts it with (Debian 13's tmp.mount: size=50%, ...), else
                # what the kernel shows of it; its folder's mode is 1777 unless said otherwise.
                vendor = observed.get("unit_options", {}).get(unit)
                own = [o for o in (vendor.split(",") if vendor else mount[2])
                       if o.startswith(TMPFS_KEPT) or (vendor and o == "strictatime")]
                own = own if any(o.startswith("mode=") for o in own) else ["mode=1777", *own]
                line = f"tmpfs\t{path}\ttmpfs\t{','.join(own)},{joined}\t0\t0\n"
            else:
                line = f"{path}\t{path}\tnone\tbind,{joined}\t0\t0\n"
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            lines += [FSTAB_COMMENT, line]
        if mount is None:
            live.append(["mount", path])
        elif any(option not in mount[1] for option in wanted):
            live.append(["mount", "-o", f"remount,{joined}", path])
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
