"""Bad values are refused with a message naming the variable, for both engines."""

from __future__ import annotations

import pytest

from govbaseline.validation import (
    ValidationError,
    baseline_roles,
    check_lockout,
    check_platform,
    role_of,
    role_vars,
    roles_for,
    validated_vars,
)

GOOD = {
    "firewall_management_cidrs": ["192.0.2.0/24", "2001:db8::/64"],
    "firewall_allowed_tcp_ports": [80, 443],
}


def firewall(**overrides):
    return validated_vars("firewall", {**GOOD, **overrides})


def test_good_values_pass_and_defaults_fill_in():
    values = firewall()
    assert values["firewall_ssh_port"] == 22
    assert values["firewall_allowed_tcp_ports"] == [80, 443]


@pytest.mark.parametrize(("overrides", "words"), [
    ({"firewall_allowed_tcp_ports": ["http"]}, "firewall_allowed_tcp_ports"),
    ({"firewall_allowed_tcp_ports": [70000]}, "firewall_allowed_tcp_ports[0] must be between 1 and 65535"),
    ({"firewall_management_cidrs": ["10.0.0.0/33"]}, "firewall_management_cidrs[0] is not a valid network"),
    ({"firewall_management_cidrs": ["10.0.0.5/24"]}, "firewall_management_cidrs[0] is not a valid network"),
    ({"firewall_management_cidrs": []}, "firewall_management_cidrs must list at least one network"),
    ({"firewall_rollback_timeout": 5}, "firewall_rollback_timeout must be between 10 and 600"),
    ({"firewall_log_prefix": 'a"b'}, "firewall_log_prefix"),
    ({"firewall_enabled": "maybe"}, "firewall_enabled"),
    ({"firewall_alowed_tcp_ports": [80]}, "firewall_alowed_tcp_ports is not a variable of role firewall"),
])
def test_bad_values_are_refused_naming_the_variable(overrides, words):
    with pytest.raises(ValidationError) as err:
        firewall(**overrides)
    assert words in str(err.value)


def test_lockout_is_refused():
    values = firewall()
    check_lockout("firewall", values, {"controller_address": "192.0.2.7"})
    check_lockout("firewall", values, {"controller_address": "2001:db8::5"})
    with pytest.raises(ValidationError, match=r"198\.51\.100\.9, the address this controller connects from"):
        check_lockout("firewall", values, {"controller_address": "198.51.100.9"})


def test_baseline_roles_come_from_the_site_playbook():
    assert baseline_roles() == ["backup_server", "pull", "firewall", "alerts", "access", "system", "audit", "tls",
                                "ids", "integrity", "patching", "antivirus", "vulnscan", "backup"]
    assert roles_for(["backup_servers"]) == ["backup_server", "pull"]
    assert roles_for(["webservers", "other"]) == [*baseline_roles()[2:], "pull"]
    assert roles_for(["other"]) == []


def test_a_variable_belongs_to_the_longest_role_name_it_starts_with():
    assert role_of("backup_server_port") == "backup_server"
    assert role_of("backup_paths") == "backup"
    assert role_of("ansible_host") is None
    assert "backup_server_port" not in role_vars("backup", {"backup_server_port": 1})


ALERTS = {"alerts_smtp_host": "mail.example.gov", "alerts_recipients": {"high": ["ciso@example.gov"]}}
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmYv0bMlt7kDjTOXZ7vXB2yGRgBNVp0R8o3D3z1Fq0a alice@example"
ACCESS = {"access_admin_users": [{"name": "alice", "ssh_public_keys": [KEY]}]}


