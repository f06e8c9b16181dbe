"""The timer_schedule module's pure parts, shared with the pyinfra operation (deploys/timers.py)."""

from __future__ import annotations

import subprocess

from govbaseline.deploys.timers import TIMER

MOVED = "[Timer]\nOnCalendar=\nOnCalendar=2025-01-01 06:00:00\n"


def test_every_folder_whose_drop_ins_apply_to_the_timer():
    dirs = TIMER.dropin_dirs("apt-daily-upgrade.timer")
    for folder in ("apt-daily-upgrade.timer.d", "apt-.timer.d", "apt-daily-.timer.d", "timer.d"):
        assert f"/etc/systemd/system/{folder}" in dirs and f"/run/systemd/system/{folder}" in dirs
    assert "/etc/systemd/system/apt-daily-upgrade-.timer.d" not in dirs


def test_survey_reads_the_state_and_each_drop_in(tmp_path):
    text = ("state=enabled\ncopy=/etc/systemd/system/apt-daily-upgrade.timer\n"
            "==> /etc/systemd/system/apt-daily-upgrade.timer.d/50-moved.conf\n" + MOVED +
            "==> /run/systemd/system/timer.d/10-note.conf\n[Unit]\nDescription=x\n")
    state, files, copies = TIMER.parse_survey(text)
    assert state == "enabled" and copies == ["/etc/systemd/system/apt-daily-upgrade.timer"]
    assert files["/etc/systemd/system/apt-daily-upgrade.timer.d/50-moved.conf"] == MOVED
    assert files["/run/systemd/system/timer.d/10-note.conf"] == "[Unit]\nDescription=x\n"


def test_survey_command_is_read_only_and_runs_without_drop_ins():
    command = TIMER.survey_command("no-such-unit.timer")
    assert "rm " not in command and "systemctl show" in command
    out = subprocess.run(["sh", "-c", command.replace("systemctl show", "echo")], capture_output=True, text=True,
                         check=True)
    assert out.returncode == 0 and out.stdout.startswith("state=") and "==>" not in out.stdout
    assert "copy=" not in out.stdout


def test_the_issue_example_is_removed_and_named():
    path = "/etc/systemd/system/apt-daily-upgrade.timer.d/50-moved.conf"
    plan = TIMER.plan("apt-daily-upgrade.timer", "enabled", {path: MOVED}, [])
    assert plan.changed and list(plan.remove) == [path]
    # The timer fired its "last" run (elapsed): only a restart arms it with the restored schedule.
    assert plan.commands() == [["rm", "-f", path], ["systemctl", "daemon-reload"],
                               ["systemctl", "try-restart", "apt-daily-upgrade.timer"]]
    assert path in plan.reason(done=True) and "OnCalendar=2025-01-01 06:00:00" in plan.reason(done=True)


def test_harmless_or_own_drop_ins_are_kept_and_conditions_are_not():
    dropins = {"/etc/systemd/system/x.timer.d/10-doc.conf": "# note\n[Unit]\nDescription=mine\n",
               "/etc/systemd/system/x.timer.d/50-govbaseline.conf": "[Timer]\nPersistent=true\n",
               "/run/systemd/system/x.timer.d/90-never.conf": "[Unit]\nConditionPathExists=/nonexistent\n"}
    plan = TIMER.plan("x.timer", "enabled", dropins, ["50-govbaseline.conf"])
    assert list(plan.remove) == ["/run/systemd/system/x.timer.d/90-never.conf"]
    assert not TIMER.plan("x.timer", "enabled", {}, []).changed


def test_a_masked_timer_is_unmasked_where_it_was_masked():
    assert TIMER.plan("x.timer", "masked", {}, []).commands() == [
        ["systemctl", "unmask", "x.timer"], ["systemctl", "daemon-reload"]]
    assert ["systemctl", "unmask", "--runtime", "x.timer"] in TIMER.plan("x.timer", "masked-runtime", {}, []).commands()
    assert not TIMER.plan("x.timer", "disabled", {}, []).changed  # enabling is systemd_service's


def test_a_copy_of_a_packaged_timer_overrides_its_schedule_and_is_removed():
    copy = "/etc/systemd/system/apt-daily-upgrade.timer"
    plan = TIMER.plan("apt-daily-upgrade.timer", "enabled", {}, [], [copy], vendor=True)
    assert list(plan.remove) == [copy] and "overriding" in plan.reason(done=True)
    # The baseline's own timers live in /etc/systemd/system: never removed as copies.
    assert not TIMER.plan("govbaseline-backup.timer", "enabled", {}, [], ["/etc/systemd/system/x"]).changed


def test_a_timer_left_without_a_next_run_is_restarted():
    state, _, _ = TIMER.parse_survey("state=enabled\nsub=elapsed\n")
    plan = TIMER.plan("apt-daily-upgrade.timer", state, {}, [])
    assert plan.changed and ["systemctl", "try-restart", "apt-daily-upgrade.timer"] in plan.commands()
    assert "restarted apt-daily-upgrade.timer (it had no next run)" in plan.reason(done=True)
    waiting, _, _ = TIMER.parse_survey("state=enabled\nsub=waiting\n")
    assert not TIMER.plan("apt-daily-upgrade.timer", waiting, {}, []).changed


def test_start_enables_and_starts_only_what_is_not_so_and_restarts_after_a_change():
    assert TIMER.start_commands("x.timer", enabled=True, active=True, restart=False) == []
    assert TIMER.start_commands("x.timer", enabled=False, active=False, restart=False) == [
        ["systemctl", "enable", "x.timer"], ["systemctl", "start", "x.timer"]]
    assert TIMER.start_commands("x.timer", enabled=True, active=True, restart=True) == [
        ["systemctl", "restart", "x.timer"]]
