"""Both engines write the same bytes from every template, and what they write is valid where a
validator exists on this machine (nftables, sshd, visudo, auditctl, rsyslogd)."""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from govbaseline import templating, validation
from govbaseline.lab.ca import LabCA
from govbaseline.paths import ANSIBLE_CFG, PLAYBOOKS_DIR, ROLES_DIR

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmYv0bMlt7kDjTOXZ7vXB2yGRgBNVp0R8o3D3z1Fq0a alice@example"
CA = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
UNIT_CA = LabCA(Path(tempfile.mkdtemp(prefix="govbaseline-unit-ca-")), "unit")
SITE_CERT, SITE_KEY = UNIT_CA.issue("www.example.gov", dns=["www.example.gov", "example.gov"], ips=[])
# One worker renders everything once (ansible_rendered): spread over two, each rendered it all.
pytestmark = pytest.mark.xdist_group("templates")
CLIENT_SSH_KEY = ed25519.Ed25519PrivateKey.generate().private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()


# Per role: named cases of inventory values (validated like a real run) and extra internal values.
CASES: dict[str, dict[str, dict]] = {
    "firewall": {
        "ipv4-only": {"firewall_management_cidrs": ["192.0.2.0/24"]},
        "dual-stack-with-services": {"firewall_management_cidrs": ["192.0.2.0/24", "2001:db8::/64"],
                                     "firewall_allowed_tcp_ports": [443, 80, 80], "firewall_allowed_udp_ports": [53],
                                     "firewall_icmp_rate_per_second": 0, "firewall_log_drops_per_minute": 0},
    },
    "alerts": {
        "relay-with-login-and-webhook": {
            "alerts_smtp_host": "mail.example.gov", "alerts_smtp_port": 587, "alerts_smtp_user": "web1",
            "alerts_smtp_password": "s3cret", "alerts_recipients": {"low": ["ops@example.gov"],
                                                                     "high": ["ciso@example.gov"]},
            "alerts_cert_address": "incident@cert.example", "alerts_webhook_url": "https://hooks.example.gov/a",
            "alerts_webhook_token": "t0ken", "alerts_smtp_ca_cert": CA},
        "plain-relay": {"alerts_smtp_host": "10.0.0.25", "alerts_smtp_tls": "off", "alerts_flood_window_minutes": 0,
                        "alerts_recipients": {"critical": ["soc@example.gov"]}},
    },
    "access": {
        "admins-and-vendors": {"access_admin_users": [{"name": "alice", "ssh_public_keys": [KEY]}],
                               "access_vendor_accounts": ["vendor"]},
        "root-with-key-and-forwarding": {"access_permit_root_login": "prohibit-password",
                                         "access_ssh_allow_forwarding": True, "access_admin_sudo": False},
    },
    "audit": {
        "forwarding": {"audit_log_host": "10.0.0.5", "audit_log_host_name": "logs.example.gov",
                       "audit_log_ca_cert": CA, "audit_watch_paths": ["/srv/app"], "audit_rules_immutable": True},
        "local-only": {},
    },
    "system": {
        "defaults": {},
        "slaac-host-and-more-cron-users": {"system_sysctl_network": {"net.ipv6.conf.all.accept_ra": 2,
                                                                     "net.ipv4.tcp_syncookies": "1"},
                                           "system_cron_allow_users": ["root", "deploy"]},
        "nts-servers-with-a-private-ca": {"system_time_servers": [{"name": "ntp1.example.gov", "nts": True},
                                                                  {"name": "10.0.0.123"},
                                                                  {"name": "pool.example.gov", "pool": True}],
                                          "system_time_nts_ca_cert": CA},
    },
    "tls": {
        "files-intermediate": {"tls_server_names": ["www.example.gov", "example.gov"],
                               "tls_certificate": SITE_CERT, "tls_private_key": SITE_KEY,
                               "tls_waf_mode": "block", "tls_expiry_extra_certificates": ["/etc/ssl/other.pem"]},
        "acme-modern-no-waf": {"tls_server_names": ["www.example.gov"], "tls_certificate_source": "acme",
                               "tls_acme_email": "webops@example.gov", "tls_profile": "modern",
                               "tls_waf_mode": "off", "tls_hsts_include_subdomains": True, "tls_hsts_preload": True,
                               "tls_frame_ancestors": "'none'", "tls_resolvers": ["192.0.2.53"]},
    },
    "patching": {
        "defaults": {},
        "extra-origins-reboot": {"patching_extra_origins": ["origin=Debian,codename=${distro_codename}-updates"],
                                 "patching_package_blacklist": ["^linux-", "nginx"], "patching_reboot": True,
                                 "patching_reboot_time": "04:30", "patching_needrestart_mode": "l",
                                 "patching_report": "always"},
    },
    "antivirus": {
        "official": {},
        "private-mirror": {"antivirus_signature_source": "private_mirror",
                           "antivirus_private_mirrors": ["http://clamav.example.gov", "https://clamav2.example.gov"],
                           "antivirus_scan_paths": ["/srv/www", "/srv/uploads"], "antivirus_scan_calendar": "hourly"},
        "custom": {"antivirus_signature_source": "custom",
                   "antivirus_custom_signature_urls": ["http://sigs.example.gov/org.hsb", "file:///opt/sigs/local.ndb"],
                   "antivirus_quarantine_dir": "/var/lib/av-quarantine"},
    },
    "ids": {
        "defaults": {"firewall_management_cidrs": ["10.0.0.0/24", "2001:db8::/64"]},
        "ssh-only": {"firewall_management_cidrs": ["192.0.2.0/24"], "firewall_ssh_port": 2222,
                     "ids_never_ban_cidrs": ["198.51.100.7/32"], "ids_web_auth_jail": False,
                     "ids_web_4xx_jail": False, "ids_ban_seconds": 3600, "ids_alert_severity": "high",
                     "ids_suricata_home_net": ["192.0.2.10/32", "2001:db8::10/128"],
                     "ids_suricata_rule_urls": ["https://rules.example.gov/et-open.tar.gz"],
                     "ids_suricata_alert_min_severity": "high", "ids_suricata_alert_max_per_hour": 5},
    },
    "integrity": {
        "defaults": {},
        "restore": {"integrity_tamper_restore": True, "integrity_known_good_dir": "/srv/release",
                    "integrity_web_root": "/srv/www", "integrity_aide_paths": ["/usr/bin", "/srv/www"],
                    "integrity_aide_exclude": ["/etc/ld.so.cache", "/srv/www/cache+tmp"],
                    "integrity_check_calendar": "weekly", "integrity_alert_severity": "critical"},
    },
    "vulnscan": {
        "defaults": {},
        "monthly-accepting": {"vulnscan_lynis_calendar": "monthly", "vulnscan_accepted_warnings": ["PKGS-7392"],
                              "vulnscan_lynis_keep_reports": 3, "vulnscan_scanner_host": "web2",
                              "vulnscan_port_scan_ports": "1-1024,8080", "vulnscan_port_scan_max_rate": 10},
    },
    "backup": {
        "lab-like": {"backup_rest_url": "https://10.0.0.5:8000", "backup_rest_ca_cert": CA,
                     "backup_rest_password": "a1" * 16, "backup_repository_password": "b2" * 16},
        "public-ca-no-dumps": {"backup_rest_url": "https://backup.example.gov:8443", "backup_rest_password": "c3" * 12,
                               "backup_repository_password": "d4" * 20, "backup_database_dumps": False,
                               "backup_exclude": ["*.tmp", "/srv/cache"], "backup_drill_paths": ["/etc/nginx"],
                               "antivirus_quarantine_dir": "/srv/quarantine"},
        "sftp": {"backup_transport": "sftp", "backup_sftp_host": "backup.example.gov", "backup_sftp_port": 2222,
                 "backup_sftp_host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0 backup",
                 "backup_sftp_private_key": CLIENT_SSH_KEY, "backup_repository_password": "e5" * 16},
    },
    "backup_server": {
        "two-clients": {"backup_server_certificate": SITE_CERT, "backup_server_private_key": SITE_KEY},
        "no-client-yet": {"backup_server_certificate": SITE_CERT, "backup_server_private_key": SITE_KEY,
                          "backup_server_port": 8443, "backup_server_data_dir": "/srv/backups"},
        "sftp": {"backup_server_transport": "sftp", "backup_server_sftp_dir": "/srv/sftp-backups"},
    },
}
BACKUP_CLIENTS = [{"name": n, "htpasswd": f"{n}:$2y$10$abc", "repository_password": "p" * 32,
                   "account": f"bk-{n}", "ssh_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0",
                   "keep": {"daily": 7, "weekly": 5, "monthly": 12}} for n in ("web1", "web2")]
