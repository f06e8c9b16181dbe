"""Checks for the operating system's hardening SYS-01 .. SYS-12 (role ``system``)."""

from __future__ import annotations

import fnmatch
import os
import re
import shlex

import pytest

from govbaseline.checks.plugin import in_container
from govbaseline.hostfacts import (
    APT_TRUE,
    SOURCES_READ,
    accounts_with_shell,
    configured_options,
    in_force,
    mount_unit,
    mounted,
    trusted_sources,
    unit_override,
    unit_properties,
)
from govbaseline.report import SWITCHED_OFF
from govbaseline.rules.common import BANNER_ESCAPES, BANNER_NAMES


def area(hostvars, switch: str) -> None:
    """Skip a check whose area of the role is switched off on this host, naming the switch."""
    if not hostvars[switch]:
        pytest.skip(f"{SWITCHED_OFF}{switch} is false on this host: the control is not applied here")


def boot_values(host) -> dict[str, tuple[str, str]]:
    """What systemd-sysctl sets at boot: each parameter's last value across /etc, /run and /usr/lib's
    sysctl.d (and /etc/sysctl.conf through Debian's 99-sysctl.conf), with the file it comes from."""
    out = host.run("systemd-analyze cat-config sysctl.d")
    assert out.rc == 0, f"systemd-analyze cat-config sysctl.d failed: {out.stderr.strip()}"
    values: dict[str, tuple[str, str]] = {}
    source = ""
    for line in out.stdout.splitlines():
        line = line.strip()
        if line.startswith("# /"):
            source = line[2:]
        elif line and not line.startswith(("#", ";")) and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip().lstrip("-")] = (value.strip(), source)
    return values


def persisted_problems(host, wanted: dict) -> list[str]:
    boot = boot_values(host)
    return [f"{key} is {boot[key][0]} at boot (from {boot[key][1]}), {value} wanted" if key in boot
            else f"{key} is not set at boot (no sysctl.d file has it), {value} wanted"
            for key, value in wanted.items() if boot.get(key, ("",))[0] != str(value)]


def live_problems(host, wanted: dict) -> list[str]:
    problems = []
    for key, value in wanted.items():
        out = host.run("sysctl -n %s", key)
        live = out.stdout.strip() if out.rc == 0 else f"missing ({out.stderr.strip()})"
        if live != str(value):
            problems.append(f"{key} is {live} live, {value} wanted")
    return problems


@pytest.mark.control("SYS-01")
def test_kernel_network_parameters_persisted_and_live(host, hostvars):
    area(hostvars, "system_network_enabled")
    wanted = hostvars["system_sysctl_network"]
    # A container host has a network namespace of its own: its net.* parameters are its own too.
    problems = persisted_problems(host, wanted) + live_problems(host, wanted)
    assert not problems, "kernel network parameters differ: " + "; ".join(problems)


@pytest.mark.control("SYS-02")
def test_kernel_process_parameters_persisted(host, hostvars):
    area(hostvars, "system_kernel_enabled")
    problems = persisted_problems(host, hostvars["system_sysctl_kernel"])
    assert not problems, "kernel process-hardening parameters are not persisted: " + "; ".join(problems)


@pytest.mark.control("SYS-02")
def test_kernel_process_parameters_live(host, hostvars):
    area(hostvars, "system_kernel_enabled")
    container = in_container(host)
    if container:
        pytest.skip(f"a {container} container shares the machine's kernel, whose kernel.* and fs.* parameters are "
                    "the machine's to set: the persisted values are checked by "
                    "test_kernel_process_parameters_persisted, the live ones on a VM or a real host")
    problems = live_problems(host, hostvars["system_sysctl_kernel"])
    assert not problems, "kernel process-hardening parameters differ: " + "; ".join(problems)


LIMIT = re.compile(r"^\s*(\S+)\s+(hard|-)\s+core\s+(\S+)", re.MULTILINE)


@pytest.mark.control("SYS-03")
def test_core_dumps_off(host, hostvars):
    area(hostvars, "system_coredumps_enabled")
    limits = host.run("grep -H '' /etc/security/limits.conf /etc/security/limits.d/*.conf 2>/dev/null")
    hard = [(line.split(":", 1)[0], m.groups()) for line in limits.stdout.splitlines()
            if (m := LIMIT.match(line.split(":", 1)[-1]))]
    for who in ("*", "root"):
        set_for = [(path, value) for path, (domain, _, value) in hard if domain == who]
        assert set_for and set_for[-1][1] == "0", \
            f"login sessions of {who} may dump core: hard core limit {set_for or 'unset'} in /etc/security/limits*"
    if os.environ.get("GOVBASELINE_VANTAGE") != "host":
        # Over SSH this command runs in a login session (pam_limits); a host checking itself in pull
        # mode runs it in its own service, started before the run changed the limits.
        session = host.run("sh -c 'ulimit -Hc'")
        assert session.stdout.strip() == "0", f"a login session's hard core limit is {session.stdout.strip()}, not 0"
    manager = host.run("systemctl show -p DefaultLimitCORE --value")
    assert manager.stdout.strip() == "0", \
        f"services may dump core: systemd's DefaultLimitCORE is {manager.stdout.strip() or 'unset'}, not 0"
    coredump = host.run("systemd-analyze cat-config systemd/coredump.conf")
    settings = dict(line.split("=", 1) for line in coredump.stdout.splitlines()
                    if "=" in line and not line.startswith(("#", ";")))
    assert settings.get("Storage") == "none" and settings.get("ProcessSizeMax") == "0", \
        f"systemd-coredump would keep dumps: Storage={settings.get('Storage')}, " \
        f"ProcessSizeMax={settings.get('ProcessSizeMax')}"


