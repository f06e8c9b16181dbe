"""Checks for the HTTPS web service TLS-01..TLS-05 (role ``tls``).

Protocols, suites and session tickets are scanned with sslyze from the controller; every HTTP
request is sent from the probe's vantage point (another inventory host when one is set), with the
chain verified against ``tls_trusted_ca_cert`` (or the system's trust store).
"""

from __future__ import annotations

import re
import uuid

import pytest

from govbaseline.checks.schedule import alive, period_hours
from govbaseline.checks.tls_probe import LEGACY, handshake, http, resumption, tls12_suites_except

SENSITIVE_PROBES = ("/.git/config", "/.git/HEAD", "/.env", "/.svn/entries", "/.htpasswd", "/backup.sql",
                    "/site.tar.gz", "/db.sqlite", "/server.key", "/dump.sql.gz", "/index.html.bak")


def response(result: dict, index: int = 0) -> dict:
    assert not result["tls"].get("error"), result["tls"]["error"]
    assert result["responses"], "no response"
    got: dict = result["responses"][index]
    assert got["status"], f"{got['path']}: {got.get('error')}"
    return got


def headers(got: dict) -> dict[str, str]:
    return {k.lower(): v for k, v in got["headers"].items()}


def site_config(host, site_link: str) -> str:
    """The site's configuration as nginx loaded it (nginx -T), limited to the govbaseline site
    (enabled as ``site_link``, roles/tls/vars ``__tls_site_link``)."""
    out = host.run("nginx -T")
    assert out.rc == 0, f"nginx -T failed: {out.stderr[-500:]}"
    section = out.stdout.split(f"# configuration file {site_link}:", 1)
    assert len(section) == 2, f"nginx does not load {site_link}"
    return section[1].split("# configuration file ", 1)[0]


def https_server_block(host, site_link: str) -> str:
    text = site_config(host, site_link)
    start = text.find("listen 443")
    assert start >= 0, "the govbaseline site has no HTTPS server (listen 443)"
    return text[start:]


# -- TLS-01 -------------------------------------------------------------------------------------


def forward_secret_aead(suite: str) -> bool:
    return suite.startswith(("ECDHE-", "DHE-")) and re.search(r"GCM|CHACHA20", suite) is not None


@pytest.mark.control("TLS-01")
@pytest.mark.outside  # sslyze's OpenSSL builds live on the controller
def test_only_tls12_and_tls13_offered(host, hostvars, evidence):
    allowed = ("TLS 1.3",) if hostvars["tls_profile"] == "modern" else ("TLS 1.2", "TLS 1.3")
    chosen = {version: handshake(hostvars, version) for version in (*LEGACY, "TLS 1.2", "TLS 1.3")}
    evidence("handshakes offering every suite, per protocol",
             "\n".join(f"{v}: {c or 'refused'}" for v, c in chosen.items()))
    extra = [v for v, suite in chosen.items() if suite and v not in allowed]
    assert not extra, f"the site accepts {', '.join(extra)} (only {' and '.join(allowed)} are allowed)"
    missing = [v for v in allowed if not chosen[v]]
    assert not missing, f"the site refuses {', '.join(missing)}"


@pytest.mark.control("TLS-01")
@pytest.mark.outside  # sslyze's OpenSSL builds live on the controller
def test_only_forward_secret_aead_suites(host, hostvars, evidence):
    if hostvars["tls_profile"] == "modern":
        pytest.skip("the modern profile offers TLS 1.3 only, whose suites are all forward secret and AEAD")
    weak = tls12_suites_except(forward_secret_aead)
    chosen = handshake(hostvars, "TLS 1.2", weak)
    evidence(f"TLS 1.2 handshake offering only the {len(weak.split(':'))} suites that are not forward secret "
             "with AEAD (GCM, ChaCha20)", chosen or "refused", ok=chosen is None)
    assert chosen is None, f"the site accepts the weak TLS 1.2 suite {chosen} (not forward secret or not AEAD)"
    assert handshake(hostvars, "TLS 1.2", None), "the site refuses TLS 1.2 with its usual suites"


@pytest.mark.control("TLS-01")
@pytest.mark.outside  # sslyze's OpenSSL builds live on the controller
def test_session_tickets_off(host, hostvars, evidence):
    result = resumption(hostvars)
    tickets = result.tls_ticket_successful_resumptions_count
    evidence("sslyze: TLS 1.2 session resumption", f"resumed with a TLS ticket {tickets} of "
             f"{result.tls_ticket_attempted_resumptions_count} times")
    assert tickets == 0, "the site resumes sessions with TLS tickets (ssl_session_tickets must be off)"


@pytest.mark.control("TLS-01")
def test_http_redirects_to_https(host, hostvars, probe):
    name = hostvars["tls_server_names"][0]
    got = response(http(probe, hostvars, [{"path": "/some/page?x=1"}], tls=False))
    location = headers(got).get("location", "")
    assert got["status"] == 301 and location == f"https://{name}/some/page?x=1", \
        f"http://{name}/some/page?x=1 answered {got['status']} (Location: {location or '-'}), not a 301 to https"