@pytest.mark.parametrize(("role", "good", "overrides", "words"), [
    ("alerts", ALERTS, {"alerts_smtp_host": ""}, "alerts_smtp_host must name a host"),
    ("alerts", ALERTS, {"alerts_smtp_host": "bad_host!"}, "alerts_smtp_host is not a valid host name"),
    ("alerts", ALERTS, {"alerts_recipients": {}}, "alerts_recipients names no address at all"),
    ("alerts", ALERTS, {"alerts_recipients": {"high": ["not-an-address"]}}, "alerts_recipients.high[0] must be a mail"),
    ("alerts", ALERTS, {"alerts_smtp_tls": "maybe"}, "alerts_smtp_tls"),
    ("alerts", ALERTS, {"alerts_smtp_user": "u"}, "alerts_smtp_password is missing"),
    ("alerts", ALERTS, {"alerts_retry_interval_minutes": 0}, "alerts_retry_interval_minutes must be between 1"),
    ("alerts", ALERTS, {"alerts_flood_window_minutes": -1}, "alerts_flood_window_minutes must be between 0 and 1440"),
    ("alerts", ALERTS, {"alerts_flood_max_per_hour": 20000}, "alerts_flood_max_per_hour must be between 0 and 10000"),
    ("access", ACCESS, {"access_admin_users": []}, "no administrator could log in with a key"),
    ("access", ACCESS, {"access_admin_users": [{"name": "Alice!", "ssh_public_keys": [KEY]}]},
     "access_admin_users[0].name must be an account name"),
    ("access", ACCESS, {"access_vendor_accounts": ["alice"]}, "access_vendor_accounts and access_admin_users both"),
    ("access", ACCESS, {"access_password_min_days": 400}, "access_password_min_days must be"),
    ("access", ACCESS, {"access_password_min_days": 30, "access_password_max_days": 20},
     "access_password_min_days must be below access_password_max_days"),
    ("access", ACCESS, {"access_umask": "0777x"}, "access_umask must be three octal digits"),
    ("access", ACCESS, {"access_permit_root_login": "yes"}, "access_permit_root_login"),
    ("access", ACCESS, {"access_ssh_kex_remove": ["bad alg"]}, "access_ssh_kex_remove[0] is not an SSH algorithm"),
    ("audit", {}, {"audit_web_log_paths": ["/"]}, "old files would be deleted from a system folder"),
    ("audit", {}, {"audit_log_host": "logs.example.gov"}, "audit_log_ca_cert is missing"),
    ("audit", {}, {"audit_log_host": "logs.example.gov", "audit_log_ca_cert": "hello"}, "not a PEM certificate"),
    ("audit", {}, {"audit_web_root": "var/www"}, "audit_web_root must be an absolute path"),
    ("audit", {}, {"audit_journal_max_retention_days": "a year"}, "audit_journal_max_retention_days"),
    ("patching", {}, {"patching_extra_origins": ["Debian-updates"]}, "patching_extra_origins[0] must be key=value"),
    ("patching", {}, {"patching_extra_origins": ["colour=blue"]}, "patching_extra_origins[0] must be key=value"),
    ("patching", {}, {"patching_package_blacklist": ["linux-("]}, "patching_package_blacklist[0] is not a valid"),
    ("patching", {}, {"patching_reboot_time": "25:00"}, "patching_reboot_time must be a time of day"),
    ("patching", {}, {"patching_max_pending_days": -1}, "patching_max_pending_days must be between 0 and 90"),
    ("patching", {}, {"patching_needrestart_mode": "i"}, "patching_needrestart_mode"),
    ("patching", {}, {"patching_report": False}, "patching_report must be one of always, changes, errors"),
    ("antivirus", {}, {"antivirus_signature_source": "private_mirror"}, "antivirus_private_mirrors is empty"),
    ("antivirus", {}, {"antivirus_signature_source": "custom"}, "antivirus_custom_signature_urls is empty"),
    ("antivirus", {}, {"antivirus_custom_signature_urls": ["ftp://x.example/a.hsb"]},
     "antivirus_custom_signature_urls[0] must be an http://, https:// or file:// URL"),
    ("antivirus", {}, {"antivirus_custom_signature_urls": ["http://x.example/readme.txt"]},
     "antivirus_custom_signature_urls[0] must name a ClamAV signature file"),
    ("antivirus", {}, {"antivirus_private_mirrors": ["clamav.example.gov"]}, "antivirus_private_mirrors[0] must be"),
    ("antivirus", {}, {"antivirus_scan_paths": []}, "antivirus_scan_paths must not be empty"),
    ("antivirus", {}, {"antivirus_scan_paths": ["srv"]}, "antivirus_scan_paths[0] must be an absolute path"),
    ("antivirus", {}, {"antivirus_quarantine_dir": "/var/www/q"}, "is inside antivirus_scan_paths entry /var/www"),
    ("antivirus", {}, {"antivirus_quarantine_dir": "/var/lib"}, "antivirus_quarantine_dir must be a folder of its"),
    ("antivirus", {}, {"antivirus_scan_calendar": "every day"}, "antivirus_scan_calendar is not a systemd calendar"),
    ("antivirus", {}, {"antivirus_signature_checks_per_day": 100}, "antivirus_signature_checks_per_day must be"),
    ("vulnscan", {}, {"vulnscan_accepted_warnings": ["pkgs 7392"]}, "vulnscan_accepted_warnings[0] must be a Lynis"),
    ("vulnscan", {}, {"vulnscan_min_hardening_index": 101}, "vulnscan_min_hardening_index must be between 0 and 100"),
    ("vulnscan", {}, {"vulnscan_lynis_calendar": "fortnightly"}, "vulnscan_lynis_calendar is not a systemd calendar"),
    ("vulnscan", {}, {"vulnscan_port_scan_ports": "1-70000"}, "vulnscan_port_scan_ports must be ports and ranges"),
    ("vulnscan", {}, {"vulnscan_port_scan_ports": "80,https"}, "vulnscan_port_scan_ports must be ports and ranges"),
    ("vulnscan", {}, {"vulnscan_scanner_host": "scan ner"}, "vulnscan_scanner_host must be a host's name"),
    ("system", {}, {"system_sysctl_network": {"kernel.kptr_restrict": 2}},
     "system_sysctl_network has 'kernel.kptr_restrict': a parameter name must start with net."),
    ("system", {}, {"system_sysctl_network": {"net.ipv4.conf.all.rp_filter": 3}},
     "system_sysctl_network['net.ipv4.conf.all.rp_filter'] must be between 0 and 2, not 3"),
    ("system", {}, {"system_sysctl_network": {"net.ipv4.tcp_syncookies": "on"}},
     "system_sysctl_network['net.ipv4.tcp_syncookies'] must be a whole number, not 'on'"),
    ("system", {}, {"system_sysctl_network": {"net.ipv4 tcp_syncookies; reboot": 1}}, "written with dots"),
    ("system", {}, {"system_sysctl_network": {}}, "to set none, switch the area off"),
    ("system", {}, {"system_sysctl_kernel": {"net.ipv4.ip_forward": 0}},
     "a parameter name must start with kernel. or fs."),
    ("system", {}, {"system_sysctl_kernel": {"kernel.randomize_va_space": True}},
     "system_sysctl_kernel['kernel.randomize_va_space'] must be a whole number"),
    ("system", {}, {"system_sysctl_kernel": {"fs.suid_dumpable": 2}},
     "Set fs.suid_dumpable: 0 in system_sysctl_kernel, or system_coredumps_enabled: false"),
    ("system", {}, {"system_cron_allow_users": ["deploy"]}, "system_cron_allow_users must list root"),
    ("system", {}, {"system_cron_allow_users": ["root", "Bad User"]}, "system_cron_allow_users[1] must be an account"),
    ("system", {}, {"system_file_search_seconds": 5}, "system_file_search_seconds must be between 10 and 3600"),
    ("system", {}, {"system_time_servers": []}, "system_time_servers must list at least one time server"),
    ("system", {}, {"system_time_servers": ["ntp.example.gov"]},
     "Elements value for option 'system_time_servers' is of type str"),
    ("system", {}, {"system_time_servers": [{"name": "ntp example; reboot"}]},
     "system_time_servers[0].name is not a valid host name or IP address"),
    ("system", {}, {"system_time_servers": [{"name": "ntp.example.gov", "nts": "yes"}]},
     "system_time_servers[0].nts must be true or false, not 'yes'"),
    ("system", {}, {"system_time_servers": [{"name": "ntp.example.gov", "key": 1}]},
     "system_time_servers[0] has unknown keys ['key']: only name, pool and nts"),
    ("system", {}, {"system_time_servers": [{"name": "a.example.gov"}, {"name": "a.example.gov"}]},
     "system_time_servers lists a.example.gov twice"),
    ("system", {}, {"system_time_nts_ca_cert": "hello"}, "system_time_nts_ca_cert is not a PEM certificate"),
    ("system", {}, {"system_time_max_offset_ms": 0}, "system_time_max_offset_ms must be between 1 and 60000"),
    ("system", {}, {"system_login_banner": "Welcome to \\s \\r"}, "uses getty's escape '\\\\s'"),
    ("system", {}, {"system_login_banner": "Debian server of the city"}, "names the operating system ('Debian')"),
    ("system", {}, {"system_login_banner": "  \n"}, "system_login_banner must be the text shown at login"),
    ("system", {}, {"system_motd_scripts_off": ["10-uname"]}, "system_motd_scripts_off[0] must be an absolute path"),
    ("access", ACCESS, {"access_ssh_banner": "Welcome to \\S"}, "uses getty's escape '\\\\S'"),
    ("system", {}, {"system_password_hash_cost": 4}, "system_password_hash_cost must be between 5 and 11"),
    ("system", {}, {"system_shell_accounts": ["Bad User"]}, "system_shell_accounts[0] must be an account name"),
    ("system", {}, {"system_package_verify_exclude": ["usr/bin/x"]},
     "system_package_verify_exclude[0] must be an absolute path"),
    ("system", {}, {"system_package_verify_exclude": ["/usr/lib/"]},
     "system_package_verify_exclude has /usr/lib/: that leaves out every file below it"),
    ("system", {}, {"system_package_verify_exclude": ["/usr"]},
     "system_package_verify_exclude has /usr: that leaves out every file below it"),
    ("system", {}, {"system_package_verify_exclude": ["/usr//bin/"]},
     "system_package_verify_exclude has /usr//bin/: that leaves out every file below it"),
    ("system", {}, {"system_package_verify_exclude": ["/usr/lib/x86_64-linux-gnu"]},
     "system_package_verify_exclude has /usr/lib/x86_64-linux-gnu: that leaves out"),
    ("system", {}, {"system_package_verify_seconds": 5}, "system_package_verify_seconds must be between 10 and 3600"),
    ("system", {}, {"system_package_integrity_enabled": "maybe"}, "system_package_integrity_enabled"),
    ("system", {}, {"system_blocked_modules": []}, "to block none, set system_modules_enabled: false"),
    ("system", {}, {"system_blocked_modules": ["cramfs; reboot"]},
     "system_blocked_modules[0] must be a kernel module's name (small letters, digits, - and _, as modinfo prints it)"),
    ("system", {}, {"system_blocked_modules": ["usb-storage", "usb_storage"]},
     "system_blocked_modules lists usb_storage twice (modprobe reads - and _ alike)"),
    ("system", {}, {"system_blocked_modules": ["cramfs", "nf-tables"]},
     "system_blocked_modules has nf-tables: the baseline needs it"),
    ("system", {}, {"system_blocked_modules": ["../cramfs"]}, "system_blocked_modules[0] must be a kernel module's"),
    ("system", {}, {"system_modules_enabled": "maybe"}, "system_modules_enabled"),
    ("system", {}, {"system_temporary_mounts": ["/tmp", "/home"]}, "system_temporary_mounts"),
    ("system", {}, {"system_temporary_mounts": []}, "for none, set system_mounts_enabled: false"),
    ("system", {}, {"system_temporary_mounts": ["/tmp", "/tmp"]}, "system_temporary_mounts lists /tmp twice"),
    ("system", {}, {"system_temporary_mount_options": ["noexec", "ro"]}, "system_temporary_mount_options"),
    ("system", {}, {"system_mounts_enabled": "maybe"}, "system_mounts_enabled"),
])
def test_bad_values_of_every_role_are_refused(role, good, overrides, words):
    validated_vars(role, good)
    with pytest.raises(ValidationError) as err:
        validated_vars(role, {**good, **overrides})
    assert words in str(err.value)


