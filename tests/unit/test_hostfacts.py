"""What a run derives from the host before any change (govbaseline.hostfacts), without a host."""

from __future__ import annotations

import json

import pytest

from govbaseline import hostfacts
from govbaseline.validation import ValidationError, role_vars

V4 = [{"dst": "default", "gateway": "10.0.0.1", "dev": "eth0", "protocol": "static", "flags": []}]
V6 = [{"dst": "default", "gateway": "fd00::1", "dev": "ens3", "metric": 1024, "flags": [], "pref": "medium"}]
LINKS = [{"ifindex": 1, "ifname": "lo"}, {"ifindex": 2, "ifname": "eth0"}, {"ifindex": 3, "ifname": "ens3"}]


# /proc/self/mountinfo and /etc/fstab of a Debian 12 machine as installed (/tmp and /var/tmp on the
# root file system, /dev/shm as systemd mounts it), and once SYS-12 is in force.
ROOT_MOUNT = "21 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro\n"
SHM = "24 22 0:22 / /dev/shm rw,nosuid,nodev shared:3 - tmpfs tmpfs rw,inode64\n"
INSTALLED_FSTAB = ("# <file system> <mount point>   <type>  <options>       <dump>  <pass>\n"
                   "UUID=4e1c / ext4 errors=remount-ro 0 1\n")
HARDENED_MOUNTS = (ROOT_MOUNT + SHM.replace("nosuid,nodev", "nosuid,nodev,noexec")
                   + "60 21 254:1 /tmp /tmp rw,nosuid,nodev,noexec,relatime shared:30 - ext4 /dev/vda1 rw\n"
                   + "61 21 254:1 /var/tmp /var/tmp rw,nosuid,nodev,noexec,relatime shared:31 - ext4 /dev/vda1 rw\n")
FOLDERS = "/tmp:folder /var/tmp:folder /dev/shm:folder"
# What systemctl show says of the three mount units on that machine (Debian 12: no tmp.mount in use).
UNITS = {"tmp.mount": "LoadState=not-found\nFragmentPath=\nDropInPaths=\nOptions=",
         "var-tmp.mount": "LoadState=not-found\nFragmentPath=\nDropInPaths=\nOptions=",
         "dev-shm.mount": "LoadState=loaded\nFragmentPath=\nDropInPaths=\nOptions=rw,nosuid,nodev"}


def mounts(mountinfo: str, fstab: str, units: dict | None = None, folders: str = FOLDERS,
           files: dict | None = None) -> str:
    """OBSERVE's lines about mounts (base64 as it writes them); ``units`` replace UNITS' answers of
    systemctl show, ``files`` are what systemctl cat prints of a unit."""
    import base64

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    shown = "".join(f"Id={unit}\n{props}\n\n" for unit, props in {**UNITS, **(units or {})}.items())
    cat = "".join(f"### {unit}\n{text}\n" for unit, text in (files or {}).items())
    return (f"mountinfo={b64(mountinfo)}\nfstab={b64(fstab)}\nfstab_size={len(fstab.encode())}\n"
            f"mount_units={b64(shown)}\nfolders={folders}\nmount_unit_files={b64(cat)}\n")


def answer(route4=(), route6=(), links=LINKS, systemd="yes", security="2") -> str:
    """What OBSERVE prints on a host (an empty family prints nothing, as ip does without IPv6); its
    temporary folders mounted as SYS-12 wants (hardened_fstab)."""
    return (f"route4={json.dumps(list(route4)) if route4 else ''}\nroute6={json.dumps(list(route6))}\n"
            f"links={json.dumps(links)}\nsystemd={systemd}\nsecurity={security}\n"
            + mounts(HARDENED_MOUNTS, hardened_fstab()))


def hardened_fstab() -> str:
    """INSTALLED_FSTAB as SYS-12's converge leaves it on that Debian 12 machine."""
    seen = {**hostfacts.parse(mounts(ROOT_MOUNT + SHM, INSTALLED_FSTAB)), "container": ""}
    return hostfacts.mount_options(role_vars("system", {}), seen)[0]["__system_fstab"]


