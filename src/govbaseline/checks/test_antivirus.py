"""Checks for the antivirus AV-01 and AV-02 (role ``antivirus``)."""

from __future__ import annotations

import re
import time
from datetime import datetime

import pytest

from govbaseline.checks.schedule import last_run
from govbaseline.eicar import EICAR


@pytest.mark.control("AV-01")
def test_clamd_detects_the_eicar_test_file(host):
    for service in ("clamav-daemon", "clamav-freshclam"):
        unit = host.service(service)
        assert unit.is_running and unit.is_enabled, f"{service} is not running (and enabled at boot)"
    # The test string goes to clamd over its socket (INSTREAM): nothing is written to the host's disk.
    out = host.run("printf '%%s' %s | clamdscan --no-summary -", EICAR.decode())
    assert out.rc == 1 and "FOUND" in out.stdout, \
        f"clamd does not detect the EICAR test file (clamdscan exit {out.rc}): {(out.stdout + out.stderr).strip()}"


def database_ages(host, databases: str) -> dict[str, float]:
    """Age in days of each signature database: a .cvd/.cld by the build time in its header, any
    other (custom) file by when freshclam last wrote it."""
    listing = host.run("find %s -maxdepth 1 -type f ! -name '*.dat' -printf '%%f %%T@\\n'", databases)
    now = time.time()
    ages = {}
    for line in listing.stdout.splitlines():
        name, _, stamp = line.rpartition(" ")
        if not name.endswith((".cvd", ".cld", ".hdb", ".hsb", ".mdb", ".msb", ".ndb", ".ldb", ".cdb", ".idb",
                              ".fp", ".sfp", ".yar", ".yara", ".cud", ".gdb", ".wdb", ".pdb", ".ign2")):
            continue
        when = float(stamp)
        if name.endswith((".cvd", ".cld")):
            info = host.run("sigtool --info %s", f"{databases}/{name}")
            built = re.search(r"^Build time: (.+)$", info.stdout, re.M)
            if built:
                when = datetime.strptime(built.group(1).strip(), "%d %b %Y %H:%M %z").timestamp()
        ages[name] = (now - when) / 86400
    return ages


@pytest.mark.control("AV-01")
def test_signatures_are_current(host, hostvars, evidence):
    max_days = hostvars["antivirus_max_signature_age_days"]
    databases = hostvars["__antivirus_database_dir"]
    ages = database_ages(host, databases)
    evidence("signature databases and their age", "\n".join(f"{n}: {a:.1f} days" for n, a in sorted(ages.items()))
             or "none")
    problems = []
    if not ages:
        problems.append(f"no signature database in {databases}: clamd has nothing to detect with")
    elif (newest := min(ages.values())) > max_days:
        problems.append(f"the newest signatures are {newest:.1f} days old (at most {max_days}): freshclam is not "
                        "updating them")
    # One updater: Debian's one-shot freshclam has none of the daemon's settings (a custom source).
    for unit in hostvars["__antivirus_oneshot_units"]:
        state = host.run(f"systemctl is-enabled {unit}").stdout.strip()  # nothing: not installed
        evidence(f"{unit} (Debian's one-shot freshclam)", state or "not installed")
        if state not in ("masked", ""):
            problems.append(f"{unit} is {state}, not masked: a second freshclam beside the daemon, without its "
                            "settings (converge the host: --tags av-01)")
    assert not problems, "; ".join(problems)


@pytest.mark.control("AV-02")
def test_scheduled_scan_ran_and_quarantined_what_it_found(host, hostvars, evidence):
    last, hours, allowed = last_run(host, hostvars["__antivirus_scan_unit"],
                                    f"{hostvars['__antivirus_state_dir']}/last-scan.json",
                                    hostvars["antivirus_scan_calendar"],
                                    hostvars["antivirus_scan_randomized_delay_minutes"], "scheduled antivirus scan",
                                    evidence=evidence)
    found = [f"{i['signature']} in {i['origin']} -> {i.get('quarantine') or i.get('error')}" for i in last["infected"]]
    evidence("last scheduled scan", f"finished {hours:.1f} h ago, result {last['result']}, folders "
             f"{' '.join(last['paths'])}; found: {'; '.join(found) or 'nothing'}")
    assert hours <= allowed, f"the last antivirus scan finished {hours:.1f} h ago (the schedule allows {allowed:.0f} h)"
    assert last["result"] != "failed", f"the last antivirus scan could not run: {'; '.join(last['errors'][-3:])}"
    wanted = [p for p in hostvars["antivirus_scan_paths"] if host.file(p).exists]
    assert sorted(last["paths"]) == sorted(wanted), f"the last scan covered {last['paths']}, not {wanted}"
    quarantine = host.file(hostvars["antivirus_quarantine_dir"])
    assert quarantine.is_directory and quarantine.user == "root" and quarantine.mode == 0o700, \
        f"the quarantine {hostvars['antivirus_quarantine_dir']} is not a root-only (0700) folder"
    left = [i["origin"] for i in last["infected"] if "quarantine" not in i or host.file(i["origin"]).exists]
    assert not left, f"infected files found by the last scan are still in place: {left}"
