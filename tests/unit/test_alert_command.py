"""The host's alert command (roles/alerts/files/govbaseline-alert) with a stand-in msmtp.

The lab tests send real alerts to a real SMTP sink; these cover the queue logic quickly: who an
alert reaches, what a failed delivery leaves behind, and that a retry delivers it.
"""

from __future__ import annotations

import email
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from govbaseline.paths import ROLES_DIR


def load_command():
    path = ROLES_DIR / "alerts" / "files" / "govbaseline-alert"
    loader = importlib.machinery.SourceFileLoader("govbaseline_alert", str(path))
    spec = importlib.util.spec_from_loader("govbaseline_alert", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture
def alert(tmp_path, monkeypatch):
    module = load_command()
    journal: list[tuple[int, str, dict]] = []
    monkeypatch.setattr(module, "journal", lambda prio, msg, **fields: journal.append((prio, msg, fields)))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    msmtp = bindir / "msmtp"
    msmtp.write_text(f"#!/bin/sh\n[ -f {tmp_path}/relay-down ] && {{ echo 'connection refused' >&2; exit 69; }}\n"
                     f"cat > {tmp_path}/sent-$$.eml; echo \"$@\" > {tmp_path}/args-$$\n")
    msmtp.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "spool").mkdir()
    config = {"from": "gb@example.gov", "subject_prefix": "[govbaseline]", "cert_address": "cert@example.gov",
              "recipients": {"low": ["ops@example.gov"], "high": ["ciso@example.gov"]}, "webhook_url": "",
              "webhook_token_file": "", "msmtp_config": str(tmp_path / "msmtprc"), "spool": str(tmp_path / "spool")}
    (tmp_path / "msmtprc").write_text("account default\n")
    (tmp_path / "config.json").write_text(json.dumps(config))
    module.test_journal = journal
    module.test_dir = tmp_path
    module.test_config = str(tmp_path / "config.json")
    return module


def test_recipients_grow_with_severity_and_critical_reaches_the_cert(alert):
    config = alert.load_config(alert.test_config)
    assert alert.recipients(config, "low") == ["ops@example.gov"]
    assert alert.recipients(config, "high") == ["ops@example.gov", "ciso@example.gov"]
    assert alert.recipients(config, "critical") == ["ops@example.gov", "ciso@example.gov", "cert@example.gov"]


def test_delivered_alert_is_journaled_mailed_and_not_queued(alert, capsys):
    rc = alert.main(["--config", alert.test_config, "--severity", "high", "--source", "clamav", "EICAR found"])
    assert rc == 0
    mails = list(alert.test_dir.glob("sent-*.eml"))
    assert len(mails) == 1
    text = mails[0].read_text()
    assert "Subject: [govbaseline] HIGH clamav on " in text and "X-Govbaseline-Source: clamav" in text
    args = next(alert.test_dir.glob("args-*")).read_text().split()
    assert args[-2:] == ["ops@example.gov", "ciso@example.gov"] and "gb@example.gov" in args
    assert not list((alert.test_dir / "spool").iterdir())
    alert_id = capsys.readouterr().out.strip()
    assert any(f.get("alert_id") == alert_id and f.get("delivery") == "ok" for _, _, f in alert.test_journal)


def test_failed_delivery_is_logged_queued_and_retried(alert, capsys):
    (alert.test_dir / "relay-down").touch()
    rc = alert.main(["--config", alert.test_config, "--severity", "critical", "--source", "aide", "web root changed"])
    assert rc == 75
    queued = list((alert.test_dir / "spool").glob("*.json"))
    assert len(queued) == 1
    record = json.loads(queued[0].read_text())
    assert record["pending"] == ["mail"] and record["attempts"] == 1 and "connection refused" in record["last_error"]
    assert oct(queued[0].stat().st_mode & 0o777) == "0o600"
    assert any(prio == 3 and "queued for retry" in msg for prio, msg, _ in alert.test_journal)
    # The relay is back; a retry of an alert past its sender's own attempt delivers it.
    (alert.test_dir / "relay-down").unlink()
    record["time"] = int(time.time()) - 120
    queued[0].write_text(json.dumps(record))
    assert alert.main(["--config", alert.test_config, "--flush"]) == 0
    assert not list((alert.test_dir / "spool").glob("*.json"))
    assert "cert@example.gov" in next(alert.test_dir.glob("args-*")).read_text()


