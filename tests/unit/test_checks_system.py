"""SYS-08's checks (govbaseline.checks.test_system) on what dpkg, apt-config and grep print on a host
(formats taken from Debian 12/13's dpkg 1.21/1.22 and apt 2.6/3.0). The end-to-end proof is
tests/lab/test_system_e2e.py: each check fails on a lab host where its promise is broken."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import yaml

from govbaseline.checks import test_system as checks
from govbaseline.paths import ROLES_DIR
from govbaseline.validation import role_vars

files_check = checks.test_installed_files_match_their_packages
sources_check = checks.test_packages_only_from_signed_sources
filtered_out = checks.filtered_out


class Host:
    """Answers each command with the first canned output whose key it contains."""

    def __init__(self, answers: dict[str, tuple[str, int]]) -> None:
        self.answers = answers
        self.commands: list[str] = []

    def run(self, command: str, *args: str):
        command = command % args if args else command
        self.commands.append(command)
        for key, (stdout, rc) in self.answers.items():
            if key in command:
                return SimpleNamespace(stdout=stdout, stderr="dpkg: error: broken" if rc == 2 else "", rc=rc)
        return SimpleNamespace(stdout="", stderr="", rc=0)


def hostvars(**overrides):
    """The role's defaults with the overrides, and its internal values (vars/main.yml), as verify gives them."""
    internal = yaml.safe_load((ROLES_DIR / "system" / "vars" / "main.yml").read_text())
    return {**internal, **role_vars("system", overrides)}


VERIFY = """??5?????? c /etc/login.defs
??5??????   /usr/share/common-licenses/GPL-3
missing     /usr/share/doc/base-files/README
missing     /usr/share/common-licenses/GPL-2
missing     /root/.profile (Permission denied)
??5??????   /bin/vendor-hotfix
??5??????   /usr/bin/pg_config.libpq-dev
"""
OWNERS = """base-files: /usr/share/common-licenses/GPL-2
base-files: /usr/share/common-licenses/GPL-3
base-files: /root/.profile
diversion by postgresql-common to: /usr/bin/pg_config.libpq-dev
"""


def test_changed_and_missing_files_are_named_with_their_packages_sorted():
    host = Host({"dpkg --verify": (VERIFY, 0), "dpkg -S": (OWNERS, 0),
                 "dpkg.cfg": ("# slim image\npath-exclude=/usr/share/doc/*\n"
                              "path-include /usr/share/doc/*/copyright\n", 0)})
    with pytest.raises(AssertionError) as failed:
        files_check(host, hostvars(system_package_verify_exclude=["/usr/bin/vendor-hotfix"]))
    # Not named: the configuration file, the README dpkg's path-exclude left out, the excluded file
    # (recorded as /bin/..., listed as /usr/bin/...). The diverted path has no package to name.
    assert str(failed.value).startswith(
        "installed files differ from their packages: /root/.profile (missing, package base-files); "
        "/usr/bin/pg_config.libpq-dev (content differs, package ?); "
        "/usr/share/common-licenses/GPL-2 (missing, package base-files); "
        "/usr/share/common-licenses/GPL-3 (content differs, package base-files). Find out who changed them")


def test_a_host_whose_files_match_passes_and_dpkg_failing_fails():
    files_check(Host({"dpkg --verify": ("??5?????? c /etc/issue\n", 0)}), hostvars())
    with pytest.raises(AssertionError, match=r"dpkg --verify failed \(2\): dpkg: error: broken"):
        files_check(Host({"dpkg --verify": ("", 2)}), hostvars())
    with pytest.raises(AssertionError, match=r"did not finish in 120 s .*changed so far: /usr/sbin/x"):
        files_check(Host({"dpkg --verify": ("??5??????   /usr/sbin/x\n", 124)}), hostvars())


def test_the_last_matching_path_filter_decides():
    filters = [("exclude", "/usr/share/doc/*"), ("include", "/usr/share/doc/*/copyright")]
    assert filtered_out("/usr/share/doc/a/README", filters)
    assert not filtered_out("/usr/share/doc/a/copyright", filters)
    assert not filtered_out("/usr/bin/a", filters)


DUMP = '''APT "";
APT::Architecture "amd64";
apt::get::allowunauthenticated "true";
Acquire::AllowInsecureRepositories "0";
Acquire::AllowWeakRepositories "false";
Binary::apt-get::Acquire::AllowDowngradeToInsecureRepositories "yes";
'''