# What decide derives for the system role on a host where nothing is left to mount (answer()).
SETTLED = {"__system_container": "", "__system_fstab": None, "__system_mounts_live": []}


def ids(**values) -> dict:
    return role_vars("ids", values)


def test_the_ipv4_default_route_names_the_interface():
    assert hostfacts.decide({"ids": ids()}, hostfacts.parse(answer(V4, V6))) == {"__ids_iface": "eth0"}


def test_an_ipv6_only_host_gets_the_interface_of_its_ipv6_default_route():
    # The example: no IPv4 default route used to stop the run half-way with a Jinja error.
    assert hostfacts.decide({"ids": ids()}, hostfacts.parse(answer(route6=V6))) == {"__ids_iface": "ens3"}


def test_the_lowest_metric_wins():
    routes = [{**V6[0], "dev": "eth0", "metric": 2048}, {**V6[0], "metric": 100}]
    assert hostfacts.default_interface(hostfacts.parse(answer(route6=routes))) == "ens3"


def test_a_host_without_any_default_route_is_refused_naming_the_variable():
    with pytest.raises(ValidationError) as err:
        hostfacts.decide({"ids": ids()}, hostfacts.parse(answer()))
    assert "role ids:" in str(err.value) and "ids_suricata_interface" in str(err.value)
    assert "eth0, ens3" in str(err.value)  # the interfaces it could be, without lo


def test_a_named_interface_needs_no_route():
    assert hostfacts.decide({"ids": ids(ids_suricata_interface="ens3")}, hostfacts.parse(answer())) == \
        {"__ids_iface": "ens3"}


def test_a_named_interface_the_host_lacks_is_refused():
    with pytest.raises(ValidationError, match="ids_suricata_interface is eth9, but this host has no such interface"):
        hostfacts.decide({"ids": ids(ids_suricata_interface="eth9")}, hostfacts.parse(answer(V4)))


@pytest.mark.parametrize("values", [{"ids_enabled": False}, {"ids_suricata_enabled": False}])
def test_no_route_is_needed_when_suricata_is_off(values):
    assert hostfacts.decide({"ids": ids(**values)}, hostfacts.parse(answer())) == {}


def test_a_host_without_the_security_archive_is_refused_before_patching():
    values = role_vars("patching", {})
    with pytest.raises(ValidationError, match="role patching: none of apt's sources is the Debian security archive"):
        hostfacts.decide({"patching": values}, hostfacts.parse(answer(V4, security="0")))
    assert hostfacts.decide({"patching": {**values, "patching_enabled": False}},
                            hostfacts.parse(answer(V4, security="0"))) == {}


def test_a_host_without_systemd_is_refused():
    with pytest.raises(ValidationError, match="needs systemd"):
        hostfacts.decide({"audit": role_vars("audit", {})}, hostfacts.parse(answer(V4, systemd="no")))


def test_every_problem_of_the_baseline_at_once():
    with pytest.raises(ValidationError) as err:
        hostfacts.decide({"ids": ids(), "patching": role_vars("patching", {})},
                         hostfacts.parse(answer(security="0")))
    assert [p.split(":")[0] for p in err.value.problems] == ["role ids", "role patching"]


def test_an_unreadable_answer_reads_as_nothing():
    seen = hostfacts.parse("route4=[{broken\nlinks=not json\nsecurity=\n")
    assert seen == {"routes4": [], "routes6": [], "interfaces": [], "systemd": False, "security_sources": 0,
                    "container": "", "architecture": "", "audit_locked": False,
                    "audit_rules": (None, ""), "sources": "", "modules_used": [], "fstypes": [],
                    "mountinfo": "", "fstab": "", "fstab_size": "", "mount_units": {}, "unit_options": {},
                    "folders": {}}


def test_the_audit_role_learns_whether_it_runs_in_a_container_and_on_which_architecture():
    seen = hostfacts.parse(answer(V4) + "container=podman\narch=x86_64\naudit_enabled=\n")
    assert hostfacts.decide({"audit": role_vars("audit", {})}, seen) == {"__audit_container": "podman",
                                                                        "__audit_b32": True, "__audit_locked": False,
                                                                        "__audit_reload": False}
    seen = hostfacts.parse(answer(V4) + "container=none\narch=aarch64\naudit_enabled=1\n")
    assert hostfacts.decide({"audit": role_vars("audit", {})}, seen) == {"__audit_container": "",
                                                                        "__audit_b32": False, "__audit_locked": False,
                                                                        "__audit_reload": False}