# Values a task loop provides (item) or a fact (b32) where the template needs them.
EXTRA = {"audit": {"__audit_b32": True}, "patching": {"item": "apt-daily-upgrade"},
         "vulnscan": {"__vulnscan_targets": [{"name": "web1", "address": "192.0.2.10", "declared": [22, 80, 443]}]},
         "backup": {"job": {"name": "drill", "unit": "govbaseline-backup-drill", "command": "drill",
                            "what": "restore drill"}, "job_calendar": "monthly", "job_delay": 60},
         "backup_server": {"__backup_server_clients": BACKUP_CLIENTS}, "ids": {"__ids_iface": "ens3"}}
ALL = [(role, case) for role, cases in CASES.items() for case in cases]


def values(role: str, case: str) -> dict:
    extra = EXTRA.get(role, {})
    if role == "backup_server" and case == "no-client-yet":
        extra = {"__backup_server_clients": []}
    # Ansible's inventory_hostname is the name of the host rendering the case (see ansible_rendered).
    valid = validation.validated_vars(role, CASES[role][case])
    return {**valid, **validation.internal_vars(role), **validation.derived(role, valid, "13"), **extra,
            "inventory_hostname": f"{role}-{case}"}


def templates(role: str) -> list[str]:
    return sorted(p.name for p in (ROLES_DIR / role / "templates").glob("*.j2"))


