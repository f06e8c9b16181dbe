"""Role access's rules: what its ``meta/argument_specs.yml`` cannot say.

``RULES`` judges one variable each, ``CROSS_RULES`` several of the role's variables together;
``govbaseline.validation`` runs them, for both engines, after the argument spec.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from govbaseline.rules.common import CrossRule, Rule, absolute_path, each, int_range, login_banner, username

PUBLIC_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|"
                        r"sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n]*)?$")


ALGORITHM = re.compile(r"^[A-Za-z0-9@.+_-]+$")


def username_list(name: str, value: Any) -> list[str]:
    problems = each(username)(name, value)
    if "root" in value:
        problems.append(f"{name} must not list root")
    return problems


def admin_users(name: str, value: Any) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for i, user in enumerate(value):
        problems += username(f"{name}[{i}].name", user["name"])
        if user["name"] in seen:
            problems.append(f"{name}[{i}].name {user['name']!r} is listed twice")
        seen.add(user["name"])
        keys = user["ssh_public_keys"]
        if not keys:
            problems.append(f"{name}[{i}].ssh_public_keys is empty: {user['name']} could not log in (keys only)")
        for j, key in enumerate(keys):
            if not PUBLIC_KEY.match(key.strip()):
                problems.append(f"{name}[{i}].ssh_public_keys[{j}] is not an OpenSSH public key line "
                                f"(type, base64 key, optional comment): {key[:40]!r}")
    return problems


def algorithms(name: str, value: Any) -> list[str]:
    return [f"{name}[{i}] is not an SSH algorithm name: {a!r}" for i, a in enumerate(value)
            if not isinstance(a, str) or not ALGORITHM.match(a)]


def umask(name: str, value: Any) -> list[str]:
    if not isinstance(value, str) or not re.fullmatch(r"0?[0-7]{3}", value):
        return [f"{name} must be three octal digits such as \"027\", not {value!r}"]
    if int(value, 8) & 0o027 != 0o027:
        return [f"{name} {value} is looser than 027: group members could write and others could read"]
    return []


def ageing_order(values: Mapping[str, Any]) -> list[str]:
    problems = []
    if values["access_password_min_days"] >= values["access_password_max_days"]:
        problems.append("access_password_min_days must be below access_password_max_days")
    if values["access_password_warn_days"] >= values["access_password_max_days"]:
        problems.append("access_password_warn_days must be below access_password_max_days")
    return problems


def vendors_are_not_admins(values: Mapping[str, Any]) -> list[str]:
    both = sorted({u["name"] for u in values["access_admin_users"]} & set(values["access_vendor_accounts"]))
    return [f"access_vendor_accounts and access_admin_users both list {', '.join(both)}"] if both else []


def some_admin_can_log_in(values: Mapping[str, Any]) -> list[str]:
    if not values["access_admin_users"] and values["access_permit_root_login"] == "no":
        return ["no administrator could log in with a key: access_admin_users is empty and "
                "access_permit_root_login is 'no'. List an administrator with a key in access_admin_users "
                "(or set access_permit_root_login: prohibit-password)"]
    return []


def lockout(values: Mapping[str, Any], context: Mapping[str, Any]) -> list[str]:
    """What would cut off the account the controller logs in as (``connecting_user`` and
    ``connecting_groups`` of ``govbaseline.validation.check_lockout``'s context)."""
    user: str | None = context.get("connecting_user")
    groups = list(context.get("connecting_groups") or [])
    if not user:
        return []
    group = values["access_admin_group"]
    problems = []
    if user in values["access_vendor_accounts"]:
        problems.append(f"access_vendor_accounts lists {user}, the account this controller logs in as")
    if user == "root":
        if values["access_permit_root_login"] == "no":
            problems.append("this controller logs in as root but access_permit_root_login is 'no': the run would "
                            "cut it off. Connect as an administrator from access_admin_users (with become), or "
                            "set access_permit_root_login: prohibit-password")
    elif user not in {u["name"] for u in values["access_admin_users"]} and group not in groups:
        problems.append(f"this controller logs in as {user}, who is neither in access_admin_users nor in the "
                        f"group {group}: AllowGroups would cut it off. Add {user} to access_admin_users")
    return problems


# One rule per variable, for what the argument spec cannot say; validation runs them in this order.
RULES: dict[str, Rule] = {
    "access_admin_group": username,
    "access_admin_users": admin_users,
    "access_ssh_max_auth_tries": int_range(1, 10),
    "access_ssh_login_grace_time": int_range(5, 600),
    "access_ssh_client_alive_interval": int_range(1, 3600),
    "access_ssh_client_alive_count_max": int_range(1, 10),
    "access_ssh_kex_remove": algorithms,
    "access_ssh_ciphers_remove": algorithms,
    "access_ssh_macs_remove": algorithms,
    "access_ssh_banner": login_banner,
    "access_shell_timeout": int_range(60, 86400),
    "access_vendor_accounts": username_list,
    "access_password_min_length": int_range(8, 128),
    "access_password_min_classes": int_range(1, 4),
    "access_faillock_deny": int_range(1, 100),
    "access_faillock_fail_interval": int_range(60, 86400),
    "access_faillock_unlock_time": int_range(0, 604800),
    "access_password_max_days": int_range(1, 99999),
    "access_password_min_days": int_range(0, 365),
    "access_password_warn_days": int_range(0, 365),
    "access_umask": umask,
    "access_sudo_log": absolute_path,
}
# Rules that look at several of the role's variables together.
CROSS_RULES: list[CrossRule] = [ageing_order, vendors_are_not_admins, some_admin_can_log_in]