def stat_lines(host, paths: list[str]) -> dict[str, str]:
    out = host.run("stat -c '%%n %%a %%U %%G' -- " + " ".join(["%s"] * len(paths)) + " 2>/dev/null; true", *paths)
    return {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in out.stdout.splitlines() if " " in line}


def mode_problems(found: dict[str, str], wanted: list[dict]) -> list[str]:
    return [f"{item['path']} is {found[item['path']]}, {item['mode']} {item['owner']} {item['group']} wanted"
            for item in wanted
            if item["path"] in found and found[item["path"]] != f"{item['mode']} {item['owner']} {item['group']}"]


@pytest.mark.control("SYS-04")
def test_scheduler_limited_to_listed_accounts(host, hostvars):
    area(hostvars, "system_scheduler_enabled")
    listed = set(hostvars["system_cron_allow_users"])
    for path, group in ((hostvars["__system_cron_allow"], "crontab"), (hostvars["__system_at_allow"], "daemon")):
        allow = host.file(path)
        assert allow.exists, f"{path} is missing: every account may schedule jobs"
        names = {line.strip() for line in allow.content_string.splitlines() if line.strip() and line[0] != "#"}
        assert names == listed, f"{path} lists {sorted(names)}, not system_cron_allow_users {sorted(listed)}"
        found = stat_lines(host, [path]).get(path)
        assert found == f"640 root {group}", f"{path} is {found}, 640 root {group} wanted"
    left = [path for path in hostvars["__system_deny_files"] if host.file(path).exists]
    assert not left, f"{left} present: with an allow file a deny file is not read, and only misleads"
    # The behaviour: an account not listed is refused by crontab itself.
    outsider = next(user for user in ("nobody", "daemon") if user not in listed)
    refused = host.run("su -s /bin/sh %s -c 'crontab -l' 2>&1", outsider)
    assert refused.rc != 0 and "not allowed" in refused.stdout, \
        f"{outsider} may use crontab: {refused.stdout.strip()[:200]}"


@pytest.mark.control("SYS-04")
def test_scheduler_files_root_only(host, hostvars):
    area(hostvars, "system_scheduler_enabled")
    wanted = hostvars["__system_scheduler_modes"]
    problems = mode_problems(stat_lines(host, [item["path"] for item in wanted]), wanted)
    assert not problems, "the system crontab or a cron folder is open to others: " + "; ".join(problems)


@pytest.mark.control("SYS-05")
def test_account_files_and_host_keys_modes(host, hostvars):
    area(hostvars, "system_permissions_enabled")
    wanted = list(hostvars["__system_account_modes"])
    found = stat_lines(host, [item["path"] for item in wanted])
    keys = host.run(f"ls -1 {hostvars['__system_host_key_glob']} 2>/dev/null; true").stdout.split()
    assert keys, "no SSH host private key found"
    wanted += [{"path": key, **hostvars["__system_host_key_mode"]} for key in keys]
    found.update(stat_lines(host, keys))
    missing = [item["path"] for item in hostvars["__system_account_modes"]
               if not item["path"].endswith("-") and item["path"] not in found]  # backups (passwd-) may be missing
    assert not missing, f"{missing} missing"
    problems = mode_problems(found, wanted)
    assert not problems, "account files or SSH host keys have the wrong owner or mode: " + "; ".join(problems)


# World-writable files, world-writable folders without the sticky bit, and files of no known
# account or group, on the local file systems (each searched without crossing into another).
SEARCH = ("timeout {seconds} find {mounts} -xdev \\( -path /proc -o -path /sys \\) -prune -o "
          "\\( \\( -type f -perm -0002 \\) -o \\( -type d -perm -0002 ! -perm -1000 \\) -o -nouser -o -nogroup \\) "
          "-printf '%m %u %g %p\\n' 2>/dev/null")


@pytest.mark.control("SYS-05")
def test_no_world_writable_or_unowned_files(host, hostvars):
    area(hostvars, "system_permissions_enabled")
    seconds = hostvars["system_file_search_seconds"]
    mounts = host.run("df --local --output=target | tail -n +2 | sort -u").stdout.split()
    assert mounts, "no local file system found"
    out = host.run(SEARCH.format(seconds=seconds, mounts=" ".join(f"'{m}'" for m in mounts)))
    found = out.stdout.splitlines()
    shown = "; ".join(found[:30]) + (f" and {len(found) - 30} more" if len(found) > 30 else "")
    assert out.rc != 124, (f"the search for world-writable and unowned files did not finish in {seconds} s "
                           f"(system_file_search_seconds); found so far: {shown or 'nothing'}")
    assert not found, f"world-writable (outside sticky folders) or unowned paths: {shown}"