def ours(role: str, case: str, template: str) -> str:
    return templating.render(role, template, values(role, case))


@pytest.fixture(scope="module")
def ansible_rendered(tmp_path_factory) -> Path:
    """Every case's templates rendered by Ansible in one run: each case is a host of its own (its
    values as host variables, group_vars/all.yml over them as in a real run), hosts in parallel. A
    template that fails leaves its file missing. The roles' govbaseline_files action renders them
    all again into files/ (one task per case: a failing template leaves them all missing)."""
    out = tmp_path_factory.mktemp("ansible-rendered")
    user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    hosts = {}
    for role, case in ALL:
        folder = out / role / case
        folder.mkdir(parents=True)
        (folder / "files").mkdir()
        hosts[f"{role}-{case}"] = {**values(role, case), "ansible_connection": "local",
                                   "ansible_python_interpreter": sys.executable,
                                   "render_jobs": [{"src": str(ROLES_DIR / role / "templates" / t),
                                                    "dest": str(folder / t)} for t in templates(role)],
                                   "files_jobs": [{"template": str(ROLES_DIR / role / "templates" / t),
                                                   "dest": str(folder / "files" / t), "mode": "0600", "owner": user,
                                                   "group": group} for t in templates(role)]}
    inventory = out / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": hosts}}))
    playbook = out / "render.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "all", "gather_facts": False, "strategy": "free",
        "vars_files": [str(PLAYBOOKS_DIR / "group_vars" / "all.yml")],
        # The loop variable is neither "item" nor "job": templates read those of their own (EXTRA).
        "tasks": [{"ansible.builtin.template": {"src": "{{ render_job.src }}", "dest": "{{ render_job.dest }}",
                                                "mode": "0600"},
                   "loop": "{{ render_jobs }}", "loop_control": {"loop_var": "render_job"}, "ignore_errors": True},
                  {"govbaseline.baseline.govbaseline_files": {"files": "{{ files_jobs }}"}, "ignore_errors": True}]}]))
    bindir = Path(sys.executable).parent
    proc = subprocess.run(
        [str(bindir / "ansible-playbook"), "-i", str(inventory), "--forks", "4", str(playbook)],
        capture_output=True, text=True, env=dict(os.environ, ANSIBLE_CONFIG=str(ANSIBLE_CFG)), check=False)
    (out / "ansible.log").write_text(proc.stdout + proc.stderr)
    return out


