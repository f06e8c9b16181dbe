"""Calendars are judged by the systemd of the host their timers run on (validation.calendar_command),
the same way by both engines (Ansible's govbaseline_validate, pyinfra's deploys.common.settings)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from govbaseline import validation


def test_every_calendar_variable_of_a_role_is_judged():
    values = validation.role_vars("backup", {})
    assert set(validation.calendars("backup", values)) == {"backup_calendar", "backup_check_calendar",
                                                           "backup_drill_calendar"}
    assert set(validation.calendars("backup_server", validation.role_vars("backup_server", {}))) == {
        "backup_server_prune_calendar"}
    assert validation.calendars("firewall", validation.role_vars("firewall", {})) == {}


def test_a_refusal_names_the_variable_the_value_and_the_hosts_words():
    assert validation.calendar_problem("pull_calendar", "daily", "ok\n") is None
    problem = validation.calendar_problem("pull_calendar", "fortnightly",
                                          "refused Failed to parse calendar specification 'fortnightly'\n")
    assert problem is not None and problem.startswith("pull_calendar is not a calendar this host's systemd accepts")
    assert "'fortnightly'" in problem and "Failed to parse" in problem and "such as daily" in problem
    assert "no answer" in (validation.calendar_problem("pull_calendar", "x", "") or "")


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze (a Debian host has it)")
@pytest.mark.parametrize(("value", "accepted"), [("daily", True), ("Sun *-*-* 12:00:00", True),
                                                 ("fortnightly", False), ("x'; touch /tmp/k1-pwned; '", False)])
def test_the_command_is_quoted_and_always_answers(value, accepted):
    out = subprocess.run(["sh", "-c", validation.calendar_command(value)], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0  # a pyinfra fact must not fail; the answer is in the output
    assert (out.stdout.strip() == "ok") is accepted, out.stdout
    assert not Path("/tmp/k1-pwned").exists()  # noqa: S108 the path the injected command would create
