"""The evidence history and the inspection report (REP-01) on a real host: verify --history runs
while things happen (an EICAR detection, a tampered page the watch puts back, a backup that fails
while the backup server is down and then a good one with its restore drill, a control broken then
repaired, a waiver in the waivers file), the host's own records come into the history with each
run, and the inspection report counts what the test did; a run edited afterwards is caught by
`history verify`.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from trestle.oscal.assessment_results import AssessmentResults

from govbaseline.cli import main
from govbaseline.eicar import DETECTED_AS, EICAR
from govbaseline.engines import apply, run_ansible
from tests.lab.conftest import LAB_PREFIX, inventory_with, sh, wait_for_alert

pytestmark = pytest.mark.lab

CONTROLS = "FW-01,AV-02"  # the controls the test breaks or sets off: a short run each time


def test_history_gathers_the_hosts_records_and_inspection_counts_them(lab_factory, tmp_path, capsys):
    lab = lab_factory(f"{LAB_PREFIX}-inspection", hosts=1)
    converged = apply(lab.inventory, engine="ansible", stream=False)
    assert converged.ok, converged.output[-3000:]
    host = lab.hosts()[0]
    # The watch puts tampered pages back from the release folder.
    sh(lab, host, "rm -rf /srv/release && cp -a /var/www /srv/release")
    inventory = inventory_with(lab, tmp_path, integrity_tamper_restore=True, integrity_known_good_dir="/srv/release")
    restoring = run_ansible(inventory, tags="integrity", stream=False)
    assert restoring.ok, restoring.output[-3000:]
    where = tmp_path / "history"

    waivers = tmp_path / "waivers.yml"
    waivers.write_text(f"- control: FIM-01\n  scope: {{hosts: [{host.name}]}}\n  justification: release in progress\n"
                       "  approver: J. Doe\n  expires: 2099-12-31\n")

    def verify_run(number: int) -> int:
        return main(["verify", "-i", str(inventory), "--report-dir", str(tmp_path / f"run{number}"),
                     "--history", str(where), "--control", CONTROLS, "--waivers", str(waivers)])

    assert verify_run(1) == 0, capsys.readouterr().out[-3000:]
    # An EICAR file under /srv (scanned, outside the watched web root): the scheduled scan (started as
    # its timer would) quarantines it.
    origin = f"/srv/incoming/report-{uuid.uuid4().hex[:8]}.pdf"
    sh(lab, host, f"mkdir -p /srv/incoming && printf '%s' '{EICAR.decode()}' > {origin}")
    sh(lab, host, "systemctl start govbaseline-av-scan.service")
    wait_for_alert(lab, "antivirus", f"{DETECTED_AS} found in {origin}")
    # A page tampered with, put back by the watch from the release folder, alerted.
    page = sh(lab, host, "find /var/www -type f -name '*.html' | sort | head -1").strip()
    sh(lab, host, f"echo '<h1>hacked</h1>' >> {page}")
    wait_for_alert(lab, "integrity", "restored from /srv/release", timeout=15)
    assert "hacked" not in sh(lab, host, f"cat {page}")
    # A backup run while the backup server is down fails and alerts; the next one and its drill pass.
    lab.exec(lab.sink, "systemctl", "stop", "restic-rest-server.service")
    try:
        failed = lab.exec(host, "systemctl", "start", "govbaseline-backup.service", check=False)
        assert failed.returncode != 0, "the backup run succeeded with the backup server stopped"
        wait_for_alert(lab, "backup", "backup failed")
    finally:
        lab.exec(lab.sink, "systemctl", "start", "restic-rest-server.service")
    drilled = dt.datetime.now(dt.UTC).replace(microsecond=0)
    sh(lab, host, "systemctl start govbaseline-backup.service && systemctl start govbaseline-backup-drill.service")
    # FW-01 broken: the second run fails it, a firewall-only converge repairs it, the third passes.
    sh(lab, host, "nft delete table inet govbaseline")
    assert verify_run(2) == 1
    repaired = run_ansible(inventory, tags="firewall", limit=host.name, stream=False)
    assert repaired.ok, repaired.output[-3000:]
    assert verify_run(3) == 0, capsys.readouterr().out[-3000:]
    capsys.readouterr()

    assert main(["history", "verify", str(where)]) == 0
    today = dt.datetime.now(dt.UTC).date().isoformat()
    out = tmp_path / "inspection"
    assert main(["inspection", "--history", str(where), "--from", today, "--to", today, "-o", str(out),
                 "--oscal"]) == 0
    data = json.loads((out / "inspection.json").read_text())
    runs = [r["run"] for r in data["coverage"]["runs_list"]]
    assert data["coverage"]["runs"] == 3 and data["coverage"]["days_without_runs"] == []
    # The same period as OSCAL assessment results (read back through trestle's model): a result per
    # run, FW-01's finding not satisfied in the second run only.
    oscal = AssessmentResults.oscal_read(out / "assessment-results.json")
    assert len(oscal.results) == 3

    def fw01(result) -> set[str]:
        return {getattr(f.target.status.state, "value", f.target.status.state) for f in result.findings or []
                if any(p.name == "control-id" and p.value == "FW-01" for p in f.props or [])}
    assert [fw01(r) for r in oscal.results] == [{"satisfied"}, {"not-satisfied"}, {"satisfied"}]
    assert data["hosts"][host.name]["records_missing"] == 0, [
        p.read_text()[:600] for p in (where / "runs").glob(f"*/records/{host.name}.json")]
    findings = [(f["host"], f["control"], f["failed_run"], f["fixed_run"]) for f in data["findings"]]
    assert findings == [(host.name, "FW-01", runs[1], runs[2])], data["findings"]
    malware = data["incidents"]["malware_found"]
    assert malware["count"] == 1 and origin in malware["events"][0]["message"], malware
    assert data["incidents"]["malware_quarantined"]["count"] == 1
    tampered = data["incidents"]["pages_tampered"]
    assert tampered["count"] == 1 and page.removeprefix("/var/www/") in tampered["events"][0]["message"], tampered
    assert data["incidents"]["pages_restored"]["count"] == 1
    failures = data["incidents"]["backup_failures"]
    assert failures["count"] == 1 and "backup failed" in failures["events"][0]["message"], failures
    # The converge's first drill and the test's: every one passed, the test's among them.
    drills = data["drills"]
    assert drills["run"] == drills["passed"] >= 1, drills
    assert any(d["finished"] >= drilled.strftime("%Y-%m-%dT%H:%M:%SZ") for d in drills["drills"]), drills
    assert data["backups"]["recorded"] >= 1 and data["backups"]["failed"] == 0, data["backups"]
    assert [w["control"] for w in data["waivers"]["in_force"]] == ["FIM-01"]
    said = {s["statement"]: s for s in data["statements"]}
    infected = said["No system was infected by malicious code."]
    assert not infected["supported"] and f"1 malicious code found ({host.name})" in infected["instead"]
    portal = said["The portal was not attacked or tampered with."]
    assert not portal["supported"] and f"1 web pages tampered with ({host.name})" in portal["instead"]
    backups = said["Backups ran and every restore drill passed."]
    assert not backups["supported"] and "1 failed backups" in backups["instead"], backups
    # The day before has no run: nothing is claimed for it.
    assert data["previous"]["coverage"]["runs"] == 0
    assert not any(s["supported"] for s in data["previous"]["statements"])

    # A past run edited afterwards (its failure turned into a pass) is caught, naming it.
    edited = where / "runs" / runs[1] / "report.json"
    edited.write_text(edited.read_text().replace('"status": "fail"', '"status": "pass"'))
    assert main(["history", "verify", str(where)]) == 1
    assert f"first at entry 2 ({runs[1]})" in capsys.readouterr().err
    lab.down()  # its hosts go now, not at the end of the session