def test_apt_settings_are_read_without_case_and_per_program():
    host = Host({"apt-config dump": (DUMP, 0), "grep -rlsiE": ("/etc/apt/apt.conf.d/local\n", 0)})
    with pytest.raises(AssertionError) as failed:
        sources_check(host, hostvars())
    assert str(failed.value).startswith(
        "apt allows apt::get::allowunauthenticated true, "
        "Binary::apt-get::Acquire::AllowDowngradeToInsecureRepositories yes (set in /etc/apt/apt.conf.d/local)")
    sources_check(Host({"apt-config dump": ('Acquire::AllowInsecureRepositories "0";\n', 0)}), hostvars())


def test_a_source_without_signature_checks_fails():
    host = Host({"grep -H": ("/etc/apt/sources.list.d/x.list:deb [allow-insecure=yes] http://x.gov/ y main\n", 0)})
    with pytest.raises(AssertionError, match=r"without checking signatures from: /etc/apt/sources.list.d/x.list:1: "):
        sources_check(host, hostvars())


# SYS-09: what modprobe -D, modprobe --showconfig and /proc/modules print.
modules_check = checks.test_listed_kernel_modules_cannot_load
BLOCKED = ["cramfs", "usb-storage", "dccp"]


def modules_host(said: dict[str, str], blacklisted=("cramfs", "usb_storage", "dccp"), loaded="", container=""):
    # The host observation first: it reads /proc/modules too (hostfacts.OBSERVE).
    return Host({"systemd-detect-virt": (f"container={container}\n", 0),
                 # Each action ended by the unit separator, as tr writes the lines modprobe printed.
                 "modprobe -D": ("".join(f"{m}\t{text.replace(chr(10), chr(31))}\x1f\n"
                                         for m, text in said.items()), 0),
                 "--showconfig": ("".join(f"blacklist {m}\n" for m in blacklisted), 0),
                 "/proc/modules": (loaded, 0)})


def test_blocked_modules_pass_and_each_way_round_the_block_is_named():
    fine = {m: "install /bin/false" for m in BLOCKED}
    modules_check(modules_host(fine), hostvars(system_blocked_modules=BLOCKED))
    # On a real kernel the modules a blocked one depends on come first (hfs needs cdrom): loaded,
    # harmless; the blocked module's own action is the last.
    deps = {**fine, "cramfs": "insmod /lib/modules/6.12.0/kernel/drivers/cdrom/cdrom.ko.xz \ninstall /bin/false "}
    modules_check(modules_host(deps), hostvars(system_blocked_modules=BLOCKED))
    loaded = "dccp 53248 0 - Live 0x0000000000000000\nnf_tables 360448 1 - Live 0x0\n"
    broken = {**fine, "cramfs": "install /bin/false || /sbin/modprobe --ignore-install cramfs",
              "usb-storage": "insmod /lib/modules/6.12.0/kernel/drivers/usb/storage/usb-storage.ko.xz"}
    with pytest.raises(AssertionError) as failed:
        modules_check(modules_host(broken, blacklisted=("cramfs",), loaded=loaded),
                      hostvars(system_blocked_modules=BLOCKED))
    message = str(failed.value)
    assert "cramfs is not blocked (modprobe -D says: install /bin/false || /sbin/modprobe --ignore-install" in message
    assert "usb-storage is not blocked (modprobe -D says: insmod " in message
    assert "usb-storage is not blacklisted" in message and "dccp is not blacklisted" in message
    assert "dccp is loaded now: unload it (modprobe -r dccp" in message and "cramfs is loaded" not in message


def test_a_builtin_module_is_named_and_a_containers_loaded_modules_are_the_machines():
    said = {"cramfs": "builtin cramfs", "usb-storage": "install /bin/false", "dccp": "install /bin/false"}
    with pytest.raises(AssertionError, match="cramfs is built into the kernel: modprobe cannot block it"):
        modules_check(modules_host(said), hostvars(system_blocked_modules=BLOCKED))
    fine = {m: "install /bin/false" for m in BLOCKED}
    # In a container /proc/modules lists the machine's modules: not the host's to unload.
    modules_check(modules_host(fine, loaded="dccp 53248 0 - Live 0x0\n", container="podman"),
                  hostvars(system_blocked_modules=BLOCKED))


sandbox_check = checks.test_own_services_sandboxed_within_their_exposure_limits


def every_role():
    """The system role's values beside every role's internal ones (their unit names): a web server
    with every role, as verify gives its hostvars."""
    internal = {}
    for path in sorted(ROLES_DIR.glob("*/vars/main.yml")):
        internal.update(yaml.safe_load(path.read_text()) or {})
    return {**internal, **hostvars()}
UNITS = """govbaseline-av-scan.service static -
govbaseline-backup@.service static -
govbaseline-pull.service static -
govbaseline-tamper.service enabled enabled
"""


