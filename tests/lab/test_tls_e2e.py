"""The HTTPS web service end to end: every TLS check fails for its own reason when its control is
broken and passes after a converge; a certificate close to expiry raises an alert that arrives; the
modern profile and detection-only WAF work on a real host; bad values are refused by both engines.
The hosts are the pyinfra-converged lab (the two engines' labs share the lab tests between the two
pytest workers; repairs converge with Ansible, which finds the same settings).
"""

from __future__ import annotations

import shlex

import pytest

from govbaseline.engines import run_ansible
from govbaseline.lab.podman import podman
from govbaseline.verify import verify
from tests.lab.conftest import (
    assert_checks_fail_when_broken_together,
    inventory_with,
    sh,
    wait_for_alert,
)

pytestmark = pytest.mark.lab

SITE = "/etc/nginx/sites-available/govbaseline.conf"
TLS_DIR = "/etc/govbaseline/tls"


def edit(*sed: str) -> str:
    return "sed -i " + " ".join(f"-e {shlex.quote(e)}" for e in sed) + f" {SITE}"


# Each break leaves nginx serving (reloaded once at the end), so every other check still runs.
CONFIG_BREAKS: dict[str, tuple[list[str], str]] = {
    "test_only_tls12_and_tls13_offered": (
        [edit("s/ssl_protocols .*/ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;/",
              r"s/ssl_ciphers \(.*\);/ssl_ciphers \1:ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0;/")],
        "the site accepts TLS 1.0, TLS 1.1"),
    # Same break: a CBC suite (forward secret, not AEAD) is now accepted.
    "test_only_forward_secret_aead_suites": ([], "weak TLS 1.2 suite ECDHE-ECDSA-AES128-SHA"),
    "test_session_tickets_off": ([edit("s/ssl_session_tickets off;/ssl_session_tickets on;/")], "TLS tickets"),
    "test_http_redirects_to_https": ([edit(r"s|return 301 https://.*;|return 200 'plain http';|")], "not a 301"),
    "test_hsts_header": ([edit("/Strict-Transport-Security/d")], "no Strict-Transport-Security header"),
    "test_security_headers_present": ([edit("/X-Content-Type-Options/d")], "x-content-type-options"),
    "test_sensitive_paths_return_404": ([edit("/well-known/,+2d")], "no rule refusing hidden files"),
    "test_web_root_holds_no_sensitive_files": (
        ["mkdir -p /var/www/html/.git && echo '[core]' > /var/www/html/.git/config && touch /var/www/html/db.sql"],
        "/var/www/html/.git"),
    "test_request_rate_limited_per_client": ([edit("/limit_req zone/d")], "none refused with 429"),
    "test_oversized_body_refused": ([edit("s/client_max_body_size .*/client_max_body_size 100m;/")],
                                    "not refused with 413"),
    "test_connection_and_timeout_limits_configured": ([edit("s/keepalive_timeout .*/keepalive_timeout 75s;/")],
                                                      "keepalive_timeout (want 15s)"),
    "test_waf_stops_sql_injection": (
        ["sed -i 's/^SecRuleEngine On/SecRuleEngine DetectionOnly/' /etc/nginx/govbaseline-modsecurity.conf"],
        "not 403"),
    # A run that failed (the command cannot be executed): the timer is fine, the job is not.
    "test_expiry_warning_timer_active": (
        ["chmod 0644 /usr/local/sbin/govbaseline-tls-expiry && "
         "(systemctl start govbaseline-tls-expiry.service || true)"],
        "(certificate expiry check), finished"),
}


def test_every_tls_check_fails_for_its_own_reason_when_broken(pyinfra_lab, tmp_path):
    breaks = dict(CONFIG_BREAKS)
    last = next(reversed(breaks))
    scripts, words = breaks[last]
    breaks[last] = ([*scripts, "nginx -t -q && systemctl reload nginx"], words)
    assert_checks_fail_when_broken_together(pyinfra_lab, tmp_path, breaks, repair_tags="tls",
                                            cleanup=["rm -rf /var/www/html/.git /var/www/html/db.sql",
                                                     # The next run, once the command can run, succeeds.
                                                     "chmod 0755 /usr/local/sbin/govbaseline-tls-expiry && "
                                                     "systemctl start govbaseline-tls-expiry.service"])


def install_certificate(lab, host, cert: str, key: str) -> None:
    for name, text in (("fullchain.pem", cert), ("privkey.pem", key)):
        podman("exec", "-i", host.container, "sh", "-c", f"umask 077; cat > {TLS_DIR}/{name}",
               input_bytes=text.encode())
    sh(lab, host, "systemctl reload nginx")


def test_certificate_from_another_ca_fails_the_chain_check(pyinfra_lab, tmp_path):
    host = pyinfra_lab.hosts()[1]
    breaks = {"test_certificate_chain_verifies_for_every_name": (
        [f"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj /CN={host.name} "
         f"-addext subjectAltName=DNS:{host.name} -keyout {TLS_DIR}/privkey.pem -out {TLS_DIR}/fullchain.pem "
         "2>/dev/null && systemctl reload nginx"], "does not verify against the lab CA")}
    assert_checks_fail_when_broken_together(pyinfra_lab, tmp_path, breaks, repair_tags="tls", host_index=1)


def test_certificate_close_to_expiry_raises_an_alert(pyinfra_lab, tmp_path):
    lab = pyinfra_lab
    host = lab.hosts()[1]
    cert, key = lab.ca.issue(host.name, dns=[host.name], ips=[host.address], days=5)
    install_certificate(lab, host, cert, key)
    check = "test_certificate_outlives_the_warning_period"
    broken = verify(lab.inventory, tmp_path / "broken", limit=host.name, checks=[check])
    assert not broken.passed and "fewer than 21" in broken.output, broken.output[-2000:]
    lab.clear_sink()
    lab.exec(host, "systemctl", "start", "govbaseline-tls-expiry.service", check=False)  # exits 1: it warned
    # The body is quoted-printable: a soft line break may fall anywhere in it, so it is decoded first.
    text = wait_for_alert(lab, "tls-expiry", "days left (warning at 21)")
    assert f"host: {host.name}" in text, text[-1500:]
    repaired = run_ansible(lab.inventory, tags="tls-02", limit=host.name, stream=False)
    assert repaired.ok, repaired.output[-3000:]
    after = verify(lab.inventory, tmp_path / "after", limit=host.name, checks=[check])
    assert after.passed, after.output[-2000:]


def test_modern_profile_and_detection_only_waf_on_a_real_host(pyinfra_lab, tmp_path):
    """TLS 1.3 only, and ModSecurity logging the attack instead of refusing it; then back to the lab's settings."""
    lab = pyinfra_lab
    host = lab.hosts()[1]
    inventory = inventory_with(lab, tmp_path, tls_profile="modern", tls_waf_mode="detect")
    changed = run_ansible(inventory, tags="tls", limit=host.name, stream=False)
    assert changed.ok, changed.output[-3000:]
    try:
        outcome = verify(inventory, tmp_path / "modern", limit=host.name, controls=["TLS-01", "TLS-05"])
        assert outcome.passed, outcome.output[-3000:]
        checks = outcome.checks(host.name)
        offered = checks["test_only_tls12_and_tls13_offered"]["evidence"][0]["stdout"]
        assert "TLS 1.2: refused" in offered and "TLS 1.3: TLS_" in offered, offered
        assert checks["test_waf_stops_sql_injection"]["status"] == "pass"
    finally:
        back = run_ansible(lab.inventory, tags="tls", limit=host.name, stream=False)
        assert back.ok, back.output[-3000:]

