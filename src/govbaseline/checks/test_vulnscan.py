"""Checks for the scheduled self-audit VULN-01 (role ``vulnscan``)."""

from __future__ import annotations

import json
import time

import pytest

from govbaseline.checks.schedule import period_hours, wait_while_running

STATE = "/var/lib/govbaseline/vulnscan/last.json"
UNIT = "govbaseline-lynis"


@pytest.mark.control("VULN-01")
def test_self_audit_recent_without_regressions(host, hostvars, evidence):
    timer = host.service(f"{UNIT}.timer")
    assert timer.is_enabled and timer.is_running, "the Lynis self-audit is not scheduled (timer off)"
    wait_while_running(host, f"{UNIT}.service", timeout=150)  # the first audit starts at converge
    state = host.run("cat %s", STATE)
    assert state.rc == 0, f"no Lynis self-audit has run on this host ({STATE} is missing)"
    last = json.loads(state.stdout)
    hours = (time.time() - last["finished"]) / 3600
    allowed = period_hours(host, hostvars["vulnscan_lynis_calendar"]) + \
        hostvars["vulnscan_lynis_randomized_delay_minutes"] / 60 + 1
    index, minimum = last["hardening_index"], hostvars["vulnscan_min_hardening_index"]
    accepted = set(hostvars["vulnscan_accepted_warnings"])
    warnings = {test: text for test, text in last["warnings"].items() if test not in accepted}
    evidence("last Lynis self-audit", f"finished {hours:.1f} h ago, hardening index {index}, report {last['report']}, "
             f"warnings: {'; '.join(f'{t} {w}' for t, w in last['warnings'].items()) or 'none'}")
    assert hours <= allowed, \
        f"the last Lynis self-audit finished {hours:.1f} h ago (the schedule allows {allowed:.0f} h)"
    assert index is not None and index >= minimum, f"the Lynis hardening index is {index} (at least {minimum} wanted)"
    assert not warnings, "Lynis warns: " + "; ".join(f"{test} {text}" for test, text in sorted(warnings.items()))
