"""The evidence history and the inspection report (REP-01) on a real host: verify --history runs
while things happen (an EICAR detection, a control broken then repaired), the host's own records
come into the history with each run, and the inspection report counts what the test did; a run
edited afterwards is caught by `history verify`.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from govbaseline.cli import main
from govbaseline.eicar import DETECTED_AS, EICAR
from govbaseline.engines import apply, run_ansible
from tests.lab.conftest import LAB_PREFIX, sh, wait_for_alert

pytestmark = pytest.mark.lab

CONTROLS = "FW-01,AV-02"  # the controls the test breaks or sets off: a short run each time


def test_history_gathers_the_hosts_records_and_inspection_counts_them(lab_factory, tmp_path, capsys):
    lab = lab_factory(f"{LAB_PREFIX}-inspection", hosts=1)
    converged = apply(lab.inventory, engine="ansible", stream=False)
    assert converged.ok, converged.output[-3000:]
    host = lab.hosts()[0]
    where = tmp_path / "history"

    def verify_run(number: int) -> int:
        return main(["verify", "-i", str(lab.inventory), "--report-dir", str(tmp_path / f"run{number}"),
                     "--history", str(where), "--control", CONTROLS])

    assert verify_run(1) == 0, capsys.readouterr().out[-3000:]
    # An EICAR file in the web root: the scheduled scan (started as its timer would) quarantines it.
    origin = f"/var/www/html/uploads/report-{uuid.uuid4().hex[:8]}.pdf"
    sh(lab, host, f"mkdir -p /var/www/html/uploads && printf '%s' '{EICAR.decode()}' > {origin}")
    sh(lab, host, "systemctl start govbaseline-av-scan.service")
    wait_for_alert(lab, "antivirus", f"{DETECTED_AS} found in {origin}")
    sh(lab, host, "rm -rf /var/www/html/uploads")
    # FW-01 broken: the second run fails it, a firewall-only converge repairs it, the third passes.
    sh(lab, host, "nft delete table inet govbaseline")
    assert verify_run(2) == 1
    repaired = run_ansible(lab.inventory, tags="firewall", limit=host.name, stream=False)
    assert repaired.ok, repaired.output[-3000:]
    assert verify_run(3) == 0, capsys.readouterr().out[-3000:]
    capsys.readouterr()

    assert main(["history", "verify", str(where)]) == 0
    today = dt.datetime.now(dt.UTC).date().isoformat()
    out = tmp_path / "inspection"
    assert main(["inspection", "--history", str(where), "--from", today, "--to", today, "-o", str(out)]) == 0
    data = json.loads((out / "inspection.json").read_text())
    runs = [r["run"] for r in data["coverage"]["runs_list"]]
    assert data["coverage"]["runs"] == 3 and data["coverage"]["days_without_runs"] == []
    assert data["hosts"][host.name]["records_missing"] == 0, [
        p.read_text()[:600] for p in (where / "runs").glob(f"*/records/{host.name}.json")]
    findings = [(f["host"], f["control"], f["failed_run"], f["fixed_run"]) for f in data["findings"]]
    assert findings == [(host.name, "FW-01", runs[1], runs[2])], data["findings"]
    malware = data["incidents"]["malware_found"]
    assert malware["count"] == 1 and origin in malware["events"][0]["message"], malware
    assert data["incidents"]["malware_quarantined"]["count"] == 1
    said = {s["statement"]: s for s in data["statements"]}
    infected = said["No system was infected by malicious code."]
    assert not infected["supported"] and f"1 malicious code found ({host.name})" in infected["instead"]
    # The day before has no run: nothing is claimed for it.
    assert data["previous"]["coverage"]["runs"] == 0
    assert not any(s["supported"] for s in data["previous"]["statements"])

    # A past run edited afterwards (its failure turned into a pass) is caught, naming it.
    edited = where / "runs" / runs[1] / "report.json"
    edited.write_text(edited.read_text().replace('"status": "fail"', '"status": "pass"'))
    assert main(["history", "verify", str(where)]) == 1
    assert f"first at entry 2 ({runs[1]})" in capsys.readouterr().err