def test_access_lockout_is_refused():
    values = validated_vars("access", ACCESS)
    check_lockout("access", values, {"connecting_user": "alice", "connecting_groups": []})
    check_lockout("access", values, {"connecting_user": "bob", "connecting_groups": ["sshadmins"]})
    with pytest.raises(ValidationError, match="logs in as root but access_permit_root_login is 'no'"):
        check_lockout("access", values, {"connecting_user": "root", "connecting_groups": ["root"]})
    with pytest.raises(ValidationError, match="logs in as bob, who is neither in access_admin_users"):
        check_lockout("access", values, {"connecting_user": "bob", "connecting_groups": ["bob"]})
    root_ok = validated_vars("access", {"access_permit_root_login": "prohibit-password"})
    check_lockout("access", root_ok, {"connecting_user": "root", "connecting_groups": ["root"]})


def test_unsupported_platform_is_refused():
    check_platform("firewall", "Debian", "13")
    with pytest.raises(ValidationError, match="supports Debian 12 and 13; this host runs Ubuntu 24"):
        check_platform("firewall", "Ubuntu", "24")


def test_example_inventory_is_valid_for_every_role():
    from govbaseline.inventory import resolve
    from govbaseline.paths import STARTER_DIR

    cert, key = _site_certificate(names=("backup.example.gov",))
    # Values Ansible fills in at run time (Vault, files): a stand-in of the right kind for each.
    stand_ins = {"backup_rest_password": "0" * 32, "backup_repository_password": "1" * 32,
                 "backup_server_certificate": cert, "backup_server_private_key": key}
    resolved = resolve(STARTER_DIR / "inventory")  # what `govbaseline init` writes
    assert resolved.hostvars
    assert "backup_servers" in resolved.groups and "webservers" in resolved.groups
    for host, hostvars in resolved.hostvars.items():
        values = dict(hostvars)
        for name, value in hostvars.items():
            if isinstance(value, str) and "{{" in value:
                assert name in stand_ins, f"{name} is filled in at run time: give the test a stand-in"
                values[name] = stand_ins[name]
        for role in roles_for(resolved.groups_of(host)):
            validated_vars(role, values)