@pytest.mark.parametrize(("role", "case"), ALL)
def test_pyinfra_rendering_equals_ansible_rendering(role, case, ansible_rendered):
    for template in templates(role):
        rendered = ansible_rendered / role / case / template
        assert rendered.exists(), f"Ansible could not render {template}: see {ansible_rendered / 'ansible.log'}"
        assert ours(role, case, template) == rendered.read_text(), template


@pytest.mark.parametrize(("role", "case"), ALL)
def test_files_action_writes_the_bytes_the_template_module_writes(role, case, ansible_rendered):
    """The roles install most templates with govbaseline_files (one module run for many files)."""
    for template in templates(role):
        rendered, ours_ = ansible_rendered / role / case / template, ansible_rendered / role / case / "files" / template
        assert ours_.exists(), f"govbaseline_files could not render {template}: see {ansible_rendered / 'ansible.log'}"
        assert ours_.read_bytes() == rendered.read_bytes(), template


def validator(argv: list[str], reason: str):
    return pytest.mark.skipif(os.geteuid() != 0 or not shutil.which(argv[0]), reason=reason)


@validator(["nft"], "nft -c needs root and nftables")
@pytest.mark.parametrize("case", CASES["firewall"])
def test_rendered_ruleset_is_valid_nftables(case, tmp_path):
    path = tmp_path / "ruleset.nft"
    path.write_text(ours("firewall", case, "nftables.conf.j2"))
    proc = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


