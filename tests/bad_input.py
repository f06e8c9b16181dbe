"""Bad values for the whole baseline, in one place: each is refused, naming the variable, before
anything on a host changes.

``CASES`` maps a case to (variables that override the lab inventory's, words the refusal must
contain). The unit test (tests/unit/test_bad_input.py) runs every case, and every batch, through
``validation.validate_roles`` with a lab inventory, as both engines do before their first change.
The lab test (tests/lab/test_bad_input_e2e.py) runs each batch with each engine against converged
hosts: one run names every problem of its batch and changes nothing.

A batch holds cases that are all reported in one run: cases of one role only where they are rules
on different variables, and cases of the same stage where stages hide each other (a role's type
errors hide its rules; any role problem hides the rules across roles; a lockout is only known once
the host tells how the controller connects, after the controller has checked every value on its
own, so a batch of lockouts holds nothing else).
"""

from __future__ import annotations

from typing import Any

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmYv0bMlt7kDjTOXZ7v alice"

CASES: dict[str, tuple[dict[str, Any], str]] = {
    # firewall
    "port-name": ({"firewall_allowed_tcp_ports": ["http"]}, "firewall_allowed_tcp_ports"),
    "cidr-33": ({"firewall_management_cidrs": ["10.0.0.0/33"]}, "firewall_management_cidrs[0] is not a valid network"),
    "empty-management": ({"firewall_management_cidrs": []}, "firewall_management_cidrs must list at least one"),
    "firewall-lockout": ({"firewall_management_cidrs": ["192.0.2.0/24"]}, "the address this controller connects from"),
    # issue 17: SSH accepted on 2222 only, while sshd (which the baseline does not move) and this session use 22
    "ssh-port-not-the-session's": ({"firewall_ssh_port": 2222},
                                   "firewall_ssh_port is 2222, but this controller's SSH session reaches sshd on "
                                   "port 22"),
    # alerts
    "no-relay": ({"alerts_smtp_host": ""}, "alerts_smtp_host must name a host"),
    "unknown-severity": ({"alerts_recipients": {"urgent": ["a@example.gov"]}}, "unknown severity 'urgent'"),
    "user-without-password": ({"alerts_smtp_user": "relay"}, "alerts_smtp_password is missing"),
    "webhook-scheme": ({"alerts_webhook_url": "ftp://hooks.example.gov/x"}, "alerts_webhook_url must be an http"),
    # access
    "no-admin-at-all": ({"access_permit_root_login": "no"}, "no administrator could log in with a key"),
    "root-login-off-while-connecting-as-root": (
        {"access_permit_root_login": "no", "access_admin_users": [{"name": "alice", "ssh_public_keys": [KEY]}]},
        "this controller logs in as root"),
    "admin-without-key": ({"access_admin_users": [{"name": "bob", "ssh_public_keys": []}]},
                          "access_admin_users[0].ssh_public_keys is empty"),
    "not-a-key": ({"access_admin_users": [{"name": "bob", "ssh_public_keys": ["hunter2"]}]},
                  "is not an OpenSSH public key line"),
    "loose-umask": ({"access_umask": "022"}, "access_umask 022 is looser than 027"),
    # audit
    "delete-system-logs": ({"audit_web_log_paths": ["/var/log"]}, "audit_web_log_paths[0] is /var/log"),
    "log-host-without-ca": ({"audit_log_ca_cert": ""}, "audit_log_ca_cert is missing"),
    "journal-size": ({"audit_journal_max_use": "lots"}, "audit_journal_max_use must be a size"),
    # tls
    "hsts-too-short": ({"tls_hsts_max_age": 3600}, "tls_hsts_max_age must be between 31536000"),
    "system-web-root": ({"tls_web_root": "/etc"}, "tls_web_root is /etc: a system folder would be published"),
    "unquoted-off": ({"tls_waf_mode": False}, "tls_waf_mode must be one of off, detect, block, not the boolean"),
    # patching
    "reboot-time": ({"patching_reboot_time": "3am"}, "patching_reboot_time must be a time of day HH:MM"),
    # antivirus
    "quarantine-inside-scan": ({"antivirus_quarantine_dir": "/tmp/quarantine"},  # noqa: S108 - refused, never created
                               "antivirus_quarantine_dir /tmp/quarantine is inside antivirus_scan_paths entry /tmp"),
    # ids
    "never-ban-not-a-cidr": ({"ids_never_ban_cidrs": ["10.0.0.0/33"]}, "ids_never_ban_cidrs[0]"),
    "ban-for-a-second": ({"ids_ban_seconds": 1}, "ids_ban_seconds must be between 10 and 2592000"),
    "interface-with-shell": ({"ids_suricata_interface": "eth0; reboot"},
                             "ids_suricata_interface must be a network interface name"),
    "rule-source-ftp": ({"ids_suricata_rule_urls": ["ftp://rules.example.gov/et.tar.gz"]},
                        "ids_suricata_rule_urls[0] must be an http(s) or file URL"),
    # integrity
    "restore-without-copy": ({"integrity_tamper_restore": True},
                             "integrity_known_good_dir is empty: integrity_tamper_restore is true"),
    "tamper-delay-zero": ({"integrity_tamper_delay_seconds": 0},
                          "integrity_tamper_delay_seconds must be between 1 and 300"),
    "known-good-inside-web-root": ({"integrity_known_good_dir": "/var/www/release"},
                                   "integrity_known_good_dir /var/www/release overlaps integrity_web_root /var/www"),
    # vulnscan
    # issue 17: an inventory name, not a DNS name, and one the inventory has
    "scanner-in-no-inventory": ({"vulnscan_scanner_host": "bh-3"},
                                "vulnscan_scanner_host is 'bh-3', which is not a host of the inventory"),
    "hardening-index": ({"vulnscan_min_hardening_index": 120},
                        "vulnscan_min_hardening_index must be between 0 and 100"),
    # backup
    "backup-over-http": ({"backup_rest_url": "http://backup.example.gov:8000"},
                         "backup_rest_url must be the backup server's https://"),
    "password-with-colon": ({"backup_rest_password": "web1:secret@backup"}, "backup_rest_password must be 16-128"),
    "no-repository-password": ({"backup_repository_password": ""}, "backup_repository_password is missing"),
    "keep-nothing": ({"backup_keep_daily": 0, "backup_keep_weekly": 0, "backup_keep_monthly": 0},
                     "pruning would delete every snapshot"),
    "drill-outside-backup": ({"backup_drill_paths": ["/opt/app"]},
                             "backup_drill_paths[0] /opt/app is not inside any of backup_paths"),
    "sftp-key-not-a-key": ({"backup_transport": "sftp", "backup_sftp_private_key": "hunter2-not-a-key"},
                           "backup_sftp_private_key is not an unencrypted OpenSSH private key"),
    # pull
    "pull-over-http": ({"pull_enabled": True, "pull_repository_url": "http://git.example.gov/ops/baseline.git"},
                       "pull_repository_url must be an https:// or ssh:// (or user@host:path) git URL"),
    "pull-without-repository": ({"pull_enabled": True}, "pull_repository_url is missing"),
    "pull-credentials-in-url": ({"pull_enabled": True,
                                 "pull_repository_url": "https://ops:t0ken@git.example.gov/ops/baseline.git"},
                                "pull_repository_url must not carry credentials"),
    "pull-playbook-outside": ({"pull_enabled": True, "pull_playbook": "../site.yml"},
                              "pull_playbook must be a path inside the repository"),
    # issue 17: contradictions between variables of a role
    "webhook-in-clear": ({"alerts_webhook_url": "http://hooks.example.gov/alerts"},
                         "alerts_webhook_url is plain http:// to hooks.example.gov"),
    "ssh-open-to-all": ({"firewall_allowed_tcp_ports": [22, 80, 443]},
                        "firewall_allowed_tcp_ports lists 22, the SSH port (firewall_ssh_port)"),
    "never-ban-everyone": ({"ids_never_ban_cidrs": ["0.0.0.0/0"]}, "ids_never_ban_cidrs has 0.0.0.0/0"),
    # across roles
    "acme-without-port-80": ({"tls_certificate_source": "acme", "tls_acme_email": "webops@example.gov",
                              "firewall_allowed_tcp_ports": [443]},
                             "firewall_allowed_tcp_ports lacks 80 while tls_certificate_source is acme"),
    "web-root-outside-the-watch": ({"tls_web_root": "/srv/site"},
                                   "tls_web_root /srv/site is outside integrity_web_root /var/www"),
    "https-closed-by-the-firewall": ({"firewall_allowed_tcp_ports": [80]}, "firewall_allowed_tcp_ports lacks 443"),
    "scan-faster-than-flood-limit": ({"vulnscan_port_scan_max_rate": 50},
                                     "vulnscan_port_scan_max_rate (50/s) must stay below "
                                     "firewall_new_conn_rate_per_second (30/s)"),
}