@pytest.mark.control("TLS-01")
def test_hsts_header(host, hostvars, probe):
    got = response(http(probe, hostvars, [{"path": "/"}]))
    hsts = headers(got).get("strict-transport-security", "")
    match = re.search(r"max-age=(\d+)", hsts)
    assert match, f"no Strict-Transport-Security header (got {hsts!r})"
    assert int(match.group(1)) >= 31536000, f"HSTS max-age {match.group(1)} is under one year"
    if hostvars["tls_hsts_include_subdomains"]:
        assert "includesubdomains" in hsts.lower(), f"HSTS lacks includeSubDomains: {hsts}"


# -- TLS-02 -------------------------------------------------------------------------------------


@pytest.mark.control("TLS-02")
def test_certificate_chain_verifies_for_every_name(host, hostvars, probe):
    expected = "the lab CA" if hostvars.get("tls_trusted_ca_cert") else "the system trust store"
    for name in hostvars["tls_server_names"]:
        if name.startswith("*."):
            name = "www" + name[1:]
        result = http(probe, hostvars, [{"path": "/", "method": "HEAD"}], name=name)
        assert not result["tls"].get("error"), \
            f"the chain served for {name} does not verify against {expected}: {result['tls']['error']}"


@pytest.mark.control("TLS-02")
def test_certificate_outlives_the_warning_period(host, hostvars, probe):
    tls = http(probe, hostvars, [])["tls"]
    assert not tls.get("error"), tls["error"]
    days = hostvars["tls_expiry_warn_days"]
    assert tls["days_left"] > days, \
        f"the certificate expires {tls['not_after']}: {tls['days_left']:.0f} days left, fewer than {days}"


@pytest.mark.control("TLS-02")
def test_expiry_warning_timer_active(host, hostvars, evidence):
    unit = hostvars["__tls_expiry_unit"]
    alive(host, unit, "certificate expiry check", period_hours(host, hostvars["__tls_expiry_calendar"]),
          hostvars["__tls_expiry_delay_minutes"], evidence)
    if hostvars["tls_certificate_source"] == "acme":
        renew = hostvars["__tls_certbot_timer"]
        alive(host, renew["unit"], "certbot renewal", period_hours(host, renew["calendar"]), renew["delay_minutes"],
              evidence)
    command = host.run("systemctl show -p ExecStart --value %s.service", unit).stdout
    assert f"--days {hostvars['tls_expiry_warn_days']}" in command and "fullchain.pem" in command, \
        f"the expiry check does not watch the served certificate with the configured days: {command.strip()}"


# -- TLS-03 -------------------------------------------------------------------------------------


@pytest.mark.control("TLS-03")
def test_security_headers_present(host, hostvars, probe):
    got = headers(response(http(probe, hostvars, [{"path": "/"}])))
    expected_csp = f"{hostvars['tls_content_security_policy']}; frame-ancestors {hostvars['tls_frame_ancestors']}"
    wanted = {"x-content-type-options": "nosniff", "content-security-policy": expected_csp,
              "referrer-policy": hostvars["tls_referrer_policy"],
              "permissions-policy": hostvars["tls_permissions_policy"]}
    wrong = {k: got.get(k) for k, v in wanted.items() if got.get(k) != v}
    assert not wrong, f"security headers missing or wrong: {wrong}"
    assert not re.search(r"\d", got.get("server", "")), f"the Server header shows a version: {got['server']}"


@pytest.mark.control("TLS-03")
def test_sensitive_paths_return_404(host, hostvars, probe):
    config = https_server_block(host, hostvars["__tls_site_link"])
    assert r"location ~ /\.(?!well-known" in config, "nginx has no rule refusing hidden files (.git, .env)"
    rule = re.search(r"location ~\* \\\.\(([^)]*)\)\$", config)
    listed = set(rule.group(1).split("|")) if rule else set()
    missing = [e for e in hostvars["tls_sensitive_extensions"] if e not in listed]
    assert not missing, f"nginx has no rule refusing files ending in {', '.join(missing)}"
    result = http(probe, hostvars, [{"path": p, "method": "GET"} for p in SENSITIVE_PROBES])
    answers = [response(result, i) for i in range(len(SENSITIVE_PROBES))]
    served = [f"{r['path']} ({r['status']})" for r in answers if r["status"] != 404]
    assert not served, f"sensitive paths not answered with 404: {', '.join(served)}"


