"""What checks of scheduled jobs share: the period of a systemd calendar, waiting for a run, and
whether a job is alive (its timer will fire within one period, its last run succeeded recently).

"Enabled and active" is not enough: a drop-in that resets ``OnCalendar=`` to a date in the past
leaves a timer enabled and active with no next run (``systemctl list-timers`` shows ``NEXT -``).
``alive`` asks systemd for the next and the last run instead, and the decision (``judge``) is a
plain function of what systemd answered, unit-tested without a host.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# One hour more than one period plus the random delay: a run takes time, and a timer fires a
# little after its elapse (AccuracySec, a busy host).
GRACE_HOURS = 1.0
# Seconds between a job writing its state file and its process exiting.
RECORD_SLACK = 300
TIMER_PROPERTIES = "LoadState,UnitFileState,ActiveState,LastTriggerUSec,ActiveEnterTimestamp,NextElapseUSecRealtime"
SERVICE_PROPERTIES = "LoadState,ActiveState,Result,ExecMainStatus,ExecMainExitTimestamp"


def period_hours(host: Any, calendar: str) -> float:
    """Hours between two runs of a timer, from systemd's own reading of its calendar on the host."""
    out = host.run("systemd-analyze calendar --iterations=2 %s", calendar)
    # "Iter. #2" on Debian 12, "Iteration #2" on Debian 13.
    stamps = re.findall(r"(?:Next elapse|Iter(?:\.|ation) #2): \S+ (\S+ \S+)", out.stdout)
    assert len(stamps) == 2, f"systemd cannot read the calendar {calendar!r}: {out.stdout}{out.stderr}"
    first, second = (datetime.fromisoformat(s) for s in stamps)
    return (second - first).total_seconds() / 3600


def wait_while_running(host: Any, unit: str, timeout: float) -> None:
    """A run in progress (the first one starts at converge) is waited for, not judged half-done."""
    deadline = time.monotonic() + timeout
    while host.run("systemctl is-active %s", unit).stdout.strip() in ("activating", "active"):
        if time.monotonic() > deadline:
            return
        time.sleep(2)


# -- parsing what systemd answers ----------------------------------------------------------------


def parse_show(text: str) -> dict[str, str]:
    """``systemctl show -p A,B unit`` output as a dict (one ``Key=value`` a line)."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def parse_timestamp(value: str) -> float | None:
    """A timestamp of ``systemctl show`` as seconds since the epoch; None for "never".

    ``--timestamp=unix`` gives ``@1796048263``; the readable form (``Tue 2026-12-01 06:00:00 UTC``,
    asked for with ``TZ=UTC``) is read too, should a systemd ignore the option for ``show``."""
    value = value.strip()
    if value in ("", "n/a", "0", "-"):
        return None
    if value.startswith("@"):
        return float(value[1:])
    match = re.fullmatch(r"\w{3} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", value)
    if not match:
        raise ValueError(f"unreadable systemd timestamp {value!r}")
    return datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC).timestamp()


def next_elapse(list_timers_json: str, timer: str, realtime: str) -> float | None:
    """The next run of ``timer`` in seconds since the epoch, from ``systemctl list-timers -o json``
    (which also turns a monotonic ``OnUnitActiveSec=`` into wall-clock time); falls back on the
    timer's ``NextElapseUSecRealtime`` when the list cannot be read."""
    try:
        rows = json.loads(list_timers_json)
    except ValueError:
        return parse_timestamp(realtime)
    for row in rows:
        if row.get("unit") == timer:
            usec = row.get("next") or 0
            return usec / 1e6 if usec else None
    return None


def stamp(epoch: float | None) -> str:
    if epoch is None:
        return "never"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- the decision ----------------------------------------------------------------------------------


@dataclass
class Verdict:
    """Whether a scheduled job is alive, and the times the judgement rests on."""

    unit: str
    next_run: float | None
    last_run: float | None
    allowed_hours: float
    problems: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return f"next run {stamp(self.next_run)}, last successful run {stamp(self.last_run)} " \
               f"(one period plus its random delay and {GRACE_HOURS:.0f} h grace: {self.allowed_hours:.1f} h)"