def test_missing_configuration_is_an_error_not_silence(alert, tmp_path):
    assert alert.main(["--config", str(tmp_path / "nope.json"), "hello"]) == 78
    assert any(prio == 2 and "misconfigured" in msg for prio, msg, _ in alert.test_journal)


def test_a_message_is_required(alert):
    assert alert.main(["--config", alert.test_config]) == 64


def test_config_template_keys_are_what_the_command_reads():
    keys = set(json.loads(Path(ROLES_DIR / "alerts" / "templates" / "config.json.j2").read_text()
                          .replace("{{", '"').replace("}}", '"').replace('""', '"'), strict=False))
    assert {"recipients", "spool", "msmtp_config", "cert_address", "webhook_url"} <= keys


# Flood control: one event must not become a flood of mails; the journal keeps every alert.

BAN = "banned 203.0.113.{n} on web1.example.gov for 600 s in jail sshd after 5 failures"


@pytest.fixture
def flood(alert, monkeypatch):
    """The alert command with flood control on (10-minute window, 20 an hour) and a clock the test moves."""
    config = json.loads(Path(alert.test_config).read_text())
    config.update(flood_window_minutes=10, flood_max_per_hour=20, retry_interval_minutes=5)
    Path(alert.test_config).write_text(json.dumps(config))
    clock = [1_800_000_000.0]
    monkeypatch.setattr(alert, "now", lambda: clock[0])
    alert.clock = clock
    return alert


def raise_(alert, *args: str) -> int:
    return alert.main(["--config", alert.test_config, *args])


def mails(alert) -> list[str]:
    """Each mail the stand-in relay got, oldest first: its headers and its decoded text."""
    found = []
    for path in sorted(alert.test_dir.glob("sent-*.eml"), key=lambda p: p.stat().st_mtime_ns):
        msg = email.message_from_bytes(path.read_bytes())
        found.append("".join(f"{k}: {v}\n" for k, v in msg.items()) + msg.get_payload(decode=True).decode())
    return found


def summaries(alert) -> list[str]:
    return [m for m in mails(alert) if "X-Govbaseline-Source: govbaseline-alert" in m]


def raised(alert, source: str) -> list[dict]:
    """The journal entries of the alerts raised by ``source`` (not the delivery notes)."""
    return [f for _, _, f in alert.test_journal if f.get("source") == source and "subject" in f]


def test_kind_masks_what_varies_between_alerts_of_one_event(alert):
    kind = alert.kind_of
    assert kind(BAN.format(n=7)) == kind(BAN.format(n=201)) == \
        kind("banned 2001:db8::17 on web1.example.gov for 1200 s in jail sshd after 3 failures")
    assert kind(BAN.format(n=7)) != kind(BAN.format(n=7).replace("sshd", "govbaseline-nginx-4xx"))
    assert kind("Eicar-Signature found in /var/www/a.php") == kind("Eicar-Signature found in /srv/x/b.js")
    assert kind("Eicar-Signature found in /var/www/a.php") != kind("Win.Trojan found in /var/www/a.php")
    assert kind("files differ: /etc/a, /etc/b, /etc/c at 2026-11-30T10:00:00Z") == kind("files differ: /etc/x at 14:02")


