"""Checks for remote access and accounts, ACC-01 .. ACC-05 (role ``access``)."""

from __future__ import annotations

import pytest

# Remote-access ports that must not listen: telnet, rexec/rlogin/rsh, RDP, VNC displays 0-9.
REMOTE_ACCESS_PORTS = {23, 512, 513, 514, 3389, *range(5900, 5910)}
# Post-quantum hybrid key exchanges, kept whenever the host's OpenSSH offers them.
PQ_KEX = ("mlkem768x25519-sha256", "sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com")
SSH_OPTS = "-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5"


def sshd_effective(host) -> dict[str, list[str]]:
    """``sshd -T``: the configuration sshd really uses, after every include (keys lower-case)."""
    out = host.run("/usr/sbin/sshd -T")
    assert out.rc == 0, f"sshd -T failed: {out.stderr.strip()}"
    values: dict[str, list[str]] = {}
    for line in out.stdout.splitlines():
        key, _, value = line.partition(" ")
        values.setdefault(key, []).append(value.strip())
    return values


def one(config: dict[str, list[str]], key: str) -> str:
    return config.get(key, [""])[0]


def address_of(hostvars) -> str:
    return str(hostvars.get("ansible_host", hostvars.get("inventory_hostname")))


@pytest.mark.control("ACC-01")
def test_sshd_key_only_for_the_admin_group(host, hostvars):
    config = sshd_effective(host)
    wrong = {k: one(config, k) for k, want in (("passwordauthentication", "no"), ("kbdinteractiveauthentication", "no"),
                                               ("permitemptypasswords", "no"), ("pubkeyauthentication", "yes"),
                                               ("hostbasedauthentication", "no")) if one(config, k) != want}
    assert not wrong, f"sshd allows more than keys: {wrong}"
    root = one(config, "permitrootlogin")
    assert root in ("no", "without-password", "prohibit-password"), f"root may log in with a password ({root})"
    if hostvars["access_permit_root_login"] == "no":
        assert root == "no", f"PermitRootLogin is {root}, access_permit_root_login says no"
    groups = " ".join(config.get("allowgroups", [])).split()
    assert hostvars["access_admin_group"] in groups, f"AllowGroups {groups} lacks {hostvars['access_admin_group']}"
    extra = set(groups) - {hostvars["access_admin_group"], "root"}
    assert not extra, f"AllowGroups lets in more groups than the admin group: {sorted(extra)}"
    assert int(one(config, "maxauthtries")) <= hostvars["access_ssh_max_auth_tries"]
    assert int(one(config, "logingracetime")) <= hostvars["access_ssh_login_grace_time"]


@pytest.mark.control("ACC-01")
def test_sshd_algorithms_hardened_and_post_quantum_kept(host, hostvars):
    config = sshd_effective(host)
    for key, removed in (("kexalgorithms", "access_ssh_kex_remove"), ("ciphers", "access_ssh_ciphers_remove"),
                         ("macs", "access_ssh_macs_remove")):
        offered = one(config, key).split(",")
        weak = sorted(set(offered) & set(hostvars[removed]))
        assert not weak, f"sshd still offers {key} {weak}"
        assert not [a for a in offered if a.endswith("-cbc") or "sha1" in a], f"sshd offers SHA-1/CBC {key}: {offered}"
    supported = host.run("ssh -Q kex").stdout.split()
    wanted = [k for k in PQ_KEX if k in supported]
    kex = one(config, "kexalgorithms").split(",")
    assert not wanted or any(k in kex for k in wanted), (
        f"this OpenSSH supports post-quantum key exchange {wanted} but sshd does not offer it: {kex}")


@pytest.mark.control("ACC-01")
def test_forwarding_off_and_banner_shown(host, hostvars):
    config = sshd_effective(host)
    if not hostvars["access_ssh_allow_forwarding"]:
        on = [k for k in ("allowtcpforwarding", "allowagentforwarding", "allowstreamlocalforwarding", "x11forwarding",
                          "permittunnel") if one(config, k) not in ("no", "none")]
        assert not on, f"forwarding is on: {on}"
    banner = one(config, "banner")
    assert banner not in ("", "none"), "no login banner is configured"
    text = host.file(banner).content_string.strip()
    assert text == hostvars["access_ssh_banner"].strip(), f"{banner} does not hold the legal banner"