def judge(unit: str, what: str, timer: dict[str, str], service: dict[str, str], next_run: float | None, now: float,
          period: float, delay: float, last_finished: float | None = None) -> Verdict:
    """Decide whether a job is alive from what systemd says of its timer and service.

    ``period`` and ``delay`` (hours) come from the declared calendar and random delay, not from the
    live unit (a drop-in could stretch both). ``last_finished`` is the end of the last successful
    run the job itself recorded (a state file), if it keeps one: systemd forgets a service's exit
    at reboot.

    The host (or the job) is "younger than one period" when the job has never run and its timer has
    been active for less than the allowed time. The timer's activation time is the sound notion:
    a converge that installs or repairs the schedule starts the timer, and ``Persistent=true`` keeps
    the last trigger across reboots, so a job that fired once is never "young" again.
    """
    allowed = period + delay + GRACE_HOURS
    problems: list[str] = []
    timer_name = f"{unit}.timer ({what})"
    if "masked" in (timer.get("LoadState"), timer.get("UnitFileState")):
        problems.append(f"{timer_name} is masked")
    elif timer.get("UnitFileState") != "enabled":
        problems.append(f"{timer_name} is not enabled (it is {timer.get('UnitFileState') or 'missing'}): "
                        "it does not start at boot")
    if timer.get("ActiveState") != "active":
        problems.append(f"{timer_name} is not running (it is {timer.get('ActiveState') or 'missing'})")
    if next_run is None:
        problems.append(f"{timer_name} has no next run (systemctl list-timers shows NEXT -): "
                        "the job never runs again")
    elif next_run - now > (period + delay) * 3600 + 300:
        problems.append(f"the next run of {timer_name} is at {stamp(next_run)}, {(next_run - now) / 3600:.1f} h "
                        f"away: more than one period ({period:.1f} h) plus its random delay ({delay:.1f} h)")
    exited = parse_timestamp(service.get("ExecMainExitTimestamp", ""))
    failed = service.get("ActiveState") == "failed" or (
        exited is not None and service.get("Result", "success") != "success")
    if failed and exited is not None and last_finished is not None and last_finished >= exited - RECORD_SLACK:
        # The run recorded its outcome before it exited (an integrity check that found changes exits
        # 1): the caller judges that outcome, in its own words. A run that died unrecorded is failed.
        failed = False
    if failed:
        problems.append(f"the last run of {unit}.service ({what}), finished {stamp(exited)}, failed (result "
                        f"{service.get('Result')}, exit status {service.get('ExecMainStatus')})")
    # A job that records its runs (a state file) is judged by its record: a process that exits
    # without writing it did not complete a run.
    last = last_finished if last_finished is not None else None if failed else exited
    triggered = parse_timestamp(timer.get("LastTriggerUSec", ""))
    since = parse_timestamp(timer.get("ActiveEnterTimestamp", ""))
    if last is not None:
        if now - last > allowed * 3600:
            problems.append(f"the last successful run of {unit}.service ({what}) finished {stamp(last)}, "
                            f"{(now - last) / 3600:.1f} h ago (its schedule allows {allowed:.1f} h)")
    elif not failed:
        if triggered is not None and now - triggered > allowed * 3600:
            problems.append(f"{unit}.service ({what}) last started {stamp(triggered)}, "
                            f"{(now - triggered) / 3600:.1f} h ago, with no successful run since (its schedule allows "
                            f"{allowed:.1f} h)")
        elif triggered is None and since is not None and now - since > allowed * 3600:
            problems.append(f"{unit}.service ({what}) has never run although its timer has been active since "
                            f"{stamp(since)} (its schedule allows {allowed:.1f} h)")
        last = triggered
    return Verdict(unit, next_run, last, allowed, problems)


# -- on the host -------------------------------------------------------------------------------


def alive(host: Any, unit: str, what: str, period: float, delay_minutes: float,
          evidence: Callable[..., None] | None = None, last_finished: float | None = None,
          wait: float = 120.0) -> Verdict:
    """Assert that the job ``<unit>.service`` started by ``<unit>.timer`` is alive (see ``judge``);
    ``period`` in hours (``period_hours`` of the declared calendar). The failure names both times."""
    wait_while_running(host, f"{unit}.service", timeout=wait)
    show = "TZ=UTC LC_ALL=C systemctl show --timestamp=unix -p %s %s"
    timer = parse_show(host.run(show, TIMER_PROPERTIES, f"{unit}.timer").stdout)
    service = parse_show(host.run(show, SERVICE_PROPERTIES, f"{unit}.service").stdout)
    listed = host.run("LC_ALL=C systemctl list-timers --all -o json %s", f"{unit}.timer").stdout
    now = float(host.run("date +%s").stdout.strip())
    next_run = next_elapse(listed, f"{unit}.timer", timer.get("NextElapseUSecRealtime", ""))
    verdict = judge(unit, what, timer, service, next_run, now, period, delay_minutes / 60, last_finished)
    if evidence is not None:
        evidence(f"{unit}.timer: next and last run", verdict.summary, ok=not verdict.problems)
    assert not verdict.problems, "; ".join(verdict.problems) + f" [{verdict.summary}]"
    return verdict


def last_run(host: Any, unit: str, state_file: str, calendar: str, delay_minutes: int, what: str,
             wait: float = 120.0, evidence: Callable[..., None] | None = None) -> tuple[dict[str, Any], float, float]:
    """The result a scheduled job wrote (``state_file``, JSON with ``finished``), how many hours ago
    it finished, and how many hours its schedule allows (one period + the random delay + 1 h).
    Fails when the job is not alive (``alive``) or never ran."""
    wait_while_running(host, f"{unit}.service", timeout=wait)
    state = host.run("cat %s", state_file)
    result: dict[str, Any] = json.loads(state.stdout) if state.rc == 0 else {}
    period = period_hours(host, calendar)
    alive(host, unit, what, period, delay_minutes, evidence, last_finished=result.get("finished"), wait=0)
    assert state.rc == 0, f"no {what} has run on this host ({state_file} is missing)"
    hours = (time.time() - result["finished"]) / 3600
    return result, hours, period + delay_minutes / 60 + GRACE_HOURS