def test_the_audit_role_learns_that_the_kernel_locked_its_rules_until_reboot():
    # auditctl -s prints "enabled 2" once -e 2 was loaded (audit_rules_immutable).
    seen = hostfacts.parse(answer(V4) + "container=none\narch=x86_64\naudit_enabled=2\n")
    assert hostfacts.decide({"audit": role_vars("audit", {})}, seen)["__audit_locked"] is True


def test_the_audit_role_loads_the_rules_again_when_the_kernel_lost_them():
    import base64

    def reload(container: str, loaded: str | None, installed: str) -> bool:
        lines = f"container={container}\naudit_installed={base64.b64encode(installed.encode()).decode()}\n"
        if loaded is not None:  # written only where auditctl answers
            lines += f"audit_loaded={base64.b64encode(loaded.encode()).decode()}\n"
        seen = hostfacts.parse(answer(V4) + lines)
        return hostfacts.decide({"audit": role_vars("audit", {})}, seen)["__audit_reload"]

    rules = "-w /etc/passwd -p wa -k identity\n-w /var/www -p wa -k webroot\n"
    assert reload("none", "No rules\n", rules) is True  # auditctl -D
    assert reload("none", rules.replace("/var/www", "/srv/old"), rules) is True  # an older set, same count
    assert reload("none", rules, rules) is False
    assert reload("none", None, rules) is False  # auditd not installed yet: nothing to ask
    assert reload("podman", "No rules\n", rules) is False  # no audit system of its own here