def chronyc(host, what: str) -> list[list[str]]:
    """``chronyc -c -N <what>`` as rows of fields (-c: comma-separated; -N: the names as configured)."""
    out = host.run("chronyc -c -N %s", what)
    assert out.rc == 0, f"chronyc {what} failed: {(out.stderr or out.stdout).strip()[-300:]}"
    return [line.split(",") for line in out.stdout.splitlines() if line]


@pytest.mark.control("SYS-06")
def test_clock_synchronised_to_the_listed_servers(host, hostvars):
    """chronyd runs, has selected one of the listed servers (by its configured name), every server
    listed with NTS is used with NTS, and the clock is within system_time_max_offset_ms of it.

    chronyc's fields (chronyc(1), -c): sources: mode, state (``*`` the selected source), name, ...;
    authdata: name, mode (NTS, SK or -), key id, ...; tracking: reference id, name, stratum, ref time,
    system time offset (s), ..., leap status (last)."""
    area(hostvars, "system_time_enabled")
    active = host.run("systemctl is-active chrony")
    assert active.stdout.strip() == "active", \
        f"chrony is {active.stdout.strip() or 'not installed'}: the clock follows no time server"
    listed = {server["name"]: server for server in hostvars["system_time_servers"]}
    sources = chronyc(host, "sources")
    names = {row[2] for row in sources if len(row) > 2}
    unknown = sorted(names - set(listed))
    assert not unknown, f"chrony follows servers the inventory does not list: {', '.join(unknown)}"
    missing = sorted(n for n, s in listed.items() if not s.get("pool") and n not in names)
    assert not missing, f"chrony does not follow {', '.join(missing)} (system_time_servers)"
    auth = {row[0]: row[1] for row in chronyc(host, "authdata") if len(row) > 1}
    plain = sorted(n for n, s in listed.items() if s.get("nts") and n in names and auth.get(n) != "NTS")
    assert not plain, f"{', '.join(plain)} listed with nts: true but used with authentication " \
                      f"{', '.join(auth.get(n, 'none') for n in plain)}, not NTS"
    selected = [row[2] for row in sources if len(row) > 2 and row[1] == "*"]
    tracking = chronyc(host, "tracking")[0]
    leap = tracking[-1]
    states = ", ".join(f"{row[2]} {row[1]}" for row in sources if len(row) > 2) or "no source"
    assert selected and leap != "Not synchronised", \
        f"the clock is not synchronised (leap status {leap}); sources and their states: {states} " \
        "(chronyc sources: ? unreachable, x false ticker, ~ too variable)"
    offset_ms = abs(float(tracking[4])) * 1000
    limit = hostvars["system_time_max_offset_ms"]
    assert offset_ms <= limit, \
        f"the clock is {offset_ms:.0f} ms off {selected[0]}, more than system_time_max_offset_ms {limit}"


@pytest.mark.control("SYS-07")
def test_logins_show_no_system_name_or_version(host, hostvars):
    """What a person sees before and after logging in: /etc/issue and /etc/issue.d (console, agetty
    expands its escapes), /etc/motd, /etc/motd.d and what the message-of-the-day scripts print now
    (pam_motd runs them at each login) name neither the system nor its version (CIS 1.7.1, 1.7.2).
    /etc/issue.net is the SSH banner of the access role (ACC-01), validated the same way."""
    area(hostvars, "system_logins_enabled")
    issue = host.file(hostvars["__system_issue"])
    assert issue.exists and issue.content_string.strip() == hostvars["system_login_banner"].strip(), \
        f"{hostvars['__system_issue']} does not hold system_login_banner"
    release = host.run(". /etc/os-release && printf '%s\\n' \"$PRETTY_NAME\" \"$NAME\" \"$VERSION_CODENAME\"; "
                       "cat /etc/debian_version 2>/dev/null; uname -r; uname -v")
    assert release.rc == 0, f"the system's name could not be read: {release.stderr.strip()}"
    giveaways = [line.strip() for line in release.stdout.splitlines() if len(line.strip()) > 3]
    texts = host.run("for f in %s /etc/issue.d/*.issue %s /etc/motd.d/* /run/motd.d/*; do "
                     "[ -f \"$f\" ] && printf '=== %%s\\n' \"$f\" && cat \"$f\"; done; true",
                     hostvars["__system_issue"], hostvars["__system_motd"]).stdout
    shown: dict[str, str] = {}
    for part in texts.split("=== ")[1:]:
        path, _, text = part.partition("\n")
        shown[path] = text
    motd_dir = hostvars["__system_motd_dir"]
    if host.file(motd_dir).is_directory:
        shown[f"the scripts in {motd_dir}"] = host.run("run-parts --lsbsysinit %s", motd_dir).stdout
    problems = [f"{where} shows {word!r}" for where, text in shown.items() for word in giveaways if word in text]
    problems += [f"{where} shows {m.group(0)!r}" for where, text in shown.items() for m in BANNER_NAMES.finditer(text)]
    problems += [f"{where} uses getty's escape {m.group(0)!r}" for where, text in shown.items()
                 if "issue" in where for m in BANNER_ESCAPES.finditer(text)]
    assert not problems, "a login shows the system's name or version: " + "; ".join(sorted(set(problems)))


