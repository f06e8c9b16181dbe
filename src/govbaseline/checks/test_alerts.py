"""Checks for the alert channel ALERT-01 and ALERT-02 (role ``alerts``)."""

from __future__ import annotations

import json
import time

import pytest

from govbaseline.checks.schedule import alive


@pytest.mark.control("ALERT-01")
def test_alert_channel_configured_and_private(host, hostvars):
    check = host.run("%s --check-config", hostvars["__alerts_command"])
    assert check.rc == 0, f"govbaseline-alert --check-config failed (exit {check.rc}): {check.stderr.strip()}"
    config_dir = hostvars["__alerts_config_dir"]
    for path in (f"{config_dir}/config.json", f"{config_dir}/msmtprc"):
        f = host.file(path)
        assert f.user == "root" and f.mode & 0o077 == 0, f"{path} is readable by others (mode {f.mode:o})"


@pytest.mark.control("ALERT-01")
def test_test_alert_is_delivered_and_journaled(host, hostvars):
    """A real alert goes through the relay (and the webhook); the journal holds it under its id."""
    # The channel test is not held back by flood control: repeated runs must each prove delivery.
    sent = host.run("%s --severity low --source govbaseline-verify --bypass-flood-control %s",
                    hostvars["__alerts_command"], "verification test alert: the alert channel works")
    assert sent.rc == 0, (f"the test alert was not delivered (exit {sent.rc}; 75 = queued for retry): "
                          f"{sent.stderr.strip()} -- see journalctl -t govbaseline-alert")
    alert_id = sent.stdout.strip().splitlines()[-1]
    for _ in range(20):
        entries = host.run("journalctl -o json --no-pager -t govbaseline-alert GOVBASELINE_ALERT_ID=%s", alert_id)
        records = [json.loads(line) for line in entries.stdout.splitlines() if line.strip()]
        if any(r.get("GOVBASELINE_DELIVERY") == "ok" for r in records):
            break
        time.sleep(0.3)
    assert any(r.get("GOVBASELINE_SOURCE") == "govbaseline-verify" for r in records), \
        f"alert {alert_id} is not in the journal under identifier govbaseline-alert"
    assert any(r.get("GOVBASELINE_DELIVERY") == "ok" for r in records), f"no delivery of {alert_id} was journaled"


@pytest.mark.control("ALERT-01")
def test_no_alert_left_undelivered(host, hostvars):
    """Queued alerts are retried; one still queued after two retry periods is a broken channel."""
    limit = 2 * 60 * hostvars["alerts_retry_interval_minutes"]
    spool = hostvars["__alerts_spool_dir"]
    listing = host.run("find %s -name '*.json' -printf '%%T@ %%f\\n'", spool)
    assert listing.rc == 0, f"alert queue {spool} cannot be read: {listing.stderr.strip()}"
    now = float(host.run("date +%s").stdout.strip())
    stuck = [line.split()[1] for line in listing.stdout.splitlines() if now - float(line.split()[0]) > limit]
    assert not stuck, (f"alerts undelivered for more than {limit} s: {', '.join(stuck)} "
                       "(see journalctl -t govbaseline-alert)")


@pytest.mark.control("ALERT-01")
def test_retry_timer_active(host, hostvars, evidence):
    """Queued alerts are retried only while the retry job is alive (its timer fires every interval)."""
    alive(host, hostvars["__alerts_retry_unit"], "alert retry", hostvars["alerts_retry_interval_minutes"] / 60, 0,
          evidence)


@pytest.mark.control("ALERT-02")
def test_critical_alerts_reach_the_cert(host, hostvars):
    cert = hostvars["alerts_cert_address"]
    assert cert, "alerts_cert_address is empty: critical incidents would not be reported to the national CERT"
    who = host.run("%s --recipients critical", hostvars["__alerts_command"])
    assert who.rc == 0, who.stderr
    assert cert in who.stdout.split(), f"critical alerts reach {who.stdout.split()}, not the CERT address {cert}"
    high = host.run("%s --recipients high", hostvars["__alerts_command"]).stdout.split()
    assert high, "high-severity alerts reach nobody"