ACCOUNTS = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
backup:x:34:34:backup:/var/backups:/bin/bash
postgres:x:110:118::/var/lib/postgresql:/bin/sh
clamav:x:995:995::/var/lib/clamav:/bin/false
lp:x:7:7:lp:/var/spool/lpd:
nobody:x:65534:65534:nobody:/nonexistent:/usr/bin/bash
alice:x:1000:1000::/home/alice:/bin/bash
==
# /etc/shells: valid login shells
/bin/sh
/bin/bash
/usr/bin/bash
==
"""


def test_system_accounts_with_a_login_shell_are_found():
    # UID_MIN unset: 1000. sync's /bin/sync and clamav's /bin/false are not login shells.
    assert hostfacts.accounts_with_shell(ACCOUNTS, ["root", "sync"]) == ["backup", "lp", "nobody", "postgres"]
    # lp's empty shell field is /bin/sh.
    assert hostfacts.accounts_with_shell(ACCOUNTS, ["root", "postgres", "lp"]) == ["backup", "nobody"]
    # A UID_MIN of 100 makes postgres (110) a person's account.
    assert hostfacts.accounts_with_shell(ACCOUNTS + "100\n", ["root", "lp"]) == ["backup", "nobody"]


SOURCES = """/etc/apt/sources.list:deb http://deb.debian.org/debian trixie main
/etc/apt/sources.list:# deb [trusted=yes] http://old.example.gov/ trixie main
/etc/apt/sources.list:deb [arch=amd64 trusted=yes] http://local.example.gov/ trixie main
/etc/apt/sources.list.d/vendor.list:deb [ signed-by=/usr/share/keyrings/v.gpg trusted=true ] http://v.gov/ x main
/etc/apt/sources.list.d/debian.sources:Types: deb
/etc/apt/sources.list.d/debian.sources:URIs: http://deb.debian.org/debian
/etc/apt/sources.list.d/debian.sources:Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
/etc/apt/sources.list.d/debian.sources:
/etc/apt/sources.list.d/debian.sources:Types: deb
/etc/apt/sources.list.d/debian.sources:URIs: http://mirror.example.gov/debian
/etc/apt/sources.list.d/debian.sources:Trusted: yes
/etc/apt/sources.list.d/old.sources:Types: deb
/etc/apt/sources.list.d/old.sources:Enabled: no
/etc/apt/sources.list.d/old.sources:Trusted: yes
/etc/apt/sources.list.d/signed.sources:Types: deb
/etc/apt/sources.list.d/signed.sources:Trusted: no
/etc/apt/sources.list.d/weak.sources:Types: deb
/etc/apt/sources.list.d/weak.sources:Enabled: perhaps
/etc/apt/sources.list.d/weak.sources:Allow-Weak: yes
/etc/apt/sources.list.d/quoted.list:deb [trusted="yes"] http://q.gov/ x main
/etc/apt/sources.list.d/quoted.list:deb [allow-insecure=%79es] http://i.gov/ x main
/etc/apt/sources.list.d/quoted.list:deb [allow-downgrade-to-insecure=no check-valid-until=no] http://d.gov/ x main
"""


def test_sources_that_skip_signature_checks_are_found_in_both_formats():
    # sources.list(5): [trusted=yes] or allow-insecure, allow-weak, allow-downgrade-to-insecure (any of
    # apt's true words) in a one-line entry, the same fields in a deb822 stanza; a commented entry and
    # a disabled stanza are no source.
    assert hostfacts.trusted_sources(SOURCES) == [
        "/etc/apt/sources.list:3: deb [arch=amd64 trusted=yes] http://local.example.gov/ trixie main",
        "/etc/apt/sources.list.d/vendor.list:1: deb [ signed-by=/usr/share/keyrings/v.gpg trusted=true ] "
        "http://v.gov/ x main",
        "/etc/apt/sources.list.d/debian.sources:7: Trusted: yes",
        # apt disables a stanza only for a false word; quotes and %XX escapes are undone.
        "/etc/apt/sources.list.d/weak.sources:3: Allow-Weak: yes",
        '/etc/apt/sources.list.d/quoted.list:1: deb [trusted="yes"] http://q.gov/ x main',
        "/etc/apt/sources.list.d/quoted.list:2: deb [allow-insecure=%79es] http://i.gov/ x main"]
    assert hostfacts.trusted_sources(SOURCES.split("/etc/apt/sources.list:deb [arch")[0]) == []


def test_a_host_with_a_trusted_source_is_refused_before_the_system_role_changes_anything():
    import base64
    seen = hostfacts.parse(answer(V4) + f"sources={base64.b64encode(SOURCES.encode()).decode()}\n")
    with pytest.raises(ValidationError) as err:
        hostfacts.decide({"system": role_vars("system", {})}, seen)
    assert "role system: apt installs from /etc/apt/sources.list:3: deb [arch=amd64 trusted=yes]" in str(err.value)
    assert "system_package_integrity_enabled: false" in str(err.value)
    off = role_vars("system", {"system_package_integrity_enabled": False})
    assert hostfacts.decide({"system": off}, seen) == SETTLED


def test_the_observation_reads_this_machines_sources(tmp_path):
    """OBSERVE's sources line is the same text SOURCES_READ prints (the check reads it that way)."""
    import subprocess
    observed = subprocess.run(["sh", "-c", hostfacts.OBSERVE], capture_output=True, text=True, check=False).stdout
    direct = subprocess.run(["sh", "-c", hostfacts.SOURCES_READ], capture_output=True, text=True, check=False).stdout
    assert hostfacts.parse(observed)["sources"] == direct
    assert direct.strip(), "this machine has apt sources"