# crypt(5)'s prefixes of the algorithms older than yescrypt ($y$).
HASH_PREFIXES = {"1": "MD5", "2a": "bcrypt", "2b": "bcrypt", "2y": "bcrypt", "5": "SHA-256", "6": "SHA-512",
                 "7": "scrypt", "gy": "gost-yescrypt", "sha1": "SHA-1"}


def hash_algorithm(hashed: str) -> str:
    """The algorithm of a shadow hash, by its crypt(5) prefix (``$6$...``: SHA-512); no prefix: DES."""
    if not hashed.startswith("$"):
        return "DES"
    return HASH_PREFIXES.get(hashed.split("$")[1], f"${hashed.split('$')[1]}$")


def login_defs(host, key: str) -> list[str]:
    """The values of ``key`` in /etc/login.defs, in order (PAM and shadow's tools read the first)."""
    return host.run("awk -v k=%s '$1 == k {print $2}' /etc/login.defs", key).stdout.split()


@pytest.mark.control("SYS-07")
def test_passwords_hashed_with_yescrypt(host, hostvars):
    """New passwords: login.defs ENCRYPT_METHOD YESCRYPT at least at the set cost, pam_unix naming no
    older algorithm; existing ones: every password hash in the shadow file is a yescrypt one ($y$)
    (CIS 5.4.1.4, 5.3.3.4.3)."""
    area(hostvars, "system_logins_enabled")
    problems = []
    methods, costs = login_defs(host, "ENCRYPT_METHOD"), login_defs(host, "YESCRYPT_COST_FACTOR")
    problems += [f"login.defs sets {key} {len(values)} times ({', '.join(values)}): only the first counts"
                 for key, values in (("ENCRYPT_METHOD", methods), ("YESCRYPT_COST_FACTOR", costs)) if len(values) > 1]
    method = methods[0] if methods else ""
    if method != "YESCRYPT":
        problems.append(f"login.defs ENCRYPT_METHOD is {method or 'unset'}, YESCRYPT wanted")
    cost = costs[0] if costs else "5"  # yescrypt's default when unset
    if not cost.isdigit() or int(cost) < hostvars["system_password_hash_cost"]:
        problems.append(f"login.defs YESCRYPT_COST_FACTOR is {cost}, at least {hostvars['system_password_hash_cost']} "
                        "wanted")
    pam = host.file(hostvars["__system_common_password"]).content_string
    weak = "|".join(hostvars["__system_weak_hashes"])
    for line in pam.splitlines():
        found = re.search(rf"^password\s.*pam_unix\.so(?:\s.*)?\s({weak})(?=\s|$)", line)
        if found:
            problems.append(f"pam_unix hashes new passwords with {found.group(1)}: {line.strip()}")
        rounds = re.search(r"^password\s.*pam_unix\.so\s.*\brounds=(\d+)", line)
        if rounds and int(rounds.group(1)) < hostvars["system_password_hash_cost"]:
            problems.append(f"pam_unix's rounds={rounds.group(1)} overrides the cost factor: {line.strip()}")
    shadow = host.run("getent shadow")
    assert shadow.rc == 0, f"the shadow database could not be read: {shadow.stderr.strip()}"
    older = sorted(f"{fields[0]} ({hash_algorithm(fields[1])})"
                   for fields in (line.split(":") for line in shadow.stdout.splitlines())
                   if len(fields) > 1 and fields[1] and fields[1][0] not in "!*" and not fields[1].startswith("$y$"))
    if older:
        problems.append(f"passwords hashed with an older algorithm (set them again to rehash): {', '.join(older)}")
    assert not problems, "; ".join(problems)


@pytest.mark.control("SYS-07")
def test_system_accounts_have_no_login_shell(host, hostvars):
    """Accounts below UID_MIN (and nobody) have no shell listed in /etc/shells, except root, sync,
    shutdown, halt and system_shell_accounts (CIS 5.4.2.7)."""
    area(hostvars, "system_logins_enabled")
    read = host.run("sh -c %s sh %s", hostvars["__system_accounts_read"], hostvars["__system_login_defs"])
    assert read.rc == 0 and "\n==\n" in read.stdout, f"the accounts could not be read: {read.stderr.strip()}"
    found = accounts_with_shell(read.stdout, [*hostvars["__system_shell_exempt"], *hostvars["system_shell_accounts"]])
    assert not found, f"system accounts with a login shell: {', '.join(found)} (set system_shell_accounts to keep one)"


