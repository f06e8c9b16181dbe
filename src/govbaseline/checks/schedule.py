"""What checks of scheduled jobs share: the period of a systemd calendar, and waiting for a run."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any


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


def last_run(host: Any, unit: str, state_file: str, calendar: str, delay_minutes: int, what: str,
             wait: float = 120.0) -> tuple[dict[str, Any], float, float]:
    """The result a scheduled job wrote (``state_file``, JSON with ``finished``), how many hours ago
    it finished, and how many hours its schedule allows (one period + the random delay + 1 h).
    Fails when the timer is off or the job never ran."""
    timer = host.service(f"{unit}.timer")
    assert timer.is_enabled and timer.is_running, f"the {what} is not scheduled (timer off)"
    wait_while_running(host, f"{unit}.service", timeout=wait)
    state = host.run("cat %s", state_file)
    assert state.rc == 0, f"no {what} has run on this host ({state_file} is missing)"
    result: dict[str, Any] = json.loads(state.stdout)
    hours = (time.time() - result["finished"]) / 3600
    return result, hours, period_hours(host, calendar) + delay_minutes / 60 + 1