@validator(["visudo"], "visudo needs sudo")
@pytest.mark.parametrize("case", CASES["access"])
def test_rendered_sudoers_is_valid(case, tmp_path):
    path = tmp_path / "sudoers"
    path.write_text(ours("access", case, "sudoers.j2"))
    proc = subprocess.run(["visudo", "-cf", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_firewall_rendering_carries_the_declared_values():
    text = ours("firewall", "dual-stack-with-services", "nftables.conf.j2")
    assert "tcp dport { 80, 443 } accept" in text
    assert "ip6 saddr { 2001:db8::/64 } tcp dport 22 accept" in text
    assert "echo-request" not in text
    assert " log prefix" not in text


def test_sshd_settings_remove_weak_algorithms_instead_of_pinning():
    text = ours("access", "admins-and-vendors", "sshd-govbaseline.conf.j2")
    assert "KexAlgorithms -diffie-hellman-group1-sha1," in text  # removal keeps OpenSSH's post-quantum default
    assert "AllowGroups sshadmins\n" in text and "PermitRootLogin no\n" in text
    root = ours("access", "root-with-key-and-forwarding", "sshd-govbaseline.conf.j2")
    assert "AllowGroups sshadmins root\n" in root and "AllowTcpForwarding yes" in root


def test_alert_config_holds_no_secret():
    config = json.loads(ours("alerts", "relay-with-login-and-webhook", "config.json.j2"))
    assert "s3cret" not in json.dumps(config) and "t0ken" not in json.dumps(config)
    assert config["webhook_token_file"].endswith("/webhook-token")
    assert "passwordeval cat /etc/govbaseline/alerts/smtp-password" in ours(
        "alerts", "relay-with-login-and-webhook", "msmtprc.j2")


def test_alert_config_carries_flood_control():
    """The alert command's flood control reads both numbers; 0 turns one off (both engines render this)."""
    config = json.loads(ours("alerts", "relay-with-login-and-webhook", "config.json.j2"))
    assert (config["flood_window_minutes"], config["flood_max_per_hour"]) == (10, 30)
    assert json.loads(ours("alerts", "plain-relay", "config.json.j2"))["flood_window_minutes"] == 0


def test_tls_site_carries_the_profile_and_the_certificate_source():
    files = ours("tls", "files-intermediate", "site.conf.j2")
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in files and "ssl_session_tickets off;" in files
    assert "ssl_certificate /etc/govbaseline/tls/fullchain.pem;" in files
    assert "modsecurity on;" in files and 'X-Frame-Options "SAMEORIGIN"' in files
    assert "return 301 https://www.example.gov$request_uri;" in files
    acme = ours("tls", "acme-modern-no-waf", "site.conf.j2")
    assert "ssl_protocols TLSv1.3;" in acme and "ssl_ciphers" not in acme
    assert "ssl_certificate /etc/letsencrypt/live/www.example.gov/fullchain.pem;" in acme
    assert "includeSubDomains; preload" in acme and "modsecurity" not in acme
    assert "resolver 192.0.2.53 valid=300s;" in acme and 'X-Frame-Options "DENY"' in acme
    assert "/etc/letsencrypt/live/www.example.gov/fullchain.pem" in ours("tls", "acme-modern-no-waf",
                                                                         "expiry.service.j2")
    assert SITE_KEY not in files


def test_certbot_command_is_the_same_for_both_engines(tmp_path):
    """ACME cannot reach a CA here: the command both engines would run is checked instead."""
    v = values("tls", "acme-modern-no-waf")
    argv = templating.evaluate("tls", v["__tls_certbot_argv"], v)
    assert argv[:5] == ["certbot", "certonly", "--non-interactive", "--agree-tos", "--standalone"]
    pairs = dict(zip(argv[5::2], argv[6::2], strict=True))
    assert pairs == {"--email": "webops@example.gov", "--server": "https://acme-v02.api.letsencrypt.org/directory",
                     "--cert-name": "www.example.gov", "--domains": "www.example.gov",
                     "--pre-hook": "systemctl stop nginx", "--post-hook": "systemctl start nginx",
                     "--deploy-hook": "systemctl reload nginx"}
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({k: v[k] for k in v if not k.startswith("__tls_changed")}))
    out = tmp_path / "argv.json"
    playbook = tmp_path / "argv.yml"
    task = {"ansible.builtin.copy": {"content": "{{ __tls_certbot_argv | to_json }}", "dest": str(out), "mode": "0600"}}
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [task]}]))
    bindir = Path(sys.executable).parent
    proc = subprocess.run([str(bindir / "ansible-playbook"), "-c", "local", "-i", "localhost,", str(playbook),
                           "-e", f"ansible_python_interpreter={sys.executable}", "-e", f"@{extra}"],
                          capture_output=True, text=True, env=dict(os.environ, ANSIBLE_CONFIG=str(ANSIBLE_CFG)),
                          check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert json.loads(out.read_text()) == argv


def test_patching_takes_the_security_archive_and_only_the_chosen_origins():
    text = ours("patching", "extra-origins-reboot", "unattended-upgrades.conf.j2")
    assert "#clear Unattended-Upgrade::Origins-Pattern;" in text
    assert '"origin=Debian,codename=${distro_codename}-security,label=Debian-Security";' in text
    assert '"origin=Debian,codename=${distro_codename}-updates";' in text and '"^linux-";' in text
    assert 'Automatic-Reboot "true";' in text and 'Automatic-Reboot-Time "04:30";' in text
    assert json.loads(ours("patching", "extra-origins-reboot", "config.json.j2"))["report"] == "always"


@validator(["apt-config"], "apt-config comes with apt")
@pytest.mark.parametrize("case", CASES["patching"])
def test_rendered_apt_settings_are_valid(case, tmp_path):
    for template in ("20auto-upgrades.j2", "unattended-upgrades.conf.j2"):
        path = tmp_path / template
        path.write_text(ours("patching", case, template))
        proc = subprocess.run(["apt-config", "-c", str(path), "dump"], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr


def test_antivirus_signature_sources():
    official = ours("antivirus", "official", "freshclam.conf.j2")
    assert "DatabaseMirror database.clamav.net" in official and "PrivateMirror" not in official
    assert "--update-db" not in ours("antivirus", "official", "updater-dropin.conf.j2")
    mirror = ours("antivirus", "private-mirror", "freshclam.conf.j2")
    assert "PrivateMirror http://clamav.example.gov\nPrivateMirror https://clamav2.example.gov" in mirror
    custom = ours("antivirus", "custom", "freshclam.conf.j2")
    assert "DatabaseCustomURL http://sigs.example.gov/org.hsb\nDatabaseCustomURL file:///opt/sigs/local.ndb" in custom
    assert "--update-db=custom" in ours("antivirus", "custom", "updater-dropin.conf.j2")
    scan = json.loads(ours("antivirus", "custom", "scan.json.j2"))
    assert scan["quarantine"] == "/var/lib/av-quarantine" and "/var/www" in scan["paths"]


def test_integrity_rules_and_settings(tmp_path):
    conf = ours("integrity", "restore", "aide.conf.j2")
    # Paths are regular expressions to AIDE: dots and plus signs are escaped, a folder leaves out all below it.
    assert "!/etc/ld\\.so\\.cache(/.*)?$\n" in conf and "!/srv/www/cache\\+tmp(/.*)?$\n" in conf
    assert "/usr/bin Govbaseline\n/srv/www Govbaseline\n" in conf and "database_in=file:/var/lib/aide/aide.db" in conf
    settings = json.loads(ours("integrity", "restore", "config.json.j2"))
    assert settings["restore"] is True and settings["known_good"] == "/srv/release"
    assert settings["severity"] == "critical"
    assert json.loads(ours("integrity", "defaults", "config.json.j2"))["restore"] is False
    # AIDE itself reads the rules (the controller has Debian's aide when the test runs on Debian).
    if shutil.which("aide"):
        path = tmp_path / "aide.conf"
        path.write_text(conf.replace("/var/lib/aide/", f"{tmp_path}/"))
        proc = subprocess.run(["aide", "--config-check", "--config", str(path)], capture_output=True, text=True,
                              check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ids_jails():
    jail = ours("ids", "ssh-only", "jail.local.j2")
    assert "ignoreip = 127.0.0.1/8 ::1 192.0.2.0/24 198.51.100.7/32\n" in jail
    assert "[sshd]\nenabled = true\n" in jail and "port = 2222\n" in jail and "bantime = 3600\n" in jail
    assert "[nginx-http-auth]\nenabled = false\n" in jail and "[govbaseline-nginx-4xx]\nenabled = false\n" in jail
    assert "govbaseline-alert[severity=high]" in jail
    assert "ignoreip = 127.0.0.1/8 ::1 10.0.0.0/24 2001:db8::/64\n" in ours("ids", "defaults", "jail.local.j2")


def test_suricata_settings():
    import yaml as pyyaml

    conf = pyyaml.safe_load(ours("ids", "ssh-only", "suricata.yaml.j2"))
    assert conf["af-packet"][0]["interface"] == "ens3" and conf["vars"]["port-groups"]["SSH_PORTS"] == "2222"
    assert conf["vars"]["address-groups"]["HOME_NET"] == "[192.0.2.10/32,2001:db8::10/128]"
    assert pyyaml.safe_load(ours("ids", "defaults", "suricata.yaml.j2"))["vars"]["address-groups"]["HOME_NET"] == "any"
    update = pyyaml.safe_load(ours("ids", "ssh-only", "update.yaml.j2"))
    assert update["sources"] == ["file:///etc/govbaseline/ids/govbaseline.rules", "https://rules.example.gov/et-open.tar.gz"]
    alerts = json.loads(ours("ids", "ssh-only", "alerts.json.j2"))
    assert alerts["min_severity"] == "high" and alerts["max_per_hour"] == 5


@pytest.mark.parametrize(("case", "excluded"), [
    ("lab-like", ["/var/lib/govbaseline/quarantine"]),
    ("public-ca-no-dumps", ["*.tmp", "/srv/cache", "/srv/quarantine"]),
])
def test_backup_excludes_the_antivirus_quarantine_in_both_engines(case, excluded, ansible_rendered):
    """issue 17: the quarantine folder is derived from antivirus_quarantine_dir (its default or the
    host's), never written a second time in backup_exclude."""
    from_ansible = json.loads((ansible_rendered / "backup" / case / "config.json.j2").read_text())
    assert json.loads(ours("backup", case, "config.json.j2"))["exclude"] == from_ansible["exclude"] == excluded