@pytest.mark.control("SYS-08")
def test_packages_only_from_signed_sources(host, hostvars):
    """No apt source switches apt-secure's checks off (sources.list(5): trusted, allow-insecure,
    allow-weak, allow-downgrade-to-insecure), and apt's effective settings (apt-config dump, keys read
    without case, a program's own ``Binary::<program>::`` settings too) refuse unauthenticated packages
    and insecure, downgraded or weakly signed repositories (CIS Debian 12 1.2.1.2 "package
    repositories are configured")."""
    area(hostvars, "system_package_integrity_enabled")
    unchecked = trusted_sources(host.run(SOURCES_READ).stdout)
    assert not unchecked, f"apt installs without checking signatures from: {'; '.join(unchecked)}"
    dump = host.run("apt-config dump")
    assert dump.rc == 0, f"apt-config dump failed: {dump.stderr.strip()}"
    wanted = {name.lower(): name for name in hostvars["__system_apt_signed_settings"]}
    allowed = []
    for key, value in re.findall(r'^(\S+) "(.*)";$', dump.stdout, re.MULTILINE):
        # apt.conf(5): keys are case-insensitive; Binary::apt-get::X applies X when apt-get runs.
        name = re.sub(r"(?i)^binary::[^:]+::", "", key).lower()
        if name in wanted and value.strip().lower() in APT_TRUE:
            allowed.append(f"{key} {value}")
    if allowed:
        last = "|".join(name.rsplit("::", 1)[-1] for name in wanted.values())
        where = host.run("grep -rlsiE %s /etc/apt/apt.conf /etc/apt/apt.conf.d",
                         f"({last})[^;]*\"?({'|'.join(sorted(APT_TRUE))})\"?[[:space:]]*;").stdout.split()
        raise AssertionError(f"apt allows {', '.join(allowed)} (set in {', '.join(where) or 'a file apt reads'}): "
                             "packages or repositories apt cannot authenticate would be installed")


# dpkg --verify's lines (dpkg(1), "--verify-format rpm"): nine characters of checks ("??5??????": the
# MD5 sum differs; "missing  ": the file is gone, maybe followed by " (reason)"), a space, "c" for a
# configuration file, a space, the path.
VERIFY_LINE = re.compile(r"^(?P<checks>.{9}) (?P<conffile>[c ]) (?P<path>/.*)$")
# dpkg(1) --path-exclude/--path-include, as dpkg.cfg(5) lines ("path-exclude=/usr/share/doc/*").
DPKG_FILTERS = "cat /etc/dpkg/dpkg.cfg /etc/dpkg/dpkg.cfg.d/* 2>/dev/null"
# Debian 12 has /bin, /sbin and /lib as links into /usr, and dpkg records either spelling.
MERGED = ("/bin/", "/sbin/", "/lib/", "/lib64/")


def filtered_out(path: str, filters: list[tuple[str, str]]) -> bool:
    """Whether dpkg left ``path`` out at install time: the last path-exclude/-include whose pattern
    matches it (fnmatch(3), ``*`` crosses ``/``) is an exclude."""
    verdict = False
    for kind, pattern in filters:
        if fnmatch.fnmatchcase(path, pattern):
            verdict = kind == "exclude"
    return verdict


@pytest.mark.control("SYS-08")
def test_installed_files_match_their_packages(host, hostvars):
    """Every file an installed package shipped has the checksum the package recorded (dpkg --verify),
    configuration files apart (changing them is configuring; AIDE, FIM-01, watches them), files dpkg's
    path-exclude left out apart, and the paths of system_package_verify_exclude apart. The message
    names each changed or missing file and its package (CIS Debian 12 6.1 "filesystem integrity";
    NIST SP 800-53 SI-7)."""
    area(hostvars, "system_package_integrity_enabled")
    seconds = hostvars["system_package_verify_seconds"]
    # stdbuf: what dpkg found before a timeout is printed, not lost in its buffer.
    out = host.run("timeout %s nice -n 10 stdbuf -oL dpkg --verify", str(seconds))
    filters = re.findall(r"^\s*path-(exclude|include)[=\s]\s*(\S+)", host.run(DPKG_FILTERS).stdout, re.MULTILINE)
    excluded = [os.path.normpath(path) for path in hostvars["system_package_verify_exclude"]]
    changed = []
    for line in out.stdout.splitlines():
        found = VERIFY_LINE.match(line)
        if not found or found["conffile"] == "c":
            continue
        missing = found["checks"].startswith("missing")
        path = re.sub(r" \([^()]*\)$", "", found["path"]) if missing else found["path"]
        spellings = {path, "/usr" + path} if path.startswith(MERGED) else {path}
        if any(p == e or p.startswith(e + "/") for p in spellings for e in excluded) \
                or (missing and filtered_out(path, filters)):
            continue
        what = "missing" if missing else "content differs" if found["checks"][2] == "5" \
            else f"changed: {found['checks']}"
        changed.append((path, what))
    changed.sort()
    assert out.rc != 124, (f"dpkg --verify did not finish in {seconds} s (system_package_verify_seconds); "
                           f"changed so far: {', '.join(p for p, _ in changed) or 'none'}")
    # dpkg --verify exits 0 (or 1) after finding changes; another status is its own failure (or no dpkg).
    assert out.rc in (0, 1), f"dpkg --verify failed ({out.rc}): {out.stderr.strip()[-300:]}"
    if changed:
        shown = changed[:20]
        # dpkg -S prints "package[, package]: path" for each path a package owns (and "diversion by
        # ..." lines for a diverted path, which name no package).
        asked = host.run("dpkg -S -- " + " ".join(shlex.quote(path) for path, _ in shown) + " 2>/dev/null")
        owners = {path: package for package, _, path in (line.partition(": ") for line in asked.stdout.splitlines())
                  if not package.startswith(("diversion by ", "local diversion"))}
        named = "; ".join(f"{path} ({what}, package {owners.get(path, '?')})" for path, what in shown)
        more = f" and {len(changed) - 20} more" if len(changed) > 20 else ""
        raise AssertionError(f"installed files differ from their packages: {named}{more}. Find out who changed "
                             "them before anything else; then apt-get install --reinstall PACKAGE, or list a file "
                             "that may differ in system_package_verify_exclude")


