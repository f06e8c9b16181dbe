"""The IDS alert forwarder (roles/ids/files/govbaseline-ids-alerts) on a synthetic EVE file: what it
forwards, what it de-duplicates, what the rate limit holds back, and where it resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from govbaseline.paths import ROLES_DIR

FORWARDER = ROLES_DIR / "ids" / "files" / "govbaseline-ids-alerts"


def event(sid: int, source: str, severity: int = 1) -> str:
    return json.dumps({"timestamp": "2026-11-23T02:00:00+0000", "event_type": "alert", "src_ip": source,
                       "src_port": 40000, "dest_ip": "192.0.2.10", "dest_port": 80, "proto": "TCP",
                       "alert": {"signature_id": sid, "signature": f"rule {sid}", "severity": severity,
                                 "category": "Web Application Attack"},
                       "http": {"url": f"/attack-{sid}"}}) + "\n"


def run(tmp_path: Path) -> tuple[dict, list[list[str]]]:
    env = {**os.environ, "GOVBASELINE_IDS_ALERTS_CONFIG": str(tmp_path / "alerts.json"),
           "GOVBASELINE_ALERT_COMMAND": str(tmp_path / "alert")}
    subprocess.run([sys.executable, str(FORWARDER), "--once"], env=env, check=True, timeout=30)
    sent = [json.loads(line) for line in (tmp_path / "sent").read_text().splitlines()] \
        if (tmp_path / "sent").exists() else []
    return json.loads((tmp_path / "state" / "state.json").read_text()), sent


def test_forwards_once_per_signature_and_source_and_holds_back_over_the_hourly_limit(tmp_path):
    eve = tmp_path / "eve.json"
    (tmp_path / "state").mkdir()
    (tmp_path / "alerts.json").write_text(json.dumps({"eve": str(eve), "state_dir": str(tmp_path / "state"),
                                                      "min_severity": "medium", "dedup_minutes": 60,
                                                      "max_per_hour": 3}))
    # A stand-in for govbaseline-alert that records its arguments.
    (tmp_path / "alert").write_text(f"#!{sys.executable}\nimport json, sys\n"
                                    f"open({str(tmp_path / 'sent')!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    (tmp_path / "alert").chmod(0o755)
    eve.write_text(event(1, "198.51.100.1") * 5 + event(2, "198.51.100.1", severity=3)
                   + event(1, "198.51.100.2") + json.dumps({"event_type": "flow"}) + "\n"
                   + event(3, "198.51.100.3", severity=2) + event(4, "198.51.100.4") + event(5, "198.51.100.5"))
    (tmp_path / "state" / "state.json").write_text(json.dumps({"inode": eve.stat().st_ino, "offset": 0}))
    state, sent = run(tmp_path)
    assert [args[args.index("--severity") + 1] for args in sent] == ["high", "high", "medium"]
    assert "rule 1 (sid 1, Web Application Attack) from 198.51.100.1:40000" in sent[0][-1]
    assert "from 198.51.100.2" in sent[1][-1] and "request /attack-3" in sent[2][-1]
    assert state["sent"] == 3 and state["deduplicated"] == 4 and state["below_severity"] == 1
    assert state["rate_limited"] == 2 and state["held"] == 2
    # A second run resumes where the first stopped: nothing is sent twice.
    again, sent_again = run(tmp_path)
    assert len(sent_again) == 3 and again["offset"] == eve.stat().st_size