@pytest.mark.parametrize("role", baseline_roles())
def test_argument_specs_document_every_default_as_it_is(role):
    from govbaseline.validation import READS, argument_spec, role_defaults

    spec, defaults = argument_spec(role), role_defaults(role)
    # Variables read from another role are documented (and checked) here, defaulted by their own role.
    assert set(READS.get(role, ())) <= set(spec)
    spec = {k: v for k, v in spec.items() if k not in READS.get(role, ())}
    assert set(spec) == set(defaults), f"documented but not defaulted, or the reverse: {set(spec) ^ set(defaults)}"
    for name, option in spec.items():
        if "default" in option:
            assert option["default"] == defaults[name], f"{name}: argument_specs says {option['default']!r}"


def _site_certificate(days: int = 90, names: tuple[str, ...] = ("www.example.gov",)) -> tuple[str, str]:
    import tempfile
    from pathlib import Path

    from govbaseline.lab.ca import LabCA

    return LabCA(Path(tempfile.mkdtemp(prefix="govbaseline-unit-ca-")), "unit").issue(
        names[0], dns=list(names), ips=[], days=days)


CERT, KEY = _site_certificate()
OTHER_CERT, OTHER_KEY = _site_certificate()
TLS = {"tls_server_names": ["www.example.gov"], "tls_certificate": CERT, "tls_private_key": KEY}