def test_a_module_the_host_uses_is_refused_before_the_system_role_blocks_it(tmp_path):
    """SYS-09: a listed module in use (a count of users, or modules using it) or the type of a
    mounted or fstab file system would be gone at the next boot: refused, naming it and the fix."""
    import subprocess
    modules = ("sctp 434176 2 - Live 0x0\nudf 131072 0 - Live 0x0\ncramfs 45056 0 - Live 0x0\n"
               "libcrc32c 12288 3 nf_tables,sctp, Live 0x0\n")
    fstab = "# /boot/efi was on /dev/sda1\nUUID=1 /boot/efi vfat umask=0077 0 1\n"
    script = hostfacts.OBSERVE.replace("/proc/modules", "modules").replace("/proc/mounts /etc/fstab", "fstab")
    observed = hostfacts.parse(subprocess.run(
        ["sh", "-c", f"printf '{modules}' > modules; printf '{fstab}' > fstab; " + script], cwd=tmp_path,
        capture_output=True, text=True, check=False).stdout)
    assert observed["modules_used"] == ["sctp", "libcrc32c"] and observed["fstypes"] == ["vfat"]
    seen = {**hostfacts.parse(answer(V4)), "modules_used": observed["modules_used"], "fstypes": observed["fstypes"]}
    values = role_vars("system", {"system_blocked_modules": ["cramfs", "sctp", "udf", "vfat"],
                                  "system_package_integrity_enabled": False})
    with pytest.raises(ValidationError) as err:
        hostfacts.decide({"system": values}, seen)
    problems = str(err.value)
    assert "system_blocked_modules has sctp, which is in use on this host" in problems
    assert "modprobe -r sctp" in problems
    assert "system_blocked_modules has vfat, the type of a file system mounted or listed in /etc/fstab" in problems
    assert "has cramfs" not in problems and "has udf" not in problems  # loaded but unused: the check names them
    # In a container /proc/modules is the machine's: only its own file systems count.
    inside = {**seen, "container": "podman"}
    with pytest.raises(ValidationError) as err:
        hostfacts.decide({"system": values}, inside)
    assert "has sctp" not in str(err.value) and "has vfat" in str(err.value)
    off = role_vars("system", {"system_blocked_modules": ["sctp", "vfat"], "system_modules_enabled": False})
    assert hostfacts.decide({"system": off}, seen) == SETTLED


def test_process_accounting_in_a_container_is_refused_before_the_system_role_changes_anything():
    seen = hostfacts.parse(answer(V4) + "container=podman\n")
    with pytest.raises(ValidationError) as err:
        hostfacts.decide({"system": role_vars("system", {"system_accounting_enabled": True})}, seen)
    assert "system_accounting_enabled is true, but this host is a podman container" in str(err.value)
    assert hostfacts.decide({"system": role_vars("system", {})}, seen) == {**SETTLED, "__system_container": "podman"}
    machine = hostfacts.parse(answer(V4))
    assert hostfacts.decide({"system": role_vars("system", {"system_accounting_enabled": True})}, machine) == SETTLED


def test_temporary_folders_of_a_debian_12_machine_get_fstab_lines_and_are_mounted_now():
    """SYS-12 on Debian 12 as installed: /tmp and /var/tmp lie on the root file system, so each is
    bound onto itself (its files stay); /dev/shm is a tmpfs systemd mounted, so it gets a tmpfs line.
    The bind is mounted now, /dev/shm remounted; the next run, on that host, changes nothing."""
    seen = hostfacts.parse(answer(V4) + mounts(ROOT_MOUNT + SHM, INSTALLED_FSTAB))
    derived = hostfacts.decide({"system": role_vars("system", {})}, seen)
    assert derived["__system_fstab"] == INSTALLED_FSTAB + (
        "# govbaseline (SYS-12): nothing here runs, acts as a device or takes a set-user-ID owner's rights\n"
        "/tmp\t/tmp\tnone\tbind,nodev,nosuid,noexec\t0\t0\n"
        "# govbaseline (SYS-12): nothing here runs, acts as a device or takes a set-user-ID owner's rights\n"
        "/var/tmp\t/var/tmp\tnone\tbind,nodev,nosuid,noexec\t0\t0\n"
        "# govbaseline (SYS-12): nothing here runs, acts as a device or takes a set-user-ID owner's rights\n"
        "tmpfs\t/dev/shm\ttmpfs\tmode=1777,nodev,nosuid,noexec\t0\t0\n")
    assert derived["__system_mounts_live"] == [["mount", "/tmp"], ["mount", "/var/tmp"],
                                               ["mount", "-o", "remount,nodev,nosuid,noexec", "/dev/shm"]]
    again = hostfacts.parse(answer(V4) + mounts(HARDENED_MOUNTS, derived["__system_fstab"]))
    assert hostfacts.decide({"system": role_vars("system", {})}, again) == SETTLED