def analyze(**scores: float) -> str:
    """systemd-analyze security's last line per unit (systemd 252's and 257's wording)."""
    return "".join("  NAME  DESCRIPTION  EXPOSURE\n✗ PrivateNetwork=  Service has access to the host's network"
                   f"  0.5\n\n→ Overall exposure level for {unit.replace('_', '-')}.service: {score:.1f} OK 🙂\n"
                   for unit, score in scores.items())


COMMON = "/etc/systemd/system/govbaseline-.service.d/50-govbaseline-sandbox.conf"
PULL_OWN = "/etc/systemd/system/govbaseline-pull.service.d/50-govbaseline-sandbox.conf"


def shown(**dropins: str) -> str:
    """systemctl show -p Id -p DropInPaths for each unit (blocks separated by an empty line)."""
    return "\n\n".join(f"Id={unit.replace('_', '-')}.service\nDropInPaths={paths}" for unit, paths in dropins.items())


SANDBOXED = shown(govbaseline_av_scan=COMMON, govbaseline_pull=PULL_OWN, govbaseline_tamper=COMMON,
                  govbaseline_custom=COMMON, govbaseline_lynis=COMMON)


def test_services_within_their_limits_pass_and_templates_are_left_out():
    host = Host({"list-unit-files": (UNITS, 0), "-p DropInPaths": (SANDBOXED, 0),
                 "systemd-analyze security": (analyze(govbaseline_av_scan=1.9, govbaseline_pull=9.6,
                                                      govbaseline_tamper=2.4), 0)})
    sandbox_check(host, every_role())
    assert ("systemd-analyze security --no-pager govbaseline-av-scan.service govbaseline-pull.service "
            "govbaseline-tamper.service") in host.commands


def test_a_service_above_its_limit_an_unknown_one_and_one_without_a_score_are_named():
    units = UNITS + "govbaseline-custom.service static -\ngovbaseline-lynis.service static -\n"
    host = Host({"list-unit-files": (units, 0), "-p DropInPaths": (SANDBOXED, 0),
                 "systemd-analyze security": (analyze(govbaseline_av_scan=9.6, govbaseline_pull=9.6,
                                                      govbaseline_tamper=2.4, govbaseline_custom=1.0), 1)})
    with pytest.raises(AssertionError) as failed:
        sandbox_check(host, every_role())
    message = str(failed.value)
    assert "govbaseline-av-scan: exposure 9.6, above its limit 3.0" in message
    assert "govbaseline-custom: exposure 1.0, and govbaseline sets no limit" in message
    assert "govbaseline-lynis: systemd-analyze security gave no score" in message
    # Lynis in the common sandbox instead of its own (the check would pass on its score alone).
    assert "govbaseline-lynis: not in its own sandbox /etc/systemd/system/govbaseline-lynis.service.d" in message
    assert "tamper" not in message and "pull" not in message and "Converge the host" in message


def test_a_service_without_the_common_sandbox_and_one_running_in_an_older_one_are_named():
    host = Host({"list-unit-files": (UNITS, 0),
                 "-p DropInPaths": (shown(govbaseline_av_scan="", govbaseline_pull=f"{COMMON} {PULL_OWN}",
                                          govbaseline_tamper=COMMON), 0),
                 "systemd-analyze security": (analyze(govbaseline_av_scan=2.5, govbaseline_pull=9.6,
                                                      govbaseline_tamper=2.4), 0),
                 "stat -c %Y": ("govbaseline-tamper.service ready\n", 0)})
    with pytest.raises(AssertionError) as failed:
        sandbox_check(host, every_role())
    message = str(failed.value)
    assert f"govbaseline-av-scan: not in the common sandbox {COMMON} (drop-ins: none)" in message
    assert f"govbaseline-pull: not in its own sandbox {PULL_OWN}" in message
    assert f"govbaseline-tamper.service runs in an older sandbox (started before {COMMON} was written)" in message


def test_no_sandbox_check_where_the_area_is_switched_off():
    with pytest.raises(pytest.skip.Exception, match="system_sandbox_enabled is false"):
        sandbox_check(Host({}), hostvars(system_sandbox_enabled=False))


accounting_check = checks.test_process_accounting_records_every_process


@pytest.mark.parametrize(("answers", "expected"), [
    ({"is-enabled": ("disabled\nactive\n", 0)}, "acct.service is disabled and active: accounting is not on"),
    ({"is-enabled": ("enabled\ninactive\n", 3)}, "acct.service is enabled and inactive"),
    ({"is-enabled": ("enabled\nactive\n", 0), "stat -c": ("640 640\n", 0)},
     "/var/log/account/pacct did not grow when a command ended (640 bytes before and after)"),
])
def test_accounting_off_now_or_at_boot_is_named(answers, expected):
    with pytest.raises(AssertionError, match=re.escape(expected)):
        accounting_check(Host(answers), hostvars(system_accounting_enabled=True))