@pytest.mark.control("ACC-01")
@pytest.mark.outside
def test_password_login_and_weak_kex_refused_from_outside(host, hostvars, probe):
    """From another host: the server offers only public keys, shows the banner, and refuses SHA-1 key exchange."""
    address = address_of(hostvars)
    rc, out = probe.run(f"ssh {SSH_OPTS} -o PreferredAuthentications=password,keyboard-interactive "
                        "-o PubkeyAuthentication=no nobody@%s true", address)
    assert rc != 0, f"a password-style login attempt from {probe.where} succeeded"
    assert "Permission denied (publickey)" in out, f"the server offers more than public keys: {out.strip()[-300:]}"
    first_line = hostvars["access_ssh_banner"].strip().splitlines()[0]
    assert first_line in out, f"the banner was not shown to {probe.where}"
    rc, out = probe.run(f"ssh {SSH_OPTS} -o KexAlgorithms=diffie-hellman-group14-sha1 nobody@%s true", address)
    assert rc != 0 and "no matching key exchange method" in out, (
        f"the server accepted SHA-1 key exchange from {probe.where}: {out.strip()[-300:]}")


@pytest.mark.control("ACC-02")
def test_no_remote_access_servers(host, hostvars):
    installed = [p for p in hostvars["access_forbidden_remote_servers"] if host.package(p).is_installed]
    assert not installed, f"remote-access servers installed: {installed}"
    listening: set[int] = set()
    out = host.run("ss -Htln")
    for line in out.stdout.splitlines():
        local = line.split()[3] if len(line.split()) > 3 else ""
        port = local.rsplit(":", 1)[-1]
        if port.isdigit():
            listening.add(int(port))
    open_ports = sorted(listening & REMOTE_ACCESS_PORTS)
    assert not open_ports, f"remote-access ports listening: {open_ports}"


@pytest.mark.control("ACC-02")
def test_vendor_accounts_locked_and_expired(host, hostvars):
    vendors = hostvars["access_vendor_accounts"]
    if not vendors:
        pytest.skip("no vendor accounts are declared (access_vendor_accounts is empty)")
    today = int(host.run("echo $(( $(date +%s) / 86400 ))").stdout.strip())
    for name in vendors:
        entry = host.run("getent shadow %s", name)
        if entry.rc != 0:
            continue  # the account does not exist: nothing can log in with it
        fields = entry.stdout.strip().split(":")
        assert fields[1].startswith(("!", "*")), f"vendor account {name} has a usable password"
        assert fields[7] and int(fields[7]) <= today, f"vendor account {name} is not expired"
        shell = host.run("getent passwd %s", name).stdout.strip().split(":")[6]
        assert shell in (hostvars["__system_nologin"], "/bin/false", "/sbin/nologin"), \
            f"vendor account {name} has shell {shell}"


def pam_stack(host, name: str) -> list[str]:
    text = host.file(f"/etc/pam.d/{name}").content_string
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def conf_values(host, path: str) -> dict[str, str]:
    values = {}
    for line in host.file(path).content_string.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@pytest.mark.control("ACC-03")
def test_password_quality_enforced(host, hostvars):
    stack = pam_stack(host, "common-password")
    assert any("pam_pwquality.so" in line for line in stack), "pam_pwquality is not in common-password"
    settings = conf_values(host, "/etc/security/pwquality.conf")
    for extra in host.run("ls /etc/security/pwquality.conf.d/*.conf 2>/dev/null").stdout.split():
        settings.update(conf_values(host, extra))
    assert int(settings.get("minlen", "0")) >= hostvars["access_password_min_length"], \
        f"minlen is {settings.get('minlen')}"
    assert int(settings.get("minclass", "0")) >= hostvars["access_password_min_classes"], \
        f"minclass is {settings.get('minclass')}"
    assert "enforce_for_root" in settings, "root may set weak passwords (enforce_for_root missing)"