@pytest.mark.control("SYS-09")
def test_listed_kernel_modules_cannot_load(host, hostvars):
    """Each module of system_blocked_modules: modprobe would run ``/bin/false`` and nothing else
    instead of loading it (``modprobe -D``, which loads nothing and, unlike ``-n``, answers for a
    module already loaded too), aliases cannot pick it (``blacklist``), and outside a container it is
    not loaded now (a container's /proc/modules is the machine's). CIS Debian Linux 12 Benchmark
    v1.1.0 1.1.1 and 3.2 (each module "not available")."""
    area(hostvars, "system_modules_enabled")
    modules = hostvars["system_blocked_modules"]
    # One line per module: its name, a tab, then what modprobe would do, each action ended by the
    # unit separator (octal 037): the modules it depends on first (insmod ...), its own action last.
    script = "; ".join(f"printf '%s\\t' {shlex.quote(m)}; modprobe -D {shlex.quote(m)} 2>&1 | tr '\\n' '\\037'; echo"
                       for m in modules)
    would = {name: [a for a in actions.split("\x1f") if a.strip()] for name, _, actions in
             (line.partition("\t") for line in host.run(script).stdout.splitlines() if "\t" in line)}
    config = host.run("modprobe --showconfig 2>/dev/null | grep '^blacklist '").stdout.split()
    blacklisted = {name.replace("-", "_") for name in config[1::2]}
    problems = []
    for module in modules:
        said = (would.get(module) or [""])[-1].strip()  # its own action (dependencies may be loaded first)
        if said.startswith("builtin "):
            problems.append(f"{module} is built into the kernel: modprobe cannot block it (remove it from "
                            "system_blocked_modules, or run a kernel without it)")
        elif said.split() != ["install", "/bin/false"]:  # "install /bin/false || modprobe ..." still loads it
            problems.append(f"{module} is not blocked (modprobe -D says: {said or 'nothing'})")
        if module.replace("-", "_") not in blacklisted:
            problems.append(f"{module} is not blacklisted: a device's alias could load it")
    if not in_container(host):
        loaded = {line.split(" ", 1)[0] for line in host.run("cat /proc/modules").stdout.splitlines()}
        problems += [f"{module} is loaded now: unload it (modprobe -r {module}, refused while in use) or reboot"
                     for module in modules if module.replace("-", "_") in loaded]
    assert not problems, "kernel modules that should not load: " + "; ".join(problems)


# SYS-10: the highest exposure each of govbaseline's own services may have, on the scale of
# `systemd-analyze security` (0.0 is a unit with every protection, 10.0 one with none; systemd-analyze(1)).
# Set per unit from what it needs (its unit file and role system's sandbox.conf.j2 say what and
# why), a little above what Debian 12's systemd 252 and Debian 13's 257 score for it (the same). Pull mode
# applies the whole baseline and has no sandbox (roles/system/templates/sandbox-none.conf.j2); the Lynis
# self-audit keeps the host's own view (roles/system/templates/sandbox-lynis.conf.j2).
EXPOSURE_LIMITS = {  # by the role variable naming the unit (__backup_jobs: each job's unit)
    "__alerts_retry_unit": 2.5,  # scored 2.1
    "__antivirus_scan_unit": 3.0,  # 2.5: reads and moves any file
    "__audit_retention_unit": 2.5,  # 2.0
    "__backup_jobs": 3.5,  # 2.9: reads any file, restores owners, runs dumps as the database's account
    "__backup_server_copy_unit": 3.5,  # on a backup server: restic as each client's account
    "__backup_server_prune_unit": 3.0,  # on a backup server: as the repositories' owner
    "__ids_alerts_unit": 2.5,  # 2.3
    "__ids_update_unit": 2.5,  # 2.3
    "__integrity_check_unit": 2.5,  # 2.3
    "__integrity_tamper_unit": 3.0,  # 2.5: restores pages with their owners
    "__tls_expiry_unit": 2.5,  # 2.3
    "__vulnscan_portscan_unit": 3.0,  # raw and packet sockets
    "__vulnscan_unit": 9.5,  # 8.9: Lynis sees the host as it is
    "__pull_unit": 9.9,  # no sandbox: applies the whole baseline
}
EXPOSURE = re.compile(r"Overall exposure level for (\S+?)\.service: (\d+\.\d+)")