@pytest.mark.parametrize(("overrides", "words"), [
    ({"tls_server_names": []}, "tls_server_names is empty"),
    ({"tls_server_names": ["bad name"]}, "tls_server_names[0] is not a valid host name"),
    ({"tls_private_key": ""}, "tls_private_key is missing"),
    ({"tls_private_key": OTHER_KEY}, "tls_private_key does not belong to tls_certificate"),
    ({"tls_private_key": "-----BEGIN PRIVATE KEY-----\nsecretstuff\n-----END PRIVATE KEY-----\n"},
     "tls_private_key is not an unencrypted PEM private key"),
    ({"tls_certificate": "hello"}, "tls_certificate is not a PEM certificate"),
    ({"tls_server_names": ["www.example.gov", "intranet.example.gov"]},
     "tls_certificate does not cover intranet.example.gov"),
    ({"tls_hsts_max_age": 86400}, "tls_hsts_max_age must be between 31536000"),
    ({"tls_hsts_preload": True}, "tls_hsts_preload needs tls_hsts_include_subdomains"),
    ({"tls_certificate_source": "acme"}, "tls_acme_email is missing"),
    ({"tls_web_root": "/etc"}, "tls_web_root is /etc: a system folder would be published"),
    ({"tls_sensitive_extensions": ["sql", ".git"]}, "tls_sensitive_extensions[1] must be a file name ending"),
    ({"tls_waf_mode": False}, "tls_waf_mode"),
    ({"tls_profile": "old"}, "tls_profile"),
    ({"tls_content_security_policy": "default-src 'self'; frame-ancestors *"}, "set tls_frame_ancestors instead"),
    ({"tls_referrer_policy": "unsafe-url"}, "tls_referrer_policy must be one of"),
    ({"tls_client_max_body_size": "1 MB"}, "tls_client_max_body_size must be an nginx size"),
    ({"tls_rate_limit_per_second": 0}, "tls_rate_limit_per_second must be between 1"),
])
def test_bad_tls_values_are_refused_without_showing_the_key(overrides, words):
    validated_vars("tls", TLS)
    with pytest.raises(ValidationError) as err:
        validated_vars("tls", {**TLS, **overrides})
    assert words in str(err.value)
    assert "secretstuff" not in str(err.value) and KEY.splitlines()[1] not in str(err.value)


def test_expired_certificate_is_refused():
    cert, key = _site_certificate(days=-1)
    with pytest.raises(ValidationError, match="tls_certificate expired on"):
        validated_vars("tls", {**TLS, "tls_certificate": cert, "tls_private_key": key})


def test_wildcard_certificate_covers_one_label():
    cert, key = _site_certificate(names=("*.example.gov",))
    validated_vars("tls", {"tls_server_names": ["www.example.gov", "*.example.gov"], "tls_certificate": cert,
                           "tls_private_key": key})
    with pytest.raises(ValidationError, match=r"does not cover a\.b\.example\.gov"):
        validated_vars("tls", {"tls_server_names": ["a.b.example.gov"], "tls_certificate": cert,
                               "tls_private_key": key})


def test_https_closed_by_the_firewall_is_refused():
    from govbaseline.validation import check_baseline

    firewall = validated_vars("firewall", GOOD)
    tls = validated_vars("tls", TLS)
    check_baseline({"firewall": firewall, "tls": tls})
    with pytest.raises(ValidationError, match="firewall_allowed_tcp_ports lacks 443"):
        check_baseline({"firewall": {**firewall, "firewall_allowed_tcp_ports": [80]}, "tls": tls})
    check_baseline({"firewall": {**firewall, "firewall_allowed_tcp_ports": []}})  # tls switched off: absent


def test_a_role_switched_off_demands_nothing():
    """Issue 17, kind 4: the refusal for a missing 443 says "or set tls_enabled: false"; doing just that
    (with no site names, no certificate) is accepted, and so is every other role switched off bare."""
    from govbaseline.validation import role_vars, roles_for, validate_roles

    web = {**GOOD, "firewall_allowed_tcp_ports": [8080]}
    message = ""
    try:
        validate_roles({role: role_vars(role, {**web, **TLS}) for role in ("firewall", "tls")}, {}, ("Debian", "13"))
    except ValidationError as exc:
        message = str(exc)
    assert "or set tls_enabled: false" in message
    converted = validate_roles({role: role_vars(role, {**web, "tls_enabled": False}) for role in ("firewall", "tls")},
                               {}, ("Debian", "13"))
    assert converted["tls"] == {"tls_enabled": False}
    # Every role of the web servers switched off, with none of its required values set (and a value of
    # the wrong type left behind), is accepted: a role that is off is neither applied nor judged.
    off = {f"{role}_enabled": "false" for role in roles_for(["webservers"])}
    converted = validate_roles({role: role_vars(role, {**off, "alerts_smtp_port": "not a port"})
                                for role in roles_for(["webservers"])}, {"controller_address": "203.0.113.9",
                                                                          "connecting_user": "deploy"},
                               ("Debian", "13"))
    assert all(values == {f"{role}_enabled": False} for role, values in converted.items())
    # The alert channel switched off while roles that warn through it are on would silence them.
    alerting = {role: role_vars(role, {**web, **TLS, "alerts_enabled": False, "firewall_allowed_tcp_ports": [443]})
                for role in ("firewall", "alerts", "tls")}
    with pytest.raises(ValidationError, match=r"alerts_enabled is false, but these roles warn through the alert "
                       r"channel \(govbaseline-alert\): tls\. "):
        validate_roles(alerting, {}, ("Debian", "13"))
    # The switch itself must still be a boolean.
    with pytest.raises(ValidationError, match="tls_enabled"):
        validate_roles({"tls": role_vars("tls", {"tls_enabled": "sometimes"})}, {}, ("Debian", "13"))


