# Copyright: govbaseline contributors
# Apache License 2.0
"""Each task's start and each host's result as a JSON line, for the program that runs the playbook.

govbaseline reads these events (task results, changed counts, per-task seconds) instead of the
printed text; the event names are those of ansible-runner (the library AWX runs playbooks with).
A line holds no task result body: the status, ``changed``, the host, the task and, for a failure,
the message Ansible shows (already censored for tasks with ``no_log``).
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: events
type: notification
short_description: task starts and host results as JSON lines (for govbaseline's engine)
description:
  - Appends one JSON object per line to the file named by C(GOVBASELINE_EVENTS), with the fields
    C(event) (C(playbook_on_start), C(playbook_on_task_start), C(playbook_on_handler_task_start), C(runner_on_ok),
    C(runner_on_failed), C(runner_on_skipped), C(runner_on_unreachable), C(playbook_on_stats)),
    C(time) (seconds since the epoch), and per event C(task), C(task_uuid), C(role), C(action),
    C(host), C(changed), C(ignore_errors), C(msg) or C(stats).
  - Writes nothing when C(GOVBASELINE_EVENTS) is unset.
requirements:
  - enabled in callbacks_enabled (govbaseline enables it for the runs it starts)
options: {}
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "govbaseline.baseline.events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        path = os.environ.get("GOVBASELINE_EVENTS")
        self._out = None
        if path:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            self._out = os.fdopen(fd, "a", encoding="utf-8")

    def _emit(self, event, **fields):
        if self._out is not None:
            self._out.write(json.dumps(dict(event=event, time=time.time(), **fields), sort_keys=True) + "\n")
            self._out.flush()

    @staticmethod
    def _task(task):
        role = getattr(task, "_role", None)
        return {"task": task.get_name(), "task_uuid": task._uuid, "action": task.action,
                "role": role.get_name() if role is not None else None}

    def v2_playbook_on_start(self, playbook):
        self._emit("playbook_on_start", playbook=str(playbook._file_name))

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._emit("playbook_on_task_start", **self._task(task))

    def v2_playbook_on_handler_task_start(self, task):
        self._emit("playbook_on_handler_task_start", **self._task(task))

    def _result(self, event, result, **extra):
        self._emit(event, host=result._host.get_name(), changed=bool(result._result.get("changed", False)),
                   **dict(self._task(result._task), **extra))

    def v2_runner_on_ok(self, result):
        self._result("runner_on_ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result("runner_on_failed", result, ignore_errors=bool(ignore_errors),
                     msg=str(result._result.get("msg", ""))[:2000])

    def v2_runner_on_skipped(self, result):
        self._result("runner_on_skipped", result)

    def v2_runner_on_unreachable(self, result):
        self._result("runner_on_unreachable", result, msg=str(result._result.get("msg", ""))[:2000])

    def v2_playbook_on_stats(self, stats):
        per_host = {}
        for host in sorted(stats.processed):
            per_host[host] = stats.summarize(host)
        self._emit("playbook_on_stats", stats=per_host)
        if self._out is not None:
            self._out.close()
            self._out = None