def test_30_bans_at_once_send_one_alert_and_one_summary_by_the_retry_timer(flood, capsys):
    """The example of issue 17: a distributed brute force, 30 addresses banned at once."""
    for n in range(1, 31):
        assert raise_(flood, "--severity", "medium", "--source", "fail2ban", BAN.format(n=n)) == 0
        flood.clock[0] += 1
    sent = mails(flood)
    assert len(sent) == 1 and "203.0.113.1 on" in sent[0], f"{len(sent)} mails for one burst"
    journal = raised(flood, "fail2ban")
    assert len(journal) == 30, "the journal must keep every alert, held back or not"
    held = [f for f in journal if f.get("held")]
    assert len(held) == 29 and {f["held"] for f in held} == {"merged"}
    assert len({f["flood_batch"] for f in held}) == 1
    ids = capsys.readouterr().out.split()
    assert len(ids) == 30 and {f["alert_id"] for f in journal} == set(ids), "every held alert prints its id"
    assert not list((flood.test_dir / "spool").glob("*.json")), "held alerts are not queued"
    # No further alert comes; the retry timer's --flush sends the summary once the window has closed.
    assert raise_(flood, "--flush") == 0 and not summaries(flood), "a summary before the window closed"
    flood.clock[0] += 10 * 60
    assert raise_(flood, "--flush") == 0
    (summary,) = summaries(flood)
    assert "held back 29 alerts" in summary and "journalctl -t govbaseline-alert GOVBASELINE_FLOOD_BATCH=" \
        f"{held[0]['flood_batch']}" in summary
    assert "29 x medium fail2ban (29 merged, 0 capped" in summary and "in jail sshd" in summary
    assert "ops@example.gov" in summary and "MEDIUM govbaseline-alert" in summary
    assert [f["held_count"] for f in raised(flood, "govbaseline-alert")] == [29]
    flood.clock[0] += 3600
    assert raise_(flood, "--flush") == 0 and len(summaries(flood)) == 1, "a summary is sent once"
    # The window is over: the next ban goes out again.
    assert raise_(flood, "--severity", "medium", "--source", "fail2ban", BAN.format(n=99)) == 0
    assert len(mails(flood)) == 3


def test_a_burst_of_tamper_alerts_is_summarised_by_the_next_alert(flood):
    for n in range(12):
        text = f"web pages in /var/www on web1 differ from the known-good copy: changed page{n}.html"
        assert raise_(flood, "--severity", "high", "--source", "integrity", "--kind", "web pages differ", text) == 0
        assert raise_(flood, "--severity", "high", "--source", "integrity",
                      f"files differ from the approved state on web1: changed /var/www/page{n}.html") == 0
        flood.clock[0] += 5
    assert len(mails(flood)) == 2, "one tamper alert and one AIDE alert"
    assert len(raised(flood, "integrity")) == 24
    flood.clock[0] += 10 * 60
    # The window has closed: the next alert, of any source, first sends the summary.
    assert raise_(flood, "--severity", "low", "--source", "patching", "3 packages upgraded on web1") == 0
    (summary,) = summaries(flood)
    assert "held back 22 alerts" in summary and "HIGH govbaseline-alert" in summary
    assert "11 x high integrity (11 merged" in summary and "changed page1.html" in summary
    assert "files differ from the approved state on web1: changed /var/www/page1.html" in summary
    assert len(mails(flood)) == 4


def test_the_hourly_cap_holds_the_rest_and_a_summary_counts_it(flood):
    for n in range(25):
        assert raise_(flood, "--severity", "low", "--source", f"job{n}", "something happened") == 0
    assert len(mails(flood)) == 20
    held = [f for f in raised(flood, "job24") + raised(flood, "job20")]
    assert {f.get("held") for f in held} == {"capped"}
    flood.clock[0] += 10 * 60
    assert raise_(flood, "--flush") == 0
    (summary,) = summaries(flood)
    assert "held back 5 alerts" in summary and "hourly limit of 20" in summary


def test_a_critical_alert_held_back_sends_a_summary_at_once(flood):
    for n in range(10):
        assert raise_(flood, "--severity", "critical", "--source", "aide", f"web root changed: /var/www/x{n}.php") == 0
    sent = mails(flood)
    # The first goes out, the second is held and sends the summary at once; the rest wait for the window.
    assert len(sent) == 2 and "CRITICAL aide" in sent[0], [m.split("Subject: ")[1][:80] for m in sent]
    (summary,) = summaries(flood)
    assert "held back 1 alert " in summary and "CRITICAL govbaseline-alert" in summary
    assert "A critical alert was held back" in summary and "/var/www/x1.php" in summary
    assert "cert@example.gov" in summary, "the summary of a critical alert reaches the CERT"
    flood.clock[0] += 10 * 60
    assert raise_(flood, "--flush") == 0
    assert len(summaries(flood)) == 2 and "held back 8 alerts" in summaries(flood)[-1]
    assert len(raised(flood, "aide")) == 10