def test_accounting_that_records_passes_and_is_not_applicable_when_off():
    host = Host({"is-enabled": ("enabled\nactive\n", 0), "stat -c": ("640 704\n", 0)})
    accounting_check(host, hostvars(system_accounting_enabled=True))
    assert "/bin/true" in host.commands[-1]
    with pytest.raises(pytest.skip.Exception, match="system_accounting_enabled is false"):
        accounting_check(Host({}), hostvars())


mounts_check = checks.test_temporary_folders_mounted_nodev_nosuid_noexec
HARDENED = ("21 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
            "24 22 0:22 / /dev/shm rw,nosuid,nodev,noexec shared:3 - tmpfs tmpfs rw\n"
            "60 21 0:30 / /tmp rw,nosuid,nodev,noexec shared:30 - tmpfs tmpfs rw,size=1020000k\n"
            "61 21 254:1 /var/tmp /var/tmp rw,nosuid,nodev,noexec,relatime shared:31 - ext4 /dev/vda1 rw\n")


def mounts_host(mountinfo=HARDENED, ran=(126, 126, 126), fstab=("bind,nodev,nosuid,noexec",) * 3, units=None,
                container="", initramfs="/var/lib/govbaseline/mkinitramfs rw,relatime", files=None):
    """A host answering SYS-12's check: the kernel's mounts, the exit code of a program run in /tmp,
    /var/tmp and /dev/shm, fstab's options for each, what systemctl shows of their units (``units``:
    unit -> properties; others not found) and prints of their files (``files``), and mkinitramfs's
    folder with its mount options."""
    folders = ("/tmp", "/var/tmp", "/dev/shm")
    return Host({"systemd-detect-virt": (f"container={container}\n", 0),
                 "cat /proc/self/mountinfo": (mountinfo, 0),
                 **{f"mktemp -p {f} ": ("", rc) for f, rc in zip(folders, ran, strict=True)},
                 **{f"--mountpoint {f}": (options, 0 if options else 1)
                    for f, options in zip(folders, fstab, strict=True)},
                 **{f"-p Options {unit}": (f"Id={unit}\n{props}", 0) for unit, props in (units or {}).items()},
                 **{f"systemctl cat {unit}": (text, 0) for unit, text in (files or {}).items()},
                 "systemctl show": ("LoadState=not-found\nFragmentPath=\nDropInPaths=\nOptions=\n", 0),
                 "mkinitramfs": (initramfs, 0)})


def test_temporary_folders_mounted_with_the_options_now_and_at_boot_pass():
    host = mounts_host()
    mounts_check(host, hostvars())
    assert sum("mktemp -p" in c for c in host.commands) == 3  # a program tried in each folder


def test_a_folder_remounted_exec_one_missing_at_boot_and_an_overriding_unit_are_named():
    remounted = HARDENED.replace("/tmp rw,nosuid,nodev,noexec shared:30", "/tmp rw,nosuid,nodev shared:30")
    # The administrator's tmp.mount: systemctl show's Options is the live mount's, its file's the boot's.
    own = "LoadState=loaded\nFragmentPath=/etc/systemd/system/tmp.mount\nDropInPaths=\nOptions=rw,nosuid,nodev,noexec"
    host = mounts_host(remounted, ran=(0, 126, 126), fstab=("bind,nodev,nosuid,noexec", "", "defaults,nosuid,noauto"),
                       units={"tmp.mount": own}, files={"tmp.mount": "[Mount]\nOptions=mode=1777,nosuid,nodev\n"},
                       initramfs="/var/tmp rw,nosuid,nodev,noexec,relatime")
    with pytest.raises(AssertionError) as err:
        mounts_check(host, hostvars())
    message = err.value.args[0]
    assert "/tmp is mounted rw,nosuid,nodev now: noexec missing" in message
    assert "a program written to /tmp ran" in message
    assert "/etc/systemd/system/tmp.mount mounts /tmp mode=1777,nosuid,nodev at boot: noexec missing" in message
    assert "/etc/fstab has no line for /var/tmp: it is not mounted nodev,nosuid,noexec at boot" in message
    assert "/etc/fstab mounts /dev/shm defaults,nosuid,noauto at boot: nodev, noexec missing" in message
    assert "/etc/fstab has noauto for /dev/shm: nothing mounts it at boot" in message
    assert "mkinitramfs builds in /var/tmp, mounted noexec" in message
    assert "; converge the host (--tags sys-12)" in message


