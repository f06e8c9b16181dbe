"""Role system's rules: what its ``meta/argument_specs.yml`` cannot say.

``RULES`` judges one variable each, ``CROSS_RULES`` several of the role's variables together;
``govbaseline.validation`` runs them, for both engines, after the argument spec.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any

from govbaseline.rules.common import (
    CrossRule,
    Rule,
    absolute_path,
    each,
    host_name_or_ip,
    int_range,
    login_banner,
    optional,
    pem_certificate,
    system_folder,
    username,
)

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


# Folders SYS-08 must not leave out whole: the programs and libraries of every package are below them.
PACKAGE_FOLDERS = {"/usr/bin", "/usr/sbin", "/usr/lib", "/usr/libexec", "/usr/share", "/usr/local", "/usr/lib64",
                   "/usr/lib32", "/usr/libx32", "/lib64", "/lib32", "/usr/include"}


def verify_exclude(name: str, value: Any) -> list[str]:
    """SYS-08's files that may differ from their package: absolute paths, none a system folder or a
    folder of programs (``/usr`` would leave out every program and the check could not fail)."""
    problems = each(absolute_path)(name, value)
    if not problems:
        problems += [f"{name} has {path}: that leaves out every file below it, and the comparison could no longer "
                     "find a changed program. Name the files that may differ, or set "
                     "system_package_integrity_enabled: false" for path in value
                     if system_folder(posixpath.normpath(path)) or posixpath.normpath(path) in PACKAGE_FOLDERS
                     or re.fullmatch(r"(/usr)?/lib/[^/]+-linux-gnu[^/]*", posixpath.normpath(path))]
    return problems


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


# Kernel modules a host of the baseline needs: blocking one would keep the firewall (FW-01: nftables,
# connection tracking, its log rule's nf_log_syslog) from loading, or the root, EFI or LVM/RAID/LUKS
# disks from mounting, at the next boot (update-initramfs copies modprobe.d into the initramfs).
# Modules in use on the host itself are refused there too (hostfacts: in use, or a mounted or
# fstab file system type).
NEEDED_MODULES = frozenset({
    "nf_tables", "nf_conntrack", "nf_defrag_ipv4", "nf_defrag_ipv6", "nf_reject_ipv4", "nf_reject_ipv6",
    "nf_log_syslog", "nft_ct", "nft_limit", "nft_log", "nft_reject", "nft_reject_inet", "nft_chain_nat",
    "nfnetlink", "nfnetlink_log", "x_tables", "libcrc32c", "af_packet", "tcp_diag", "inet_diag",
    "ext4", "jbd2", "mbcache", "crc16", "xfs", "btrfs", "vfat", "fat", "nls_cp437", "nls_ascii", "nls_utf8",
    "dm_mod", "dm_crypt", "md_mod", "raid1", "overlay", "virtio_blk", "virtio_net", "virtio_scsi"})


def blocked_modules(name: str, value: Any) -> list[str]:
    """SYS-09's modules: names as modinfo prints them (``-`` and ``_`` the same), each once, none the
    baseline needs (``NEEDED_MODULES``)."""
    if not isinstance(value, list) or not value:
        return [f"{name} must list the kernel modules to block, such as [cramfs, usb-storage]; to block none, set "
                "system_modules_enabled: false"]
    problems = [f"{name}[{i}] must be a kernel module's name (small letters, digits, - and _, as modinfo prints it), "
                f"not {module!r}"
                for i, module in enumerate(value)
                if not isinstance(module, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,55}", module)]
    if problems:
        return problems
    same = [module.replace("-", "_") for module in value]
    problems += [f"{name} lists {module} twice (modprobe reads - and _ alike)"
                 for module in sorted({m for m in same if same.count(m) > 1})]
    problems += [f"{name} has {module}: the baseline needs it (the firewall, the network or a disk would not load "
                 "at the next boot). Remove it from the list" for module in value
                 if module.replace("-", "_") in NEEDED_MODULES]
    return problems


def listed_once(what: str, off: str) -> Rule:
    """A list (its items checked by the argument spec's choices) that is not empty and names each item
    once; an empty one is refused with how to turn the area off (``off``)."""

    def rule(name: str, value: Any) -> list[str]:
        if not isinstance(value, list) or not value:
            return [f"{name} must list {what}; for none, set {off}"]
        return [f"{name} lists {item} twice" for item in sorted({str(i) for i in value if value.count(i) > 1})]

    return rule


# One rule per variable, for what the argument spec cannot say; validation runs them in this order.
RULES: dict[str, Rule] = {
    "system_sysctl_network": sysctl_parameters(("net.",)),
    "system_sysctl_kernel": sysctl_parameters(("kernel.", "fs.")),
    "system_cron_allow_users": cron_allow_users,
    "system_time_servers": time_servers,
    "system_time_nts_ca_cert": optional(pem_certificate),
    "system_time_max_offset_ms": int_range(1, 60000),
    "system_file_search_seconds": int_range(10, 3600),
    "system_login_banner": login_banner,
    "system_motd_scripts_off": each(absolute_path),
    "system_password_hash_cost": int_range(5, 11),
    "system_shell_accounts": each(username),
    "system_package_verify_exclude": verify_exclude,
    "system_package_verify_seconds": int_range(10, 3600),
    "system_blocked_modules": blocked_modules,
    "system_temporary_mounts": listed_once("the temporary folders to mount with system_temporary_mount_options, "
                                           "such as [/tmp, /var/tmp, /dev/shm]", "system_mounts_enabled: false"),
    "system_temporary_mount_options": listed_once("the options of the temporary folders, such as [nodev, nosuid, "
                                                  "noexec]", "system_mounts_enabled: false"),
}
# Rules that look at several of the role's variables together.
CROSS_RULES: list[CrossRule] = [no_suid_dumps, nts_ca_needs_an_nts_server]