def test_applied_values_are_type_converted_for_the_checks():
    """Issue 17, kind 2: quoted ports (as other firewall roles write them) are applied as numbers, and
    the checks judge those numbers: applied_vars is what the deploys and verify both use."""
    from govbaseline.validation import applied_vars

    values = applied_vars("firewall", {**GOOD, "firewall_allowed_tcp_ports": ["80", "443"], "firewall_ssh_port": "22"})
    assert values["firewall_allowed_tcp_ports"] == [80, 443]
    assert values["firewall_ssh_port"] == 22
    assert values["__firewall_nft_table"]  # the role's internal names come with them
    assert applied_vars("firewall", {**GOOD, "firewall_enabled": False}) == {"firewall_enabled": False}


def test_scan_faster_than_the_flood_limit_is_refused():
    from govbaseline.validation import check_baseline

    firewall = validated_vars("firewall", GOOD)
    scan = validated_vars("vulnscan", {"vulnscan_scanner_host": "web2", "vulnscan_port_scan_max_rate": 30})
    with pytest.raises(ValidationError) as err:
        check_baseline({"firewall": firewall, "vulnscan": scan})
    assert "vulnscan_port_scan_max_rate (30/s) must stay below firewall_new_conn_rate_per_second (30/s)" \
        in str(err.value)
    check_baseline({"firewall": firewall, "vulnscan": {**scan, "vulnscan_port_scan_max_rate": 29}})


def test_declared_tcp_ports_are_the_numbers_the_firewall_applies():
    """Issue 17, kind 2: the fleet scan's declaration of a host (both engines and the VULN-02 check
    read it from here) is the converted numbers, with the firewall's default SSH port where unset."""
    from govbaseline.validation import declared_tcp_ports

    assert declared_tcp_ports({"firewall_allowed_tcp_ports": ["443", "80"], "firewall_ssh_port": "2222"}) == \
        [80, 443, 2222]
    assert declared_tcp_ports({}) == [22]
    assert declared_tcp_ports({"firewall_enabled": False, "firewall_allowed_tcp_ports": [8443]}) == [22, 8443]
    with pytest.raises(ValidationError, match="firewall_ssh_port"):
        declared_tcp_ports({"firewall_ssh_port": "ssh"})


def test_ssh_port_other_than_the_sessions_is_refused():
    """issue 17: firewall_ssh_port 2222 while this session reached sshd on 22 would cut it off."""
    values = firewall(firewall_ssh_port=2222)
    check_lockout("firewall", values, {"controller_address": "192.0.2.7", "controller_port": "2222"})
    check_lockout("firewall", values, {"controller_address": "192.0.2.7", "controller_port": ""})  # no SSH session
    with pytest.raises(ValidationError) as err:
        check_lockout("firewall", values, {"controller_address": "192.0.2.7", "controller_port": "22"})
    assert "firewall_ssh_port is 2222, but this controller's SSH session reaches sshd on port 22" in str(err.value)
    assert "Set firewall_ssh_port: 22" in str(err.value)
    with pytest.raises(ValidationError) as err:  # both lockouts at once
        check_lockout("firewall", values, {"controller_address": "198.51.100.9", "controller_port": "22"})
    assert "the address this controller connects from" in str(err.value) and "port 22" in str(err.value)


INVENTORY = {"all": ["bh_2", "web1", "backup1"], "ungrouped": [], "webservers": ["bh_2", "web1"],
             "backup_servers": ["backup1"]}


def inventory_refusal(overrides, probe_host=""):
    from govbaseline.validation import validate_roles

    roles = ("vulnscan", "backup_server")
    try:
        validate_roles({role: role_vars(role, overrides) for role in roles},
                       {"inventory_groups": INVENTORY, "probe_host": probe_host})
    except ValidationError as err:
        return str(err)
    return ""


def test_a_scanner_named_as_in_the_inventory_is_accepted():
    """issue 17: bh_2 is a legal inventory name (underscore), no DNS name."""
    assert inventory_refusal({"vulnscan_scanner_host": "bh_2"}, probe_host="web1") == ""
    assert validated_vars("vulnscan", {"vulnscan_scanner_host": "bh_2"})["vulnscan_scanner_host"] == "bh_2"


@pytest.mark.parametrize(("overrides", "probe", "words"), [
    ({"vulnscan_scanner_host": "bh-3"}, "",
     "vulnscan_scanner_host is 'bh-3', which is not a host of the inventory (it has backup1, bh_2, web1)"),
    ({"vulnscan_scanner_host": "backup1"}, "", "vulnscan_scanner_host is 'backup1', but that host is in no group "
                                               "that gets role vulnscan"),
    ({"vulnscan_fleet_group": "webserver"}, "",
     "vulnscan_fleet_group is 'webserver', which is not a group of the inventory (it has backup_servers, webservers)"),
    ({"backup_server_clients_group": "web"}, "", "backup_server_clients_group is 'web', which is not a group"),
    ({}, "probe-1", "govbaseline_probe_host is 'probe-1', which is not a host of the inventory"),
])
def test_a_name_in_no_inventory_is_refused(overrides, probe, words):
    assert words in inventory_refusal(overrides, probe_host=probe)


def test_a_long_inventory_is_listed_truncated():
    from govbaseline.validation import inventory_names

    groups = {"all": [f"web{i:02}" for i in range(30)]}
    message = inventory_names("vulnscan", {"vulnscan_scanner_host": "web99"}, {"inventory_groups": groups})[0]
    assert "web00, web01" in message and "web09 and 20 more" in message and "web29" not in message