def test_a_tmpfs_keeps_its_size_and_fstab_lines_get_the_missing_options_and_lose_their_opposites():
    """Debian 13 mounts /tmp as a tmpfs (tmp.mount): its new line keeps the size and inodes the kernel
    shows for it (a remount does not shrink it). A folder fstab lists keeps its line, the missing
    options added and their opposites (exec) taken out, dump and pass filled in where left out; a
    commented line is not the folder's; live options that are all there need no remount."""
    tmp13 = "30 21 0:30 / /tmp rw,nosuid,nodev shared:9 - tmpfs tmpfs rw,size=1020000k,nr_inodes=1048576\n"
    var = "31 21 8:17 / /var/tmp rw,nosuid,nodev,noexec,relatime shared:10 - ext4 /dev/sdb1 rw\n"
    fstab = ("UUID=4e1c / ext4 errors=remount-ro 0 1\n#/dev/sdc1 /tmp ext4 defaults 0 2\n"
             "/dev/sdb1  /var/tmp/  ext4\n# tmpfs /dev/shm tmpfs defaults 0 0\n"
             "tmpfs /dev/shm tmpfs nosuid,exec,size=2g 0 0")  # no newline at the end
    seen = hostfacts.parse(answer(V4) + mounts(ROOT_MOUNT + SHM + tmp13 + var, fstab))
    derived = hostfacts.decide({"system": role_vars("system", {"system_temporary_mount_options": ["noexec",
                                                                                                  "nodev"]})}, seen)
    assert derived["__system_fstab"] == (
        "UUID=4e1c / ext4 errors=remount-ro 0 1\n#/dev/sdc1 /tmp ext4 defaults 0 2\n"
        "/dev/sdb1\t/var/tmp/\text4\tdefaults,noexec,nodev\t0\t0\n# tmpfs /dev/shm tmpfs defaults 0 0\n"
        "tmpfs\t/dev/shm\ttmpfs\tnosuid,size=2g,noexec,nodev\t0\t0\n"
        "# govbaseline (SYS-12): nothing here runs, acts as a device or takes a set-user-ID owner's rights\n"
        "tmpfs\t/tmp\ttmpfs\tmode=1777,size=1020000k,nr_inodes=1048576,noexec,nodev\t0\t0\n")
    # /var/tmp is mounted noexec and nodev already: only /tmp and /dev/shm are remounted.
    assert derived["__system_mounts_live"] == [["mount", "-o", "remount,noexec,nodev", "/tmp"],
                                               ["mount", "-o", "remount,noexec,nodev", "/dev/shm"]]


# An administrator's own tmp.mount (Debian 12's README.Debian), remounted noexec by hand: systemctl
# show's Options is the live mount's, its file's is what the next boot mounts.
OWN_TMP = {"tmp.mount": "LoadState=loaded\nFragmentPath=/etc/systemd/system/tmp.mount\nDropInPaths=\n"
                        "Options=rw,nosuid,nodev,noexec"}
OWN_TMP_FILE = ("# /etc/systemd/system/tmp.mount\n[Unit]\nDescription=Temporary Directory /tmp\n[Mount]\n"
                "What=tmpfs\nWhere=/tmp\nType=tmpfs\nOptions=mode=1777,strictatime,nosuid,nodev\n")
EDITED = {"var-tmp.mount": "LoadState=loaded\nFragmentPath=/run/systemd/generator/var-tmp.mount\n"
                           "DropInPaths=/etc/systemd/system/var-tmp.mount.d/override.conf\nOptions="}


