"""The host's alert command (roles/alerts/files/govbaseline-alert) with a stand-in msmtp.

The lab tests send real alerts to a real SMTP sink; these cover the queue logic quickly: who an
alert reaches, what a failed delivery leaves behind, and that a retry delivers it.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
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