def test_pyinfra_refuses_a_name_in_no_inventory_before_connecting():
    """The pyinfra engine's own check, before any connection, judges names against the whole inventory."""
    from govbaseline.engines import validate_inventory
    from govbaseline.inventory import ResolvedInventory

    hostvars = {"vulnscan_scanner_host": "bh-3", "firewall_management_cidrs": ["192.0.2.0/24"]}
    fleet = ResolvedInventory({"web1": hostvars, "bh_2": {}}, {"all": ["bh_2", "web1"], "webservers": ["bh_2", "web1"]})
    with pytest.raises(ValidationError) as err:
        validate_inventory(fleet.subset(["web1"]), fleet)
    assert "web1: role vulnscan: vulnscan_scanner_host is 'bh-3', which is not a host" in str(err.value)


BACKUP = {"backup_rest_url": "https://backup.example.gov:8000", "backup_rest_password": "a1" * 16,
          "backup_repository_password": "b2" * 16}


def test_the_backup_reads_the_quarantine_from_the_antivirus_role():
    """issue 17: one path, one variable: the host's antivirus_quarantine_dir, else the antivirus default."""
    from govbaseline.validation import role_defaults

    assert validated_vars("backup", BACKUP)["antivirus_quarantine_dir"] == \
        role_defaults("antivirus")["antivirus_quarantine_dir"]
    assert validated_vars("backup", {**BACKUP, "antivirus_quarantine_dir": "/srv/q"})["antivirus_quarantine_dir"] \
        == "/srv/q"
    assert role_defaults("backup")["backup_exclude"] == []


@pytest.mark.parametrize(("overrides", "words"), [
    ({"antivirus_quarantine_dir": "/var/www/quarantine", "backup_drill_paths": ["/var/www/quarantine/old"]},
     "backup_drill_paths[0] /var/www/quarantine/old is inside antivirus_quarantine_dir /var/www/quarantine"),
    ({"backup_exclude": ["/var/www/cache"], "backup_drill_paths": ["/var/www/cache"]},
     "backup_drill_paths[0] /var/www/cache is inside backup_exclude[0] /var/www/cache"),
])
def test_a_drill_of_an_excluded_folder_is_refused(overrides, words):
    validated_vars("backup", {**BACKUP, "backup_exclude": ["/var/www/cache", "*.tmp"]})
    with pytest.raises(ValidationError) as err:
        validated_vars("backup", {**BACKUP, **overrides})
    assert words in str(err.value)


# issue 17, kind 3: contradictions refused before any change. Per rule: (role -> overrides of a good
# host), the words of the refusal (each names the variables), and the overrides that fix it.
HOST = {"firewall": GOOD, "tls": TLS, "alerts": ALERTS, "ids": {}, "integrity": {}, "audit": {}, "antivirus": {},
        "backup": BACKUP, "system": {}}


def host_refusal(changes: dict[str, dict]) -> str:
    from govbaseline.validation import check_baseline

    # One host's variables, as the inventory gives them (a role reads another's: READS).
    hostvars = {k: v for role, good in HOST.items() for k, v in {**good, **changes.get(role, {})}.items()}
    try:
        check_baseline({role: validated_vars(role, hostvars) for role in HOST})
    except ValidationError as err:
        return str(err)
    return ""


CONTRADICTIONS = {
    "nts-ca-without-an-nts-server": (
        {"system": {"system_time_nts_ca_cert": CERT}},
        ["system_time_nts_ca_cert is set but no server in system_time_servers has nts: true"],
        {"system": {"system_time_nts_ca_cert": CERT,
                    "system_time_servers": [{"name": "ntp.example.gov", "nts": True}]}}),
    "acme-without-80": (
        {"firewall": {"firewall_allowed_tcp_ports": [443]},
         "tls": {"tls_certificate_source": "acme", "tls_acme_email": "webops@example.gov"}},
        ["firewall_allowed_tcp_ports lacks 80 while tls_certificate_source is acme"],
        {"firewall": {"firewall_allowed_tcp_ports": [80, 443]}}),
    "ssh-open-to-all": (
        {"firewall": {"firewall_allowed_tcp_ports": [22, 80, 443]}},
        ["firewall_allowed_tcp_ports lists 22, the SSH port (firewall_ssh_port)"],
        {"firewall": {"firewall_allowed_tcp_ports": [80, 443]}}),
    "management-is-the-internet": (
        {"firewall": {"firewall_management_cidrs": ["0.0.0.0/0"]}},
        ["firewall_management_cidrs has 0.0.0.0/0: fail2ban never bans"],
        {"firewall": {"firewall_management_cidrs": ["10.0.0.0/8"]}}),
    "never-ban-everyone": (
        {"ids": {"ids_never_ban_cidrs": ["::/0"]}},
        ["ids_never_ban_cidrs has ::/0"],
        {"ids": {"ids_never_ban_cidrs": ["2001:db8::/32"]}}),
    "webhook-in-clear": (
        {"alerts": {"alerts_webhook_url": "http://hooks.example.gov/a"}},
        ["alerts_webhook_url is plain http:// to hooks.example.gov"],
        {"alerts": {"alerts_webhook_url": "http://10.0.0.7:8025/alerts"}}),
    "relay-password-in-clear": (
        {"alerts": {"alerts_smtp_user": "web1", "alerts_smtp_password": "s3cret", "alerts_smtp_tls": "off"}},
        ["alerts_smtp_tls is off while alerts_smtp_user is set"],
        {"alerts": {"alerts_smtp_user": "web1", "alerts_smtp_password": "s3cret", "alerts_smtp_tls": "starttls"}}),
    "tamper-watch-on-another-folder": (
        {"tls": {"tls_web_root": "/srv/site"}},
        ["tls_web_root /srv/site is outside integrity_web_root /var/www",
         "tls_web_root /srv/site is outside audit_web_root /var/www"],
        {"tls": {"tls_web_root": "/srv/site"}, "integrity": {"integrity_web_root": "/srv/site"},
         "audit": {"audit_web_root": "/srv"}}),
    "site-not-backed-up": (
        {"tls": {"tls_web_root": "/opt/site"}, "integrity": {"integrity_web_root": "/opt/site"},
         "audit": {"audit_web_root": "/opt"}},
        ["tls_web_root /opt/site is inside none of backup_paths"],
        {"tls": {"tls_web_root": "/opt/site"}, "integrity": {"integrity_web_root": "/opt/site"},
         "audit": {"audit_web_root": "/opt"}, "backup": {"backup_paths": ["/etc", "/opt", "/var/www"]}}),
    "quarantine-published": (
        {"antivirus": {"antivirus_quarantine_dir": "/var/www/html/q", "antivirus_scan_paths": ["/home"]}},
        ["antivirus_quarantine_dir /var/www/html/q is inside tls_web_root /var/www/html: infected files would be "
         "published", "antivirus_quarantine_dir /var/www/html/q is inside integrity_web_root /var/www"],
        {"antivirus": {"antivirus_quarantine_dir": "/var/lib/quarantine", "antivirus_scan_paths": ["/home"]}}),
}