@pytest.mark.parametrize(("units", "fstab", "extra", "folders", "words"), [
    # Debian 12's README.Debian: copy /usr/share/systemd/tmp.mount to /etc/systemd/system (it overrides fstab).
    (OWN_TMP, INSTALLED_FSTAB, "30 21 0:30 / /tmp rw,nosuid,nodev,noexec - tmpfs tmpfs rw\n", FOLDERS,
     "/tmp is mounted at boot as /etc/systemd/system/tmp.mount says (it overrides /etc/fstab), with "
     "Options=mode=1777,strictatime,nosuid,nodev: add nodev,nosuid,noexec there (systemctl edit tmp.mount), or "
     "remove /tmp from system_temporary_mounts"),
    (EDITED, INSTALLED_FSTAB, "", FOLDERS,
     "/var/tmp is mounted at boot as /etc/systemd/system/var-tmp.mount.d/override.conf says (it overrides "
     "/etc/fstab), with Options=bind,exec: add"),
    ({"tmp.mount": "LoadState=masked\nFragmentPath=\nDropInPaths=\nOptions="}, INSTALLED_FSTAB, "", FOLDERS,
     "tmp.mount is masked, which keeps every mount of /tmp away at boot (fstab's too): systemctl unmask tmp.mount"),
    (None, INSTALLED_FSTAB + "tmpfs /tmp tmpfs defaults 0 0\n/dev/sdc1 /tmp ext4 defaults 0 2\n", "", FOLDERS,
     "/etc/fstab lists /tmp 2 times: keep one line, then run again"),
    (None, INSTALLED_FSTAB + "/dev/sdc1 /var/tmp ext4 defaults,noauto 0 2\n", "", FOLDERS,
     "/etc/fstab's line for /var/tmp has noauto, so nothing mounts it at boot: take noauto out"),
    (None, INSTALLED_FSTAB + "/dev/sdc1 /var/tmp ext4 defaults,nofail 0 2\n", "", FOLDERS,
     "/etc/fstab's line for /var/tmp (/dev/sdc1, ext4) is not mounted now, and mounting it would hide what running "
     "programs keep in /var/tmp"),
    (None, INSTALLED_FSTAB, "40 21 8:33 / /var/tmp rw,relatime - xfs /dev/sdc1 rw\n", FOLDERS,
     "/var/tmp is a xfs mount that /etc/fstab does not list: add it to /etc/fstab with nodev,nosuid,noexec, or "
     "remove /var/tmp from system_temporary_mounts"),
    (None, INSTALLED_FSTAB, "", "/tmp:folder /dev/shm:folder",
     "system_temporary_mounts has /var/tmp, which is not a folder on this host: create it (mode 1777) or remove it"),
    (None, INSTALLED_FSTAB, "", "/tmp:folder /var/tmp:link /dev/shm:folder",
     "system_temporary_mounts has /var/tmp, which is a symbolic link on this host: SYS-12 mounts folders"),
])
def test_temporary_folders_the_role_cannot_mount_refuse_the_host_before_any_change(units, fstab, extra, folders,
                                                                                   words):
    files = {"tmp.mount": OWN_TMP_FILE, "var-tmp.mount": "# /etc/systemd/system/var-tmp.mount.d/override.conf\n"
                                                       "[Mount]\nOptions=bind,exec\n"}
    seen = hostfacts.parse(answer(V4) + mounts(ROOT_MOUNT + SHM + extra, fstab, units, folders, files))
    with pytest.raises(ValidationError) as err:
        hostfacts.decide({"system": role_vars("system", {})}, seen)
    assert f"role system: {words}" in str(err.value)
    off = role_vars("system", {"system_mounts_enabled": False})
    assert hostfacts.decide({"system": off}, seen) == SETTLED


def test_a_containers_temporary_folders_are_its_managers_and_left_alone():
    seen = hostfacts.parse(answer(V4) + "container=podman\n"
                           + mounts(ROOT_MOUNT + SHM, "# UNCONFIGURED FSTAB FOR BASE SYSTEM\n", folders="/tmp:folder"))
    assert hostfacts.decide({"system": role_vars("system", {})}, seen) == {**SETTLED, "__system_container": "podman"}


def test_the_observation_reads_this_machines_mounts():
    """OBSERVE's mount lines, run here: the kernel's mounts with / among them, fstab's text, the folders."""
    import subprocess
    observed = hostfacts.parse(subprocess.run(["sh", "-c", hostfacts.OBSERVE], capture_output=True, text=True,
                                              check=False).stdout)
    assert hostfacts.mounted(observed["mountinfo"], "/") is not None
    assert observed["folders"]["/tmp"] == "folder" and observed["fstab"] is not None
    assert observed["fstab_size"] in ("missing", str(len(observed["fstab"].encode())))
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        assert observed["mountinfo"].splitlines()[0].split()[4] == fh.read().splitlines()[0].split()[4]