@pytest.mark.control("ACC-03")
def test_failed_logins_lock_the_account(host, hostvars):
    auth = pam_stack(host, "common-auth")
    preauth = [i for i, line in enumerate(auth) if "pam_faillock.so" in line and "preauth" in line]
    unix = [i for i, line in enumerate(auth) if "pam_unix.so" in line]
    authfail = [i for i, line in enumerate(auth) if "pam_faillock.so" in line and "authfail" in line]
    assert preauth and unix and authfail, f"pam_faillock is not wired around pam_unix in common-auth: {auth}"
    assert preauth[0] < unix[0] < authfail[0], f"pam_faillock is in the wrong order in common-auth: {auth}"
    assert any("pam_faillock.so" in line for line in pam_stack(host, "common-account")), \
        "pam_faillock is not in common-account (the count is never reset)"
    conf = conf_values(host, hostvars["__access_faillock_conf"])
    assert 0 < int(conf.get("deny", "0")) <= hostvars["access_faillock_deny"], f"faillock deny is {conf.get('deny')}"


@pytest.mark.control("ACC-03")
def test_passwords_age_and_none_is_empty(host, hostvars):
    shadow = host.run("getent shadow").stdout.splitlines()
    passwd = {line.split(":")[0]: line.split(":") for line in host.run("getent passwd").stdout.splitlines()}
    empty = [line.split(":")[0] for line in shadow if line.split(":")[1] == ""]
    assert not empty, f"accounts with an empty password: {empty}"
    too_long = []
    for line in shadow:
        name, hashed, _, _, max_days = line.split(":")[:5]
        uid = int(passwd[name][2]) if name in passwd else -1
        aged = max_days and int(max_days) <= hostvars["access_password_max_days"]
        if 1000 <= uid <= 59999 and hashed.startswith("$") and not aged:
            too_long.append(f"{name} (max {max_days or 'never'})")
    assert not too_long, f"human accounts whose passwords do not age: {too_long}"
    defs = host.run("awk '$1==\"PASS_MAX_DAYS\" {print $2}' /etc/login.defs").stdout.strip()
    assert defs and int(defs) <= hostvars["access_password_max_days"], f"login.defs PASS_MAX_DAYS is {defs!r}"


@pytest.mark.control("ACC-04")
def test_idle_sessions_end(host, hostvars):
    config = sshd_effective(host)
    interval, count = int(one(config, "clientaliveinterval")), int(one(config, "clientalivecountmax"))
    assert 0 < interval <= hostvars["access_ssh_client_alive_interval"], f"ClientAliveInterval is {interval}"
    assert 0 < count <= hostvars["access_ssh_client_alive_count_max"], f"ClientAliveCountMax is {count}"
    tmout = host.run("bash -lc 'echo ${TMOUT:-unset}'").stdout.strip()
    assert tmout.isdigit() and 0 < int(tmout) <= hostvars["access_shell_timeout"], f"login shells have TMOUT={tmout}"
    override = host.run("bash -lc 'TMOUT=0' 2>&1")
    assert override.rc != 0, "TMOUT is not read-only: a user can turn the idle logout off"


@pytest.mark.control("ACC-05")
def test_sudo_uses_a_pty_and_logs(host, hostvars):
    defaults = host.run("sudo -V").stdout
    # sudo words it "pseudo-terminal" or "pseudo-tty" depending on its version.
    assert "Always run commands in a pseudo-t" in defaults, "sudo does not use use_pty"
    log = hostvars["access_sudo_log"]
    marker = host.run("sudo -n /bin/echo govbaseline-sudo-log-probe")
    assert marker.rc == 0, f"sudo did not run as root: {marker.stderr.strip()}"
    tail = host.run("tail -n 20 %s", log)
    assert tail.rc == 0 and "govbaseline-sudo-log-probe" in tail.stdout, f"sudo did not log the command to {log}"


@pytest.mark.control("ACC-05")
def test_umask_027(host, hostvars):
    mask = host.run("bash -lc umask").stdout.strip()
    assert int(mask, 8) & 0o027 == 0o027, f"login shells get umask {mask}, looser than 027"
    defs = host.run("awk '$1==\"UMASK\" {print $2}' /etc/login.defs").stdout.strip()
    assert defs and int(defs, 8) & 0o027 == 0o027, f"login.defs UMASK is {defs!r}"
