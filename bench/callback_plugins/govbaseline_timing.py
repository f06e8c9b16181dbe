"""Ansible callback for the benchmarks: seconds per task, written as JSON when the run ends.

Enabled by bench/converge.py through ANSIBLE_CALLBACKS_ENABLED; GOVBASELINE_TIMING names the file.
ansible.posix's profile_tasks does the printing part of this, but it is only on Ansible Galaxy,
which this project's machines cannot reach, and it does not count tasks for a machine to read.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: govbaseline_timing
type: aggregate
short_description: seconds per task and tasks run, as JSON (benchmarks)
requirements: [enabled in callbacks_enabled]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "govbaseline_timing"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.tasks: list[dict] = []
        self.current: dict | None = None

    def _close(self) -> None:
        if self.current is not None:
            self.current["seconds"] = time.perf_counter() - self.current.pop("_start")
            self.tasks.append(self.current)
            self.current = None

    def _open(self, task, kind: str) -> None:
        self._close()
        self.current = {"name": task.get_name(), "kind": kind, "ran": 0, "skipped": 0,
                        "_start": time.perf_counter()}

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:
        self._open(task, "task")

    def v2_playbook_on_handler_task_start(self, task) -> None:
        self._open(task, "handler")

    def _count(self, key: str) -> None:
        if self.current is not None:
            self.current[key] += 1

    def v2_runner_on_ok(self, result) -> None:
        self._count("ran")

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._count("ran")

    def v2_runner_on_skipped(self, result) -> None:
        self._count("skipped")

    def v2_playbook_on_stats(self, stats) -> None:
        self._close()
        path = os.environ.get("GOVBASELINE_TIMING")
        if path:
            with open(path, "w", encoding="utf-8") as out:
                json.dump(self.tasks, out, indent=1)
