"""Checks for the self-audit VULN-01 and the fleet port scan VULN-02 (role ``vulnscan``)."""

from __future__ import annotations

import json
import time

import pytest

from govbaseline.checks.plugin import host_name, other_host
from govbaseline.checks.schedule import GRACE_HOURS, alive, last_run, period_hours, wait_while_running
from govbaseline.validation import declared_tcp_ports


@pytest.mark.control("VULN-01")
def test_self_audit_recent_without_regressions(host, hostvars, evidence):
    last, hours, allowed = last_run(host, hostvars["__vulnscan_unit"], f"{hostvars['__vulnscan_state_dir']}/last.json",
                                    hostvars["vulnscan_lynis_calendar"],
                                    hostvars["vulnscan_lynis_randomized_delay_minutes"], "Lynis self-audit", wait=150,
                                    evidence=evidence)
    index, minimum = last["hardening_index"], hostvars["vulnscan_min_hardening_index"]
    accepted = set(hostvars["vulnscan_accepted_warnings"])
    warnings = {test: text for test, text in last["warnings"].items() if test not in accepted}
    evidence("last Lynis self-audit", f"finished {hours:.1f} h ago, hardening index {index}, report {last['report']}, "
             f"warnings: {'; '.join(f'{t} {w}' for t, w in last['warnings'].items()) or 'none'}")
    assert hours <= allowed, \
        f"the last Lynis self-audit finished {hours:.1f} h ago (the schedule allows {allowed:.0f} h)"
    assert index is not None and index >= minimum, f"the Lynis hardening index is {index} (at least {minimum} wanted)"
    assert not warnings, "Lynis warns: " + "; ".join(f"{test} {text}" for test, text in sorted(warnings.items()))


@pytest.mark.control("VULN-02")
def test_fleet_scan_finds_only_declared_ports(request, host, hostvars, evidence):
    scanner_name, name = hostvars["vulnscan_scanner_host"], host_name(host)
    if not scanner_name:
        pytest.skip("no fleet port scan: vulnscan_scanner_host is not set")
    if scanner_name == name:
        pytest.skip(f"{name} is the scanner host: it does not scan itself (another scanner can)")
    scanner = other_host(request, host, scanner_name)
    unit = hostvars["__vulnscan_portscan_unit"]
    wait_while_running(scanner, f"{unit}.service", timeout=240)  # the first scan starts at converge
    out = scanner.run("cat %s", f"{hostvars['__vulnscan_portscan_results']}/{name}.json")
    assert out.rc == 0, f"the scanner {scanner_name} has no port scan of {name} ({out.stderr.strip()})"
    result = json.loads(out.stdout)
    hours = (time.time() - result["finished"]) / 3600
    period = period_hours(scanner, hostvars["vulnscan_port_scan_calendar"])
    delay = hostvars["vulnscan_port_scan_randomized_delay_minutes"]
    # The scanner's job itself: a scan that records each host, then exits 1 if one failed, is judged
    # by this host's result below; the timer must fire again within one period.
    alive(scanner, unit, "fleet port scan", period, delay, evidence, last_finished=result["finished"], wait=0)
    allowed = period + delay / 60 + GRACE_HOURS
    assert "error" not in result, f"the port scan of {name} from {scanner_name} failed: {result.get('error')}"
    # What this host declares, from its own variables (not from the scanner's copy).
    declared = declared_tcp_ports(hostvars)  # what the scanner's run was given for this host
    unexpected = [port for port in result["open"] if port not in declared]
    evidence(f"port scan of {name} ({result['address']}) from {scanner_name}",
             f"{hours:.1f} h ago, ports {result['ports']}: open {result['open']}, declared {declared}",
             ok=not unexpected)
    assert hours <= allowed, f"the last port scan of {name} finished {hours:.1f} h ago (the schedule allows " \
        f"{allowed:.0f} h)"
    assert result["open"], f"the scan of {name} from {scanner_name} found no open port at all: it did not see " \
        "the host (blocked, or slowed down by the firewall's flood limit?)"
    assert not unexpected, f"undeclared open TCP ports on {name}: {', '.join(map(str, unexpected))} " \
        f"(declared: {', '.join(map(str, declared))}), seen from {scanner_name}"