def test_a_folder_that_is_no_mount_fails_and_a_containers_boot_is_its_managers():
    # A lab container as podman starts it without --tmpfs for /var/tmp: the folder lies on the container's root.
    container = HARDENED.replace("61 21 254:1 /var/tmp /var/tmp rw,nosuid,nodev,noexec,relatime shared:31 - ext4 "
                                 "/dev/vda1 rw\n", "")
    host = mounts_host(container, fstab=("", "", ""), container="podman")
    with pytest.raises(AssertionError) as err:
        mounts_check(host, hostvars())
    message = err.value.args[0]
    assert "/var/tmp is no mount of its own (it lies on its parent's file system)" in message
    assert "in a podman container its manager mounts them: ask it for nodev,nosuid,noexec (podman run --tmpfs " \
           "FOLDER:rw,nodev,nosuid,noexec)" in message
    assert "fstab" not in message and not any("findmnt" in c or "mkinitramfs" in c for c in host.commands)
    assert sum("mktemp -p" in c for c in host.commands) == 2  # no program tried where there is no mount


def test_only_the_listed_folders_and_options_are_wanted_and_none_where_switched_off():
    no_exec_rule = HARDENED.replace("nosuid,nodev,noexec", "nosuid")
    mounts_check(mounts_host(no_exec_rule, ran=(0, 0, 0), fstab=("nosuid",) * 3),
                 hostvars(system_temporary_mount_options=["nosuid"]))
    with pytest.raises(pytest.skip.Exception, match="system_mounts_enabled is false"):
        mounts_check(mounts_host(no_exec_rule), hostvars(system_mounts_enabled=False))


def test_a_masked_unit_fails_and_a_unit_of_the_administrator_with_the_options_passes():
    masked = {"var-tmp.mount": "LoadState=masked\nFragmentPath=\nDropInPaths=\nOptions="}
    with pytest.raises(AssertionError) as err:
        mounts_check(mounts_host(units=masked), hostvars())
    assert "var-tmp.mount is masked: nothing mounts /var/tmp at boot" in err.value.args[0]
    edited = {"tmp.mount": "LoadState=loaded\nFragmentPath=/usr/lib/systemd/system/tmp.mount\n"
                           "DropInPaths=/etc/systemd/system/tmp.mount.d/50-size.conf\n"
                           "Options=mode=1777,strictatime,nosuid,nodev,noexec,size=2G"}
    written = ("[Mount]\nOptions=mode=1777,strictatime,nosuid,nodev,size=50%%\n"
               "[Mount]\nOptions=mode=1777,nosuid,nodev,noexec,size=2G")
    mounts_check(mounts_host(fstab=("", "bind,nodev,nosuid,noexec", "nodev,nosuid,noexec"), units=edited,
                             files={"tmp.mount": written}), hostvars())
    # An opposite after the option undoes it (mount(8) takes the last); a lost TMPDIR means /var/tmp.
    with pytest.raises(AssertionError) as err:
        mounts_check(mounts_host(fstab=("bind,nodev,nosuid,noexec,exec",) * 3, initramfs="/var/tmp"), hostvars())
    assert "/etc/fstab mounts /tmp bind,nodev,nosuid,noexec,exec at boot: noexec missing" in err.value.args[0]
    assert "mkinitramfs builds in /var/tmp, whose mount options cannot be read" in err.value.args[0]


def test_no_unit_of_the_lab_or_the_tests_takes_the_sandboxed_prefix():
    """SYS-10's drop-in applies to every govbaseline-*.service (systemd cuts the name at a dash): a
    lab or test unit of that prefix runs in the sandbox too (only local sockets: a test's HTTP
    listener could not bind, CI stop 29) and verify names it an unknown unit. Lab and test units are
    named lab-* or e2e-*."""
    from govbaseline.paths import PACKAGE_DIR

    root = PACKAGE_DIR.parent.parent
    transient = re.compile(r"--unit[= ]['\"]?govbaseline-[\w@.-]*")  # systemd-run's units, in tests and the lab
    installed = re.compile(r"systemd/system/govbaseline-[\w@.-]*")    # unit files the lab writes
    found = [f"{path.relative_to(root)}: {match.group(0)}"
             for path in [*(root / "tests").rglob("*.py"), *(PACKAGE_DIR / "lab").rglob("*.py")]
             for pattern in ([transient, installed] if PACKAGE_DIR / "lab" in path.parents else [transient])
             for match in pattern.finditer(path.read_text(encoding="utf-8"))]
    assert not found, found