def test_a_unit_of_the_administrator_with_the_options_is_kept_and_an_unreadable_fstab_refused():
    """Where /etc/systemd/system's unit (or drop-in) mounts the folder with the options, fstab gets no
    line (the unit wins at boot) and a missing live option is remounted. An fstab that came back
    shorter than its size, or not as UTF-8, would be written back damaged: refused."""
    # Its file has the options (a drop-in resets Options= and sets them again); live noexec is missing.
    own = {"tmp.mount": OWN_TMP_FILE + "# /etc/systemd/system/tmp.mount.d/50-noexec.conf\n[Mount]\nOptions=\n"
                                       "Options=mode=1777,nosuid,nodev,noexec,size=2%%\n"}
    tmp = "30 21 0:30 / /tmp rw,nosuid,nodev - tmpfs tmpfs rw\n"
    hardened = hardened_fstab()
    fine = hostfacts.parse(answer(V4) + mounts(HARDENED_MOUNTS.replace(
        "60 21 254:1 /tmp /tmp rw,nosuid,nodev,noexec,relatime shared:30 - ext4 /dev/vda1 rw\n", tmp),
        hardened.replace("/tmp\t/tmp\tnone\tbind,nodev,nosuid,noexec\t0\t0\n", ""), OWN_TMP, files=own))
    assert fine["unit_options"] == {"tmp.mount": "mode=1777,nosuid,nodev,noexec,size=2%"}
    assert hostfacts.decide({"system": role_vars("system", {})}, fine) == {
        **SETTLED, "__system_mounts_live": [["mount", "-o", "remount,nodev,nosuid,noexec", "/tmp"]]}
    short = answer(V4).replace(f"fstab_size={len(hardened.encode())}", "fstab_size=4096")
    latin1 = answer(V4) + "fstab=" + __import__("base64").b64encode(b"LABEL=donn\xe9es /srv ext4 0 2\n").decode()
    for text in (short, latin1):
        with pytest.raises(ValidationError) as err:
            hostfacts.decide({"system": role_vars("system", {})}, hostfacts.parse(text))
        assert "/etc/fstab could not be read whole as UTF-8 text" in str(err.value)


def test_debian_13s_tmpfs_tmp_keeps_its_units_options_and_a_folder_with_mounts_below_is_not_bound():
    """Debian 13's tmp.mount (its file's Options=, as systemctl cat prints it) gives the new fstab
    line its size and strictatime; binding a folder that has mounts below it would hide them: refused."""
    vendor = {"tmp.mount": "# /usr/lib/systemd/system/tmp.mount\n[Mount]\nWhat=tmpfs\nWhere=/tmp\nType=tmpfs\n"
                           "Options=mode=1777,strictatime,nosuid,nodev,size=50%%,nr_inodes=1m\n"}
    units = {"tmp.mount": "LoadState=loaded\nFragmentPath=/usr/lib/systemd/system/tmp.mount\nDropInPaths=\n"
                          "Options=rw,nosuid,nodev"}
    tmp13 = "30 21 0:30 / /tmp rw,nosuid,nodev shared:9 - tmpfs tmpfs rw,inode64\n"
    seen = hostfacts.parse(answer(V4) + mounts(ROOT_MOUNT + SHM + tmp13, INSTALLED_FSTAB, units, files=vendor))
    fstab = hostfacts.decide({"system": role_vars("system", {"system_temporary_mounts": ["/tmp"]})},
                             seen)["__system_fstab"]
    assert fstab.endswith("tmpfs\t/tmp\ttmpfs\tmode=1777,strictatime,size=50%,nr_inodes=1m,nodev,nosuid,noexec\t0\t0\n")
    below = hostfacts.parse(answer(V4) + mounts(
        ROOT_MOUNT + SHM + "70 21 8:49 / /var/tmp/cache rw - ext4 /dev/sdd1 rw\n", INSTALLED_FSTAB))
    with pytest.raises(ValidationError) as err:
        hostfacts.decide({"system": role_vars("system", {})}, below)
    assert "/var/tmp has mounts below it (/var/tmp/cache), which binding /var/tmp onto itself would hide" \
        in str(err.value)