@pytest.mark.control("SYS-10")
def test_own_services_sandboxed_within_their_exposure_limits(host, hostvars):
    """Every govbaseline-*.service on the host has the common sandbox (pull mode and Lynis: their own,
    which replaces it), scores at most its limit (EXPOSURE_LIMITS) in `systemd-analyze security`,
    which judges the settings systemd loaded for it (unit file and drop-ins), and none runs in an
    older sandbox than the one on disk (a process started before it was written). A unit this
    version does not know fails too. That each job still works in its sandbox is the job's own
    control's check of its last run. In a container the score is of the settings only: systemd
    skips the mount-namespace ones there (ProtectSystem, PrivateTmp); the VM tier proves them. CIS
    Debian Linux 12 Benchmark v1.1.0 has no section for it; NIST SP 800-123 (least privilege for
    server processes) and systemd.exec(5)'s sandboxing section."""
    area(hostvars, "system_sandbox_enabled")
    common = hostvars["__system_sandbox_dropin"]
    # The units whose own drop-in replaces the common one: {unit: its drop-in}.
    own = {entry["dest"].split("/")[-2].removesuffix(".service.d"): entry["dest"]
           for entry in hostvars["__system_sandbox_files"] if entry.get("template") not in (None, "sandbox.conf.j2")}
    listed = host.run("systemctl list-unit-files --type=service --no-legend --plain 'govbaseline-*'")
    assert listed.rc == 0, f"systemctl list-unit-files failed: {listed.stderr.strip()}"
    units = sorted(line.split()[0].removesuffix(".service") for line in listed.stdout.splitlines()
                   if line.strip() and "@." not in line.split()[0])
    assert units, "no govbaseline-*.service on this host: nothing the baseline installs is here"
    names = " ".join(f"{shlex.quote(u)}.service" for u in units)
    out = host.run(f"systemd-analyze security --no-pager {names}")
    scores = {unit: float(score) for unit, score in EXPOSURE.findall(out.stdout)}
    shown = host.run(f"systemctl show -p Id -p DropInPaths {names}").stdout
    dropins = {fields.get("Id", "").removesuffix(".service"): fields.get("DropInPaths", "").split()
               for fields in (dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
                              for block in shown.split("\n\n"))}
    limits: dict[str, float] = {}
    for name, limit in EXPOSURE_LIMITS.items():
        value = hostvars.get(name)
        limits.update(dict.fromkeys([job["unit"] for job in value] if isinstance(value, list) else [value], limit))
    problems = []
    for unit in units:
        limit, paths = limits.get(unit), dropins.get(unit, [])
        if unit in own and (common in paths or own[unit] not in paths):
            problems.append(f"{unit}: not in its own sandbox {own[unit]} (drop-ins: {' '.join(paths) or 'none'})")
        elif unit not in own and common not in paths:
            problems.append(f"{unit}: not in the common sandbox {common} (drop-ins: {' '.join(paths) or 'none'})")
        if unit not in scores:
            problems.append(f"{unit}: systemd-analyze security gave no score ({out.stderr.strip()[-200:]})")
        elif limit is None:
            problems.append(f"{unit}: exposure {scores[unit]}, and govbaseline sets no limit for a unit of this "
                            "name (not one of the baseline's own roles on this host: rename it, or remove it)")
        elif scores[unit] > limit:
            problems.append(f"{unit}: exposure {scores[unit]}, above its limit {limit} "
                            f"(systemd-analyze security {unit}.service lists what is open)")
    older = [line.split()[0] for line in host.run(hostvars["__system_sandbox_stale"]).stdout.splitlines() if line]
    problems += [f"{unit} runs in an older sandbox (started before {common} was written)" for unit in older]
    assert not problems, ("govbaseline services outside their sandbox: " + "; ".join(problems) +
                          ". Converge the host: it writes the sandbox and the units, and restarts what runs in an "
                          "older one")


@pytest.mark.control("SYS-11")
def test_process_accounting_records_every_process(host, hostvars):
    """acct.service is enabled (accounting at boot) and active, and the kernel records processes now:
    the accounting file grows when a command ends (`accton off` by hand leaves the unit active).
    CIS Debian Linux 12 Benchmark v1.1.0 has process accounting beside auditing (6.2 System Auditing:
    who ran what)."""
    area(hostvars, "system_accounting_enabled")
    unit, pacct = hostvars["__system_accounting_unit"], hostvars["__system_accounting_file"]
    state = host.run("systemctl is-enabled %s; systemctl is-active %s", unit, unit).stdout.split()
    assert state[:2] == ["enabled", "active"], (f"{unit} is {' and '.join(state) or 'missing'}: accounting is not "
                                                "on now and at boot (converge the host: --tags sys-11)")
    size = f"stat -c %s {shlex.quote(pacct)}"
    grew = host.run(f"before=$({size}) && /bin/true && after=$({size}) && echo $before $after")
    assert grew.rc == 0, f"{pacct} cannot be read: {grew.stderr.strip()}"
    before, after = (int(n) for n in grew.stdout.split())
    assert after > before, (f"{pacct} did not grow when a command ended ({before} bytes before and after): the "
                            f"kernel records no process though {unit} is active: accton off by hand (restart {unit}, "
                            "or converge the host: --tags sys-11), or its disk is nearly full (the kernel suspends "
                            "accounting below 2% free space, acct(5))")


# SYS-12's probe: a program written to the folder, run; its exit code (126: the kernel refused, noexec).
RUN_FROM = ("f=$(mktemp -p {0} .govbaseline-noexec.XXXXXX) || exit 99; printf '#!/bin/sh\\nexit 0\\n' > \"$f\"; "
            "chmod 700 \"$f\"; \"$f\" 2>/dev/null; rc=$?; rm -f \"$f\"; exit $rc")