BATCHES: dict[str, list[str]] = {
    "one-bad-value-per-role": ["port-name", "no-relay", "admin-without-key", "delete-system-logs", "hsts-too-short",
                               "reboot-time", "quarantine-inside-scan", "tamper-delay-zero", "ban-for-a-second",
                               "hardening-index", "backup-over-http", "pull-over-http"],
    "more-rules": ["cidr-33", "unknown-severity", "webhook-scheme", "not-a-key", "log-host-without-ca",
                   "system-web-root", "no-repository-password", "keep-nothing",
                   "drill-outside-backup", "restore-without-copy", "never-ban-not-a-cidr",
                   "interface-with-shell", "pull-without-repository"],
    "yet-more-rules": ["empty-management", "user-without-password", "loose-umask", "no-admin-at-all", "journal-size",
                       "unquoted-off", "password-with-colon", "sftp-key-not-a-key", "known-good-inside-web-root",
                       "rule-source-ftp", "pull-credentials-in-url"],
    "lockouts": ["firewall-lockout", "root-login-off-while-connecting-as-root", "ssh-port-not-the-session's"],
    # Found with the inventory, which pyinfra judges before it connects (so not with the lockouts).
    "inventory-names": ["scanner-in-no-inventory"],
    "across-roles": ["https-closed-by-the-firewall", "scan-faster-than-flood-limit"],
    "pull-paths": ["pull-playbook-outside"],
    "contradictions-in-a-role": ["webhook-in-clear", "ssh-open-to-all", "never-ban-everyone"],
    "contradictions-across-roles": ["acme-without-port-80", "web-root-outside-the-watch"],
}


def batch(name: str) -> tuple[dict[str, Any], list[str]]:
    """The variables of a batch (its cases' overrides together) and the words each refusal needs."""
    overrides: dict[str, Any] = {}
    for case in BATCHES[name]:
        clash = set(overrides) & set(CASES[case][0])
        assert not clash, f"batch {name}: {case} sets {clash} again"
        overrides.update(CASES[case][0])
    return overrides, [CASES[case][1] for case in BATCHES[name]]
