"""pyinfra deploy of remote access and accounts (ACC-01 .. ACC-05), twin of ``roles/access``."""

from __future__ import annotations

import re
import shlex
from typing import Any

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.server import Command
from pyinfra.operations import apt, files, server

from govbaseline.deploys import common

ROLE = "access"
NOLOGIN = "/usr/sbin/nologin"
EXPIRED_DAY = "1"  # 1970-01-02, what the Ansible role's `expires: 86400` writes


def getent(database: str) -> dict[str, list[str]]:
    """``getent <database>`` as Ansible's getent module gives it: name -> the other fields."""
    out = host.get_fact(Command, f"getent {database} || true") or ""
    return {line.split(":")[0]: line.split(":")[1:] for line in out.splitlines() if ":" in line}


@deploy("Access")
def apply() -> None:
    v = common.settings(ROLE)
    if v is None:
        return
    passwd, shadow = getent("passwd"), getent("shadow")
    if common.enforced(ROLE, "ssh"):
        ssh(v, passwd)
    if common.enforced(ROLE, "vendors"):
        vendors(v, passwd, shadow)
    if common.enforced(ROLE, "accounts"):
        accounts(v, passwd, shadow)


def ssh(v: dict[str, Any], passwd: dict[str, list[str]]) -> None:
    apt.packages(name="ACC-01 | Install OpenSSH, pam_pwquality and sudo", packages=v["access_packages"], update=False)
    common.put_text("ACC-01 | Write the legal banner", v["access_ssh_banner"], v["__access_banner_path"])
    server.group(name="ACC-01 | Create the admin group", group=v["access_admin_group"])
    for admin in v["access_admin_users"]:
        name = admin["name"]
        server.user(name="ACC-01 | Create the administrators in the admin group", user=name,
                    groups=[v["access_admin_group"]], append=True, create_home=True, shell="/bin/bash")
        home = passwd[name][4] if name in passwd else f"/home/{name}"
        files.directory(name="ACC-01 | Create the administrators' .ssh folders", path=f"{home}/.ssh",
                        user=name, group=name, mode="0700")
        common.put_text("ACC-01 | Install exactly the administrators' listed keys",
                        "\n".join(admin["ssh_public_keys"]) + "\n", f"{home}/.ssh/authorized_keys",
                        mode="0600", user=name, group=name)
    common.sshd_dropin("ACC-01", "ACC-01, ACC-04 | Install the SSH server settings, checked with sshd -t first",
                       v["__access_sshd_dropin"], common.render(ROLE, "sshd-govbaseline.conf.j2", v), "0600",
                       service=v["__access_ssh_service"])


def vendors(v: dict[str, Any], passwd: dict[str, list[str]], shadow: dict[str, list[str]]) -> None:
    installed = host.get_fact(DebPackages) or {}
    present = [p for p in v["access_forbidden_remote_servers"] if p in installed]
    if present:
        server.shell(name="ACC-02 | Remove remote-access servers (telnet, rsh, VNC, RDP)",
                     commands=["DEBIAN_FRONTEND=noninteractive apt-get purge -y " + shlex.join(present)])
    for name in v["access_vendor_accounts"]:
        if name not in passwd:
            continue
        locked = shadow.get(name, [""])[0].startswith("!")
        expired = len(shadow.get(name, [])) > 6 and shadow[name][6] == EXPIRED_DAY
        if not (locked and expired and passwd[name][5] == NOLOGIN):
            server.shell(name="ACC-02 | Lock and expire the vendor accounts and take away their shell",
                         commands=[f"usermod -L -e 1970-01-02 -s {NOLOGIN} {shlex.quote(name)}"])


def accounts(v: dict[str, Any], passwd: dict[str, list[str]], shadow: dict[str, list[str]]) -> None:
    pwquality = v["__access_pwquality_conf"]
    files.directory(name="ACC-03 | Create the pam_pwquality settings folder", path=pwquality.rsplit("/", 1)[0],
                    user="root", group="root", mode="0755")
    common.put_text("ACC-03 | Set the password quality rules", common.render(ROLE, "pwquality.conf.j2", v), pwquality)
    common.put_text("ACC-03 | Set the failed-login lockout", common.render(ROLE, "faillock.conf.j2", v),
                    v["__access_faillock_conf"])
    for profile in v["__access_faillock_profiles"]:
        common.put_file("ACC-03 | Install the pam_faillock profiles for pam-auth-update", ROLE, profile,
                        f"/usr/share/pam-configs/{profile}")
    pam = {name: host.get_fact(Command, f"cat /etc/pam.d/{name}") or ""
           for name in ("common-auth", "common-account", "common-password")}
    wanted = (("common-auth", "pam_faillock.so preauth"), ("common-auth", "pam_faillock.so authfail"),
              ("common-account", "pam_faillock.so"), ("common-password", "pam_pwquality.so"))
    if any(text not in pam[name] for name, text in wanted):
        server.shell(name="ACC-03 | Turn on pam_faillock and pam_pwquality",
                     commands=["DEBIAN_FRONTEND=noninteractive pam-auth-update --enable pwquality "
                               + " ".join(v["__access_faillock_profiles"])])
    login_defs = (("PASS_MAX_DAYS", v["access_password_max_days"]), ("PASS_MIN_DAYS", v["access_password_min_days"]),
                  ("PASS_WARN_AGE", v["access_password_warn_days"]), ("UMASK", v["access_umask"]))
    for key, value in login_defs:
        files.line(name="ACC-03, ACC-05 | Set ageing and the umask for new accounts", path="/etc/login.defs",
                   line=rf"^\s*{key}\s", replace=f"{key}\t{value}")
    ageing = [str(v[f"access_password_{k}_days"]) for k in ("min", "max", "warn")]
    for name, fields in shadow.items():
        human = name in passwd and re.match(v["__access_human_uid_pattern"], passwd[name][1]) is not None
        if human and fields[0].startswith("$") and fields[2:5] != ageing:
            server.shell(name="ACC-03 | Age the passwords of human accounts that have one",
                         commands=[f"chage -m {ageing[0]} -M {ageing[1]} -W {ageing[2]} {shlex.quote(name)}"])
        if fields[0] == "":
            server.shell(name="ACC-03 | Lock accounts that have an empty password",
                         commands=[f"usermod -L {shlex.quote(name)}"])
    common.put_text("ACC-04, ACC-05 | End idle shells and set the session umask",
                    common.render(ROLE, "session.sh.j2", v), v["__access_profile_script"])
    common.checked_file(name="ACC-05 | Make sudo use a pseudo-terminal and log every command, "
                             "checked with visudo first",
                        dest=v["__access_sudoers"], content=common.render(ROLE, "sudoers.j2", v),
                        check="/usr/sbin/visudo -cf {}", mode="0440")