def test_the_good_host_of_the_contradiction_tests_is_accepted():
    assert host_refusal({}) == ""


@pytest.mark.parametrize("case", sorted(CONTRADICTIONS))
def test_a_contradiction_between_variables_is_refused_and_its_fix_accepted(case):
    changes, words, fixed = CONTRADICTIONS[case]
    message = host_refusal(changes)
    assert [w for w in words if w not in message] == [], message or "accepted"
    assert host_refusal(fixed) == ""


def test_pyinfra_refuses_a_contradiction_across_roles_before_connecting():
    """engines.validate_inventory runs the rules across roles too (before, pyinfra met them only once
    connected): the same refusal as Ansible's first play."""
    from govbaseline.engines import validate_inventory
    from govbaseline.inventory import ResolvedInventory

    changes = {"firewall": {"firewall_allowed_tcp_ports": [443]},
               "tls": {"tls_certificate_source": "acme", "tls_acme_email": "webops@example.gov"}}
    hostvars = {k: v for role, good in HOST.items() for k, v in {**good, **changes.get(role, {})}.items()}
    hostvars["access_permit_root_login"] = "prohibit-password"
    fleet = ResolvedInventory({"web1": hostvars}, {"all": ["web1"], "webservers": ["web1"]})
    with pytest.raises(ValidationError) as err:
        validate_inventory(fleet, fleet)
    assert "web1: baseline: firewall_allowed_tcp_ports lacks 80 while tls_certificate_source is acme" in str(err.value)


def test_an_ssh_port_nothing_listens_on_is_refused():
    """issue 17: without a session to compare with (pull mode), sshd must at least listen on firewall_ssh_port."""
    values = firewall(firewall_ssh_port=2222)
    check_lockout("firewall", values, {"listening_tcp_ports": "443 80 2222 "})
    check_lockout("firewall", values, {"listening_tcp_ports": ""})  # ss missing: nothing known, nothing refused
    with pytest.raises(ValidationError) as err:
        check_lockout("firewall", values, {"listening_tcp_ports": "22 80 443 "})
    assert "firewall_ssh_port is 2222, but nothing on the host listens there (listening TCP ports: 22, 80, 443)" \
        in str(err.value)


def test_every_engine_reads_the_listening_ports_with_the_same_shell():
    from govbaseline.deploys import common
    from govbaseline.paths import PLAYBOOKS_DIR, ROLES_DIR
    from govbaseline.rules.firewall import LISTENING_TCP_PORTS

    for path in (PLAYBOOKS_DIR / "site.yml", ROLES_DIR / "firewall" / "tasks" / "preflight.yml"):
        assert LISTENING_TCP_PORTS in path.read_text(), path
    assert LISTENING_TCP_PORTS in common.CONNECTION


def test_kernel_parameters_the_operator_takes_over_are_accepted():
    """An area switched off demands nothing of the other; a router's values are accepted as given."""
    values = validated_vars("system", {"system_coredumps_enabled": False,
                                       "system_sysctl_kernel": {"fs.suid_dumpable": 2},
                                       "system_sysctl_network": {"net.ipv4.ip_forward": 1,
                                                                 "net.ipv4.conf.eth0/100.rp_filter": 2}})
    assert values["system_sysctl_network"]["net.ipv4.ip_forward"] == 1