@pytest.mark.control("TLS-03")
def test_web_root_holds_no_sensitive_files(host, hostvars):
    root = hostvars["tls_web_root"]
    endings = "|".join(re.escape(e) for e in hostvars["tls_sensitive_extensions"])
    out = host.run("find %s -mindepth 1 \\( -name '.*' -not -name .well-known -prune -o "
                   "-regextype posix-extended -iregex %s \\) -print", root, f".*\\.({endings})$")
    assert out.rc == 0, out.stderr
    found = sorted(out.stdout.split())
    assert not found, f"sensitive files in the web root {root}: {', '.join(found)}"


# -- TLS-04 -------------------------------------------------------------------------------------


@pytest.mark.control("TLS-04")
def test_request_rate_limited_per_client(host, hostvars, probe):
    rate, burst = hostvars["tls_rate_limit_per_second"], hostvars["tls_rate_limit_burst"]
    # A burst well above rate + burst; a busy vantage point may still send too slowly to reach the
    # limit, so up to three bursts, each larger: one 429 proves the limit.
    for attempt in range(1, 4):
        count = (rate + burst + 30) * attempt
        result = http(probe, hostvars, [{"path": "/", "method": "HEAD", "repeat": count, "parallel": 6 * attempt,
                                         "expect_429": True}])
        statuses = [response(result, i)["status"] for i in range(count)]
        limited = statuses.count(429)
        # No wait for the client's bucket to drain: a check that asks the site anything after this
        # one waits out a 429 itself (tls_probe.HTTP_PROBE), so the checks need not run in order.
        if limited:
            break
    assert limited, (f"{count} requests in a burst from {probe.where}: none refused with 429 "
                     f"(statuses {sorted(set(statuses))}); the limit is {rate}/s, burst {burst}")


def size_bytes(value: str) -> int:
    unit = {"k": 1024, "m": 1024**2, "g": 1024**3}.get(value[-1].lower(), 1)
    return int(value.rstrip("kKmMgG")) * unit


@pytest.mark.control("TLS-04")
def test_oversized_body_refused(host, hostvars, probe):
    limit = size_bytes(hostvars["tls_client_max_body_size"])
    # Only the headers are sent: nginx refuses a declared length over the limit at once; a server
    # that accepts it waits for the body, until the probe's read times out or its own body timeout
    # closes the connection without an answer.
    result = http(probe, hostvars, [{"path": "/", "method": "POST", "timeout": 4,
                                     "headers": {"Content-Length": str(limit + 1024)}}])
    got = result["responses"][0] if result["responses"] else {"status": 0, "error": result["tls"].get("error")}
    if got["status"] == 0 and re.search(r"timed out|closed connection without response", str(got.get("error"))):
        pytest.fail(f"a body of {limit + 1024} bytes was accepted (the server waited for it), not refused with 413")
    got = response(result)
    assert got["status"] == 413, f"a body of {limit + 1024} bytes was answered {got['status']}, not 413"


@pytest.mark.control("TLS-04")
def test_connection_and_timeout_limits_configured(host, hostvars):
    config = https_server_block(host, hostvars["__tls_site_link"])
    wanted = {"limit_conn": f"govbaseline_conn {hostvars['tls_connections_per_address']}",
              "client_body_timeout": f"{hostvars['tls_client_body_timeout']}s",
              "client_header_timeout": f"{hostvars['tls_client_header_timeout']}s",
              "keepalive_timeout": f"{hostvars['tls_keepalive_timeout']}s",
              "send_timeout": f"{hostvars['tls_send_timeout']}s"}
    wrong = [f"{k} (want {v})" for k, v in wanted.items() if not re.search(rf"^\s*{k} {re.escape(v)};", config, re.M)]
    assert not wrong, f"the HTTPS server lacks: {', '.join(wrong)}"


# -- TLS-05 -------------------------------------------------------------------------------------


@pytest.mark.control("TLS-05")
def test_waf_stops_sql_injection(host, hostvars, probe):
    mode = hostvars["tls_waf_mode"]
    if mode == "off":
        pytest.skip("the web application firewall is off (tls_waf_mode: off)")
    marker = uuid.uuid4().hex
    # A path that does not exist: a benign request gets 404, so a 403 can only come from the firewall.
    path = f"/govbaseline-waf-probe-{marker}"
    attack = f"{path}?id=1%27%20OR%20%271%27%3D%271"
    result = http(probe, hostvars, [{"path": f"{path}?id=1"}, {"path": attack}])
    benign, got = response(result, 0), response(result, 1)
    assert benign["status"] == 404, f"a benign request to {path} was answered {benign['status']}, not 404"
    if mode == "block":
        assert got["status"] == 403, f"a SQL injection probe ({attack}) was answered {got['status']}, not 403"
        return
    assert got["status"] == 404, f"detection mode blocked the SQL injection probe ({got['status']})"
    # A transaction with warnings is written to ModSecurity's audit log whatever its status.
    logged = host.run("grep -c %s %s", marker, hostvars["__tls_waf_audit_log"])
    assert logged.stdout.strip() not in ("", "0"), \
        f"detection mode: the SQL injection probe ({attack}) is not in ModSecurity's audit log"
