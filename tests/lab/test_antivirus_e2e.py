"""The antivirus end to end, with no internet: the lab sink serves a ClamAV signature of the EICAR
test file; an EICAR file dropped in the web root is found by the scheduled scan, moved to the
root-only quarantine with a record of where it came from, and the alert arrives at the mail sink.
Each check fails for its own reason when broken; bad values are refused by both engines.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import uuid

import pytest

from govbaseline.eicar import DETECTED_AS, EICAR
from govbaseline.verify import verify
from tests.lab.conftest import (
    ONESHOT_FRESHCLAM,
    assert_checks_fail_when_broken_together,
    sh,
    wait_for_alert,
)

pytestmark = pytest.mark.lab

SCAN_CHECK = "test_scheduled_scan_ran_and_quarantined_what_it_found"


def test_eicar_in_web_root_is_found_quarantined_and_alerted(ansible_lab, tmp_path):
    lab, host = ansible_lab, ansible_lab.hosts()[1]
    origin = f"/var/www/html/uploads/report-{uuid.uuid4().hex[:8]}.pdf"
    sh(lab, host, f"mkdir -p /var/www/html/uploads && printf '%s' '{EICAR.decode()}' > {origin}")
    lab.clear_sink()
    sh(lab, host, "systemctl start govbaseline-av-scan.service")  # what the timer starts
    assert sh(lab, host, f"test -e {origin} && echo present || echo gone").strip() == "gone"
    records = json.loads(sh(lab, host, "python3 -c 'import glob, json; print(json.dumps([json.load(open(p)) for p "
                                       "in glob.glob(\"/var/lib/govbaseline/quarantine/*.json\")]))'"))
    record = next(r for r in records if r["origin"] == origin)
    assert record["signature"] == DETECTED_AS and record["sha256"] == hashlib.sha256(EICAR).hexdigest()
    kept = sh(lab, host, f"stat -c '%U %a' {record['quarantine']} && cat {record['quarantine']}")
    assert kept.startswith("root 600\n") and kept.endswith(EICAR.decode()), kept
    wait_for_alert(lab, "antivirus", f"{DETECTED_AS} found in {origin} on {host.name}")
    result = verify(lab.inventory, tmp_path / "after", limit=host.name, checks=[SCAN_CHECK])
    assert result.passed, result.output[-2000:]
    evidence = json.dumps(result.checks(host.name)[SCAN_CHECK])
    assert f"{DETECTED_AS} in {origin}" in evidence
    sh(lab, host, "rm -rf /var/www/html/uploads")  # the web root as the baseline left it (FIM-02 compares it)


SCAN_RECORD = "/var/lib/govbaseline/antivirus/last-scan.json"
AGE_SCAN = f"""
import json
path = "{SCAN_RECORD}"
data = json.load(open(path))
data["finished"] -= 3 * 86400
json.dump(data, open(path, "w"))
"""
BREAKS = {
    "test_clamd_detects_the_eicar_test_file": (["systemctl stop clamav-daemon"], "clamav-daemon is not running"),
    # No signatures at all (and no freshclam to fetch them): the converge must download them again.
    # Debian's one-shot freshclam turned on again (the lab image masks it, as the role does): a
    # second updater, without the daemon's settings; the converge masks it again.
    "test_signatures_are_current": (["systemctl stop clamav-freshclam && rm -f /var/lib/clamav/*.hsb",
                                     ONESHOT_FRESHCLAM],
                                    ("no signature database in /var/lib/clamav",
                                     "clamav-freshclam-once.timer is enabled, not masked",
                                     "clamav-freshclam-once.service is enabled, not masked")),
    # The last scan is three days old (its record aged): the daily job is not alive.
    SCAN_CHECK: ([f"cp {SCAN_RECORD} /root/last-scan.json.orig && python3 -c {shlex.quote(AGE_SCAN)}"],
                 "(scheduled antivirus scan) finished"),
}


def test_every_antivirus_check_fails_for_its_own_reason_when_broken(ansible_lab, tmp_path):
    # Time goes back: the record of the last scan as it was (a converge does not run a scan again).
    assert_checks_fail_when_broken_together(ansible_lab, tmp_path, BREAKS, repair_tags="antivirus",
                                            cleanup=[f"mv /root/last-scan.json.orig {SCAN_RECORD}"])


def test_an_infected_file_left_in_place_fails_verify(ansible_lab, tmp_path):
    """A scan whose record says a file was found but the file is still there (quarantine failed)."""
    lab, host = ansible_lab, ansible_lab.hosts()[0]
    origin = "/var/www/html/left-behind.txt"
    sh(lab, host, f"printf x > {origin}")
    state = "/var/lib/govbaseline/antivirus/last-scan.json"
    sh(lab, host, f"cp {state} {state}.orig && python3 -c \"import json,time; p='{state}'; d=json.load(open(p)); "
                  f"d['infected']=[{{'origin':'{origin}','signature':'X','error':'not quarantined: EBUSY'}}]; "
                  "d['result']='infected'; json.dump(d, open(p,'w'))\"")
    try:
        broken = verify(lab.inventory, tmp_path / "left", limit=host.name, checks=[SCAN_CHECK])
        message = broken.checks(host.name)[SCAN_CHECK]["message"]
        assert not broken.passed and f"still in place: ['{origin}']" in message, message
    finally:
        sh(lab, host, f"mv {state}.orig {state} && rm -f {origin}")

