"""Whether a scheduled job is alive, decided from what systemd answers (checks/schedule.py), no host."""

from __future__ import annotations

import json

import pytest

from govbaseline.checks.schedule import judge, next_elapse, parse_show, parse_timestamp

NOW = 1_796_000_000.0  # 2026-11-30 00:53 UTC
HOUR = 3600.0
TIMER = {"LoadState": "loaded", "UnitFileState": "enabled", "ActiveState": "active",
         "LastTriggerUSec": "", "ActiveEnterTimestamp": f"@{int(NOW - 2 * HOUR)}"}
OK_SERVICE = {"LoadState": "loaded", "ActiveState": "inactive", "Result": "success", "ExecMainStatus": "0",
              "ExecMainExitTimestamp": f"@{int(NOW - 3 * HOUR)}"}


def daily(timer=None, service=None, next_run: float | None = NOW + 10 * HOUR, last_finished=None):
    return judge("govbaseline-backup", "backup", {**TIMER, **(timer or {})}, {**OK_SERVICE, **(service or {})},
                 next_run, NOW, period=24, delay=1, last_finished=last_finished)


def test_timestamps_in_both_forms_and_never():
    assert parse_timestamp("@1796048263") == 1796048263
    assert parse_timestamp("Tue 2026-12-01 06:00:00 UTC") == 1796104800
    for never in ("", "n/a", "0"):
        assert parse_timestamp(never) is None
    with pytest.raises(ValueError, match="unreadable"):
        parse_timestamp("Tue 2026-12-01 06:00:00 CET")


def test_show_output_and_list_timers():
    shown = parse_show("NextElapseUSecRealtime=\nActiveState=active\nExecStart={ path=/bin/x ; argv[]=/bin/x a=b }\n")
    assert shown["NextElapseUSecRealtime"] == "" and shown["ActiveState"] == "active"
    assert shown["ExecStart"].endswith("a=b }")
    listed = json.dumps([{"next": 1796049163266625, "unit": "a.timer"}, {"next": 0, "unit": "b.timer"}])
    assert next_elapse(listed, "a.timer", "") == pytest.approx(1796049163.266625)
    assert next_elapse(listed, "b.timer", "@1796049163") is None  # NEXT - in list-timers
    assert next_elapse("not json", "a.timer", "@1796049163") == 1796049163


def test_a_live_job_passes_and_names_both_times():
    verdict = daily()
    assert verdict.problems == []
    assert "next run 2026-11-30 10:53 UTC" in verdict.summary and "last successful run 2026-11-29 21:53 UTC" \
        in verdict.summary


def test_a_timer_with_no_next_run_fails():
    # A drop-in resetting OnCalendar= to a date in the past: enabled, active, NEXT -.
    verdict = daily(next_run=None)
    assert any("has no next run" in p for p in verdict.problems), verdict.problems


def test_a_next_run_further_than_one_period_and_its_delay_fails():
    assert daily(next_run=NOW + 24.9 * HOUR).problems == []
    verdict = daily(next_run=NOW + 30 * 24 * HOUR)
    assert any("720.0 h away" in p for p in verdict.problems), verdict.problems


@pytest.mark.parametrize(("timer", "words"), [
    ({"LoadState": "masked", "UnitFileState": "masked", "ActiveState": "inactive"}, "is masked"),
    ({"UnitFileState": "disabled"}, "is not enabled (it is disabled)"),
    ({"ActiveState": "inactive"}, "is not running (it is inactive)"),
])
def test_a_masked_disabled_or_stopped_timer_fails(timer, words):
    assert any(words in p for p in daily(timer=timer).problems)


def test_a_last_run_that_failed_fails():
    verdict = daily(service={"Result": "exit-code", "ExecMainStatus": "1", "ActiveState": "failed"})
    assert any("failed (result exit-code, exit status 1)" in p for p in verdict.problems), verdict.problems


def test_a_failure_the_job_recorded_itself_is_left_to_the_caller():
    exited = NOW - 3 * HOUR
    recorded = daily(service={"Result": "exit-code", "ExecMainStatus": "1"}, last_finished=exited - 1)
    assert recorded.problems == []
    unrecorded = daily(service={"Result": "exit-code", "ExecMainStatus": "1"}, last_finished=exited - 2 * 86400)
    assert any("failed" in p for p in unrecorded.problems)


def test_a_last_run_too_old_fails():
    verdict = daily(service={"ExecMainExitTimestamp": ""}, last_finished=NOW - 3 * 86400)
    assert any("72.0 h ago (its schedule allows 26.0 h)" in p for p in verdict.problems), verdict.problems
    triggered = daily(timer={"LastTriggerUSec": f"@{int(NOW - 2 * 86400)}"}, service={"ExecMainExitTimestamp": ""})
    assert any("last started" in p for p in triggered.problems), triggered.problems


def test_never_run_is_allowed_while_the_schedule_is_younger_than_one_period():
    young = daily(service={"ExecMainExitTimestamp": ""})
    assert young.problems == [] and young.last_run is None
    old = daily(timer={"ActiveEnterTimestamp": f"@{int(NOW - 3 * 86400)}"}, service={"ExecMainExitTimestamp": ""})
    assert any("has never run although its timer has been active since" in p for p in old.problems)
