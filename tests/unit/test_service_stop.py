"""The baseline's long-running services end with no process left when systemd stops them.

systemd stops a service by sending SIGTERM to every process of its cgroup at once. A child that
outlives the main process by a moment (inotifywait under the tamper watch, an alert being sent by
the IDS forwarder) held each restart of the service for the whole stop timeout (90 s, "State
'final-sigterm' timed out") on Debian 12 lab hosts, whose systemd runs on cgroup v1 and did not see
the child go. Here the stop is done as systemd does it (SIGTERM to the whole process group) with a
child that takes half a second to end: the main process must exit 0 after its child, never before.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from govbaseline.paths import ROLES_DIR

# A child that ends half a second after SIGTERM (the slow end a real one may have), and says it runs.
SLOW_CHILD = """#!/bin/sh
trap 'sleep 0.5; exit 0' TERM
touch "$MARKER"
while :; do sleep 0.1; done
"""


def tamper_watch(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    """The tamper watch's loop (inotifywait replaced by the slow child; the web root judged by no one)."""
    (tmp_path / "www").mkdir()
    (tmp_path / "bin" / "inotifywait").write_text(SLOW_CHILD)
    (tmp_path / "bin" / "inotifywait").chmod(0o755)
    driver = ("import importlib.machinery, importlib.util, sys\n"
              "loader = importlib.machinery.SourceFileLoader('watch', sys.argv[1])\n"
              "module = importlib.util.module_from_spec(importlib.util.spec_from_loader('watch', loader))\n"
              "loader.exec_module(module)\n"
              "module.webcheck = lambda config: 0\n"
              "module.watch({'web_root': sys.argv[2], 'delay': 1})\n")
    return [sys.executable, "-c", driver, str(ROLES_DIR / "integrity" / "files" / "govbaseline-integrity"),
            str(tmp_path / "www")], {}


def ids_forwarder(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    """The IDS forwarder following an EVE file with one alert, sent by the slow child."""
    eve, state = tmp_path / "eve.json", tmp_path / "state"
    state.mkdir()
    eve.write_text(json.dumps({"event_type": "alert", "src_ip": "198.51.100.1", "src_port": 40000,
                               "dest_ip": "192.0.2.10", "dest_port": 80, "proto": "TCP",
                               "alert": {"signature_id": 1, "signature": "rule 1", "severity": 1}}) + "\n")
    (state / "state.json").write_text(json.dumps({"inode": eve.stat().st_ino, "offset": 0}))
    (tmp_path / "alerts.json").write_text(json.dumps({"eve": str(eve), "state_dir": str(state),
                                                      "min_severity": "low", "dedup_minutes": 60,
                                                      "max_per_hour": 10}))
    (tmp_path / "bin" / "alert").write_text(SLOW_CHILD)
    (tmp_path / "bin" / "alert").chmod(0o755)
    return ([sys.executable, str(ROLES_DIR / "ids" / "files" / "govbaseline-ids-alerts")],
            {"GOVBASELINE_IDS_ALERTS_CONFIG": str(tmp_path / "alerts.json"),
             "GOVBASELINE_ALERT_COMMAND": str(tmp_path / "bin" / "alert")})


@pytest.mark.parametrize("service", [tamper_watch, ids_forwarder], ids=["tamper-watch", "ids-alerts"])
def test_a_stopped_service_exits_cleanly_after_its_children(tmp_path, service):
    (tmp_path / "bin").mkdir()
    argv, env = service(tmp_path)
    marker = tmp_path / "child-running"
    proc = subprocess.Popen(argv, start_new_session=True, env={
        **os.environ, **env, "MARKER": str(marker), "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"})
    try:
        deadline = time.monotonic() + 20
        while not marker.exists():
            assert proc.poll() is None, f"the service ended before its child started: {proc.returncode}"
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGTERM)  # what systemd's stop does to the service's cgroup
        assert proc.wait(timeout=10) == 0, "a stop asked for must be a clean end (exit 0)"
        # The main process is gone: nothing of its process group may be left.
        with pytest.raises(ProcessLookupError):
            os.killpg(proc.pid, 0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