# mkinitramfs's working folder as its configuration sets it (mkinitramfs(8): TMPDIR, /var/tmp by default).
INITRAMFS_TMPDIR = ("[ -x /usr/sbin/mkinitramfs ] || exit 0; TMPDIR=; "
                    ". /etc/initramfs-tools/initramfs.conf 2>/dev/null; "
                    "for f in /etc/initramfs-tools/conf.d/*; do [ -f \"$f\" ] && . \"$f\"; done; "
                    # mkinitramfs forgets a TMPDIR it cannot write to (a folder deleted since) and uses /var/tmp.
                    "[ -n \"$TMPDIR\" ] && [ ! -w \"$TMPDIR\" ] && TMPDIR=; "
                    "d=${TMPDIR:-/var/tmp}; echo \"$d $(findmnt -n -o OPTIONS --target \"$d\")\"")


@pytest.mark.control("SYS-12")
def test_temporary_folders_mounted_nodev_nosuid_noexec(host, hostvars):
    """Each folder of ``system_temporary_mounts`` is a mount of its own whose options, as the kernel
    holds them now (proc_pid_mountinfo(5)), include ``system_temporary_mount_options``; with noexec a
    program written there is refused (exit 126). Outside a container they are its options at boot
    too: /etc/fstab's line (not noauto), or the unit or drop-in of /etc/systemd/system that overrides
    it, and the unit not masked; and mkinitramfs does not build in a noexec folder (an initramfs
    built there can lack what boots the host). In a container its manager mounts the folders: their
    options now are checked. CIS Debian Linux 12 Benchmark v1.1.0 1.1.2.1 (/tmp), 1.1.2.2 (/dev/shm),
    1.1.2.5 (/var/tmp) (nodev, nosuid, noexec)."""
    area(hostvars, "system_mounts_enabled")
    wanted = hostvars["system_temporary_mount_options"]
    container = in_container(host)
    mountinfo = host.run("cat /proc/self/mountinfo")
    assert mountinfo.rc == 0, f"/proc/self/mountinfo cannot be read: {mountinfo.stderr.strip()}"
    problems = []
    for path in hostvars["system_temporary_mounts"]:
        mount = mounted(mountinfo.stdout, path)
        if mount is None:
            problems.append(f"{path} is no mount of its own (it lies on its parent's file system), so it has no "
                            "options of its own")
        elif missing := [option for option in wanted if option not in mount[1]]:
            problems.append(f"{path} is mounted {','.join(mount[1])} now: {', '.join(missing)} missing")
        if mount is not None and "noexec" in wanted:
            ran = host.run(RUN_FROM.format(shlex.quote(path)))
            if ran.rc == 0:
                problems.append(f"a program written to {path} ran")
            elif ran.rc == 99:
                problems.append(f"no file could be written to {path} to try running it")
        if not container:
            problems += boot_mount_problems(host, path, wanted)
    if not container and "noexec" in wanted:
        folder, _, options = host.run(INITRAMFS_TMPDIR).stdout.strip().partition(" ")
        if folder and not options:
            problems.append(f"mkinitramfs builds in {folder}, whose mount options cannot be read")
        elif "noexec" in options.split(","):
            problems.append(f"mkinitramfs builds in {folder}, mounted noexec: an initramfs built there can lack "
                            "what boots the host (mkinitramfs(8): TMPDIR)")
    how = (f"in a {container} container its manager mounts them: ask it for {','.join(wanted)} (podman run --tmpfs "
           f"FOLDER:rw,{','.join(wanted)})" if container else "converge the host (--tags sys-12)")
    assert not problems, "temporary folders where what is written may run or act: " + "; ".join(problems) + f"; {how}"


def boot_mount_problems(host, path: str, wanted: list[str]) -> list[str]:
    """What keeps ``path`` from being mounted with ``wanted`` at the next boot: its unit masked, the
    unit or drop-in of /etc/systemd/system that overrides fstab without them, or fstab's line
    missing, noauto or without them."""
    unit = mount_unit(path)
    shown = host.run("systemctl show -p Id -p LoadState -p FragmentPath -p DropInPaths -p Options %s", unit).stdout
    props = unit_properties(shown).get(unit, {})
    if props.get("LoadState") == "masked":
        return [f"{unit} is masked: nothing mounts {path} at boot"]
    if override := unit_override(props):
        # As its files say: systemctl show's Options is the live mount's while it is mounted.
        written = host.run("systemctl cat %s", unit).stdout
        options, source = configured_options(f"### {unit}\n{written}").get(unit, ""), override
    else:
        boot = host.run("findmnt --fstab -n -o OPTIONS --mountpoint %s", path)
        if boot.rc != 0 or not boot.stdout.strip():
            return [f"/etc/fstab has no line for {path}: it is not mounted {','.join(wanted)} at boot"]
        options, source = boot.stdout.strip(), "/etc/fstab"
    problems = [f"{source} mounts {path} {options or 'with no options'} at boot: {', '.join(missing)} missing"
                for missing in [[option for option in wanted if not in_force(options.split(","), option)]] if missing]
    if "noauto" in options.split(","):
        problems.append(f"{source} has noauto for {path}: nothing mounts it at boot")
    return problems
