"""Backup jobs meeting a locked repository wait and retry (roles/backup and roles/backup_server scripts)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import subprocess
from types import ModuleType

import pytest

from govbaseline.paths import ROLES_DIR

SCRIPTS = {"client": ROLES_DIR / "backup" / "files" / "govbaseline-backup",
           "server": ROLES_DIR / "backup_server" / "files" / "govbaseline-backup-server"}
LOCKED = ("Fatal: unable to create lock in backend: repository is already locked exclusively by PID 42 on "
          "backup by root (UID 0, GID 0)\nlock was created at 2026-11-30 00:10:00 (1.2s ago)\n")


def load(which: str) -> ModuleType:
    loader = importlib.machinery.SourceFileLoader(f"govbaseline_{which}_script", str(SCRIPTS[which]))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def proc(code: int, stderr: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess([], code, "", stderr)


@pytest.mark.parametrize("which", SCRIPTS)
def test_restic_waits_for_a_lock_itself_from_0_16(which):
    script = load(which)
    assert script.lock_options((0, 14)) == []  # Debian 12
    assert script.lock_options((0, 18)) == ["--retry-lock", "120m"]  # Debian 13
    seen = script.restic_version(run=lambda *a, **k: subprocess.CompletedProcess(
        [], 0, "restic 0.14.0 compiled with go1.19.8 on linux/amd64\n", ""))
    assert seen == (0, 14)


@pytest.mark.parametrize("which", SCRIPTS)
def test_a_locked_repository_is_tried_again_until_free(which):
    script = load(which)
    answers = [proc(1, LOCKED), proc(1, LOCKED), proc(0)]
    clock, pauses = [0.0], []

    def sleep(seconds):
        pauses.append(seconds)
        clock[0] += seconds

    result = script.retry_locked(lambda: answers.pop(0), wait=600, pause=60, sleep=sleep, clock=lambda: clock[0])
    assert result.returncode == 0 and pauses == [60, 60]


@pytest.mark.parametrize("which", SCRIPTS)
def test_the_wait_is_bounded_and_other_failures_are_not_retried(which):
    script = load(which)
    clock = [0.0]

    def sleep(seconds):
        clock[0] += seconds

    calls = []
    result = script.retry_locked(lambda: calls.append(1) or proc(1, LOCKED), wait=300, pause=60, sleep=sleep,
                                 clock=lambda: clock[0])
    assert result.returncode == 1 and LOCKED in result.stderr and len(calls) == 6  # at 0, 60, ... 300 s
    calls.clear()
    script.retry_locked(lambda: calls.append(1) or proc(1, "Fatal: wrong password"), sleep=sleep,
                        clock=lambda: clock[0])
    assert len(calls) == 1


def test_what_a_job_leaves_running_gets_its_time_then_is_killed_and_named(capsys):
    """A process that ignores SIGTERM (as a stuck ssh of restic's did in CI) would hold the unit in
    stop-sigterm for 90 s: the client script waits for it, then kills and names it."""
    script = load("client")
    ends = subprocess.Popen(["sleep", "0.3"])
    stuck = subprocess.Popen(["python3", "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                              "signal.SIG_IGN); time.sleep(60)"])
    try:
        alive = lambda: [p.pid for p in (ends, stuck) if p.poll() is None]  # noqa: E731
        assert script.end_strays(find=alive, wait=5) == [stuck.pid]
        assert stuck.wait(timeout=5) == -9 and ends.returncode == 0
        named = capsys.readouterr().err
        assert f"killed: {stuck.pid} (" in named and "signal.SIG_IGN" in named and "state " in named, named
    finally:
        stuck.kill()


def test_a_job_run_by_hand_touches_no_other_process(monkeypatch):
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    assert load("client").unit_processes() == []


@pytest.mark.parametrize("hierarchy", ["legacy", "unified"])
def test_the_jobs_own_processes_are_read_from_its_service_cgroup(tmp_path, monkeypatch, hierarchy):
    """cgroup v1 (this build machine, its lab containers: systemd's name=systemd hierarchy) and v2."""
    unit = "/system.slice/govbaseline-backup.service"
    own = tmp_path / "cgroup"
    if hierarchy == "legacy":
        own.write_text(f"9:name=systemd:{unit}\n8:pids:/\n0::/\n")
        folder = tmp_path / "systemd" / unit.lstrip("/")
    else:
        own.write_text(f"0::{unit}\n")
        folder = tmp_path / unit.lstrip("/")
    folder.mkdir(parents=True)
    (folder / "cgroup.procs").write_text(f"{os.getpid()}\n4242\n")
    monkeypatch.setenv("INVOCATION_ID", "0" * 32)
    script = load("client")
    monkeypatch.setattr(script.os, "getppid", lambda: 1)  # started by the service manager
    assert script.unit_processes(cgroup_root=str(tmp_path), own=str(own)) == [4242]
    monkeypatch.setattr(script.os, "getppid", lambda: 777)  # started by a program in the service
    assert script.unit_processes(cgroup_root=str(tmp_path), own=str(own)) == []
    monkeypatch.setattr(script.os, "getppid", lambda: 1)
    own.write_text(own.read_text().replace("govbaseline-backup.service", "govbaseline-pull.service"))
    pull = folder.parent / "govbaseline-pull.service"
    pull.mkdir()
    (pull / "cgroup.procs").write_text("4243\n")
    assert script.unit_processes(cgroup_root=str(tmp_path), own=str(own)) == []  # another unit's cgroup
    own.write_text("0::/user.slice/user-0.slice/session-1.scope\n")  # a login session: not a service
    assert script.unit_processes(cgroup_root=str(tmp_path), own=str(own)) == []