def test_flood_control_off_sends_every_alert(alert):
    config = json.loads(Path(alert.test_config).read_text())
    config.update(flood_window_minutes=0, flood_max_per_hour=0)
    Path(alert.test_config).write_text(json.dumps(config))
    for n in range(1, 11):
        assert raise_(alert, "--severity", "medium", "--source", "fail2ban", BAN.format(n=n)) == 0
    assert len(mails(alert)) == 10 and not summaries(alert)
    assert not [f for f in raised(alert, "fail2ban") if f.get("held")]
    assert not (alert.test_dir / "spool" / "flood.state").exists()


def test_the_channel_test_is_never_held_back(flood):
    for _ in range(3):
        assert raise_(flood, "--severity", "low", "--source", "govbaseline-verify", "--bypass-flood-control",
                      "verification test alert: the alert channel works") == 0
    assert len(mails(flood)) == 3


def test_unreadable_flood_state_lets_the_alert_out(flood):
    (flood.test_dir / "spool" / "flood.state").write_text('{"kinds": []}')
    assert raise_(flood, "--severity", "high", "--source", "clamav", "EICAR found in /tmp/x") == 0
    assert len(mails(flood)) == 1
    assert any("starting afresh" in msg for _, msg, _ in flood.test_journal)


def test_30_parallel_callers_count_right(alert, tmp_path):
    """Thirty fail2ban actions at once, each its own process: one mail, one summary of 29."""
    config = json.loads(Path(alert.test_config).read_text())
    config.update(flood_window_minutes=10, flood_max_per_hour=20)
    Path(alert.test_config).write_text(json.dumps(config))
    logger = tmp_path / "bin" / "logger"  # the journal: one file per entry
    logger.write_text(f"#!/bin/sh\ncat > \"$(mktemp -p {tmp_path} journal-XXXXXXXX)\"\n")
    logger.chmod(0o755)
    script = ROLES_DIR / "alerts" / "files" / "govbaseline-alert"
    procs = [subprocess.Popen([sys.executable, str(script), "--config", alert.test_config, "--severity", "medium",
                               "--source", "fail2ban", BAN.format(n=n)], stdout=subprocess.PIPE)
             for n in range(1, 31)]
    assert [p.wait(timeout=60) for p in procs] == [0] * 30
    entries = [p.read_text() for p in tmp_path.glob("journal-*")]
    raised_ = [e for e in entries if "GOVBASELINE_SOURCE=fail2ban" in e]
    assert len(raised_) == 30
    assert len([e for e in raised_ if "GOVBASELINE_HELD=merged" in e]) == 29
    assert len(mails(alert)) == 1
    state = json.loads((tmp_path / "spool" / "flood.state").read_text())
    assert state["batch"]["count"] == 29
    # The window closes (moved back in the state, as no clock can be moved in another process).
    state["batch"]["opened"] -= 11 * 60
    (tmp_path / "spool" / "flood.state").write_text(json.dumps(state))
    done = subprocess.run([sys.executable, str(script), "--config", alert.test_config, "--flush"], check=False)
    assert done.returncode == 0
    assert len(summaries(alert)) == 1 and "held back 29 alerts" in summaries(alert)[0]


def test_critical_alerts_of_a_new_kind_are_never_capped(flood):
    """A full hour holds low alerts back, never a critical alert of a kind not sent yet: each goes out
    at once (review of issue 17, kind 6: a cap could hold a second critical kind with no summary)."""
    for n in range(20):
        assert raise_(flood, "--severity", "low", "--source", f"job{n}", "something happened") == 0
    assert len(mails(flood)) == 20
    for source, text in (("aide", "web root tampered on web1"), ("clamav", "malware found in /var/www/a.php"),
                         ("backup", "backup repository deleted on the server")):
        assert raise_(flood, "--severity", "critical", "--source", source, text) == 0
    critical = [m for m in mails(flood) if "CRITICAL" in m]
    assert len(critical) == 3, [m.split("Subject: ")[1][:80] for m in mails(flood)]
    assert all(not f.get("held") for source in ("aide", "clamav", "backup") for f in raised(flood, source))
