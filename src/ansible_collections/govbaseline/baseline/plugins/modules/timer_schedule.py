#!/usr/bin/python
# Copyright: govbaseline contributors
# Apache License 2.0
"""Ansible module: give a systemd timer back the schedule its unit file declares."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: timer_schedule
short_description: Remove foreign drop-ins that change a timer's schedule, and unmask it
description:
  - A drop-in in C(/etc/systemd/system) or C(/run/systemd/system) can move or stop a timer without
    touching its unit file (C([Timer]) / C(OnCalendar=) / C(OnCalendar=2025-01-01 06:00:00) leaves it
    enabled and active with no next run). So can a mask. This removes every drop-in that applies to
    O(timer) (its own C(<timer>.d) folder, the prefix folders such as C(apt-.timer.d), and the
    C(timer.d) folder of all timers) and sets a C([Timer]) directive or a C([Unit]) condition, except
    those named in O(keep); it unmasks the timer and reloads systemd.
  - With O(start) it also enables and starts the timer (otherwise left to C(ansible.builtin.systemd_service)).
options:
  timer:
    description: The timer unit, e.g. C(apt-daily-upgrade.timer).
    type: str
    required: true
  keep:
    description: File names of drop-ins govbaseline itself installs for this timer (kept).
    type: list
    elements: str
    default: []
  start:
    description:
      - Also enable the timer and start it when it is not running, in the same module run (what an
        C(ansible.builtin.systemd_service) task with C(enabled) and C(state=started) after this one did).
    type: bool
    default: false
  daemon_reload:
    description: Reload systemd first (the timer's unit files were just written).
    type: bool
    default: false
  restart:
    description: With O(start), restart the timer instead of only starting it (its unit files changed).
    type: bool
    default: false
  vendor:
    description:
      - The timer's unit file comes from a package (apt's timers, certbot's); a copy of it in
        C(/etc/systemd/system) or C(/run/systemd/system), which overrides the package's, is removed too.
    type: bool
    default: false
notes:
  - Supports check mode and diff mode; the result names every file removed.
author: govbaseline contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: PATCH-01 | Restore the declared schedule of apt's timers (foreign drop-ins, masks)
  govbaseline.baseline.timer_schedule:
    timer: "{{ item }}.timer"
    vendor: true
  loop: [apt-daily, apt-daily-upgrade]
"""

RETURN = r"""
removed:
  description: The drop-ins removed (or that would be), each with what it set.
  type: list
  elements: str
  returned: always
started:
  description: The systemctl commands run (or that would be) to enable, start or restart the timer (O(start)).
  type: list
  elements: str
  returned: always
unmasked:
  description: Whether the timer was masked and is unmasked.
  type: bool
  returned: always
reason:
  description: What was (or would be) done, or why nothing changed.
  type: str
  returned: always
"""

import re
import shlex
from dataclasses import dataclass, field

from ansible.module_utils.basic import AnsibleModule

UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system")
MARK = "==> "
# [Unit] directives that stop a run without touching the schedule.
CONDITION = re.compile(r"(Condition|Assert)\w+=")


def dropin_dirs(timer: str) -> list[str]:
    """Every folder whose drop-ins systemd applies to ``timer``: its own, its name's prefixes up to
    each dash (``apt-.timer.d``), and the folder of all timers (``timer.d``)."""
    name, _dot, kind = timer.rpartition(".")
    parts = name.split("-")
    prefixes = ["-".join(parts[:i]) + "-" for i in range(1, len(parts))]
    names = [f"{timer}.d", *(f"{p}.{kind}.d" for p in prefixes), f"{kind}.d"]
    return [f"{base}/{n}" for base in UNIT_DIRS for n in names]


def survey_command(timer: str) -> str:
    """One read-only shell command: the timer's unit file state, then each drop-in with its text."""
    folders = " ".join(f"{shlex.quote(d)}/*.conf" for d in dropin_dirs(timer))
    copies = " ".join(shlex.quote(f"{base}/{timer}") for base in UNIT_DIRS)
    unit = shlex.quote(timer)
    return (f"export LANG=C LC_ALL=C; echo \"state=$(systemctl show -p UnitFileState --value {unit})\"; "
            f"echo \"sub=$(systemctl show -p SubState --value {unit})\"; "
            f"for f in {copies}; do [ -f \"$f\" ] && [ ! -L \"$f\" ] && echo \"copy=$f\"; done; "
            f"for f in {folders}; do [ -f \"$f\" ] || continue; echo \"{MARK}$f\"; cat \"$f\"; done; true")


def parse_survey(text: str) -> tuple[str, dict[str, str], list[str]]:
    """The unit file state (with `` elapsed`` when the timer has fired its last run), each drop-in
    with its text, and the unit files in /etc and /run (regular files: a mask is a symlink)."""
    state, files, copies, current = "", {}, [], None
    for line in text.splitlines():
        if current is None and line.startswith("state="):
            state = line[len("state="):].strip() + state
        elif current is None and line.startswith("sub="):
            state += " elapsed" if line[len("sub="):].strip() == "elapsed" else ""
        elif current is None and line.startswith("copy="):
            copies.append(line[len("copy="):].strip())
        elif line.startswith(MARK):
            current = line[len(MARK):]
            files[current] = ""
        elif current is not None:
            files[current] += line + "\n"
    return state, files, copies


def schedule_changes(content: str) -> list[str]:
    """The directives of a drop-in that change when (or whether) a timer fires its job."""
    section, found = "", []
    for raw in content.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Timer]" or (section == "[Unit]" and CONDITION.match(line)):
            found.append(f"{section} {line}")
    return found


@dataclass
class Plan:
    timer: str
    remove: dict[str, list[str]] = field(default_factory=dict)
    unmask: str | None = None  # "" for /etc, "--runtime" for /run
    # A timer that has fired its last run stays "active (elapsed)" with no next run, even once its
    # schedule is repaired and systemd reloaded: only a restart arms it again.
    elapsed: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.remove) or self.unmask is not None or self.elapsed

    def commands(self) -> list[list[str]]:
        out = [["rm", "-f", path] for path in self.remove]
        if self.unmask is not None:
            out.append(["systemctl", "unmask", *([self.unmask] if self.unmask else []), self.timer])
        if self.changed:
            out.append(["systemctl", "daemon-reload"])
        if self.remove or self.elapsed:
            out.append(["systemctl", "try-restart", self.timer])  # armed with the restored schedule
        return out

    def reason(self, done: bool) -> str:
        if not self.changed:
            return f"{self.timer} runs on the schedule its unit file declares (no foreign drop-in, not masked)"
        verb = ("removed" if done else "would remove")
        parts = [f"{verb} {path} ({'; '.join(lines)})" for path, lines in self.remove.items()]
        if self.unmask is not None:
            parts.append(("unmasked " if done else "would unmask ") + self.timer)
        if self.elapsed and not self.remove:
            parts.append(("restarted " if done else "would restart ") + self.timer + " (it had no next run)")
        return f"{self.timer}: " + ", ".join(parts)


def plan(timer: str, state: str, dropins: dict[str, str], keep: list[str], copies: list[str] | None = None,
         vendor: bool = False) -> Plan:
    """What restores ``timer``'s declared schedule, from its unit file state, its drop-ins and, for a
    timer a package ships (``vendor``), the copies of its unit file in /etc or /run that override it."""
    state, _space, sub = state.partition(" ")
    result = Plan(timer, elapsed=sub == "elapsed")
    if vendor and state not in ("masked", "masked-runtime"):
        for path in copies or []:
            result.remove[path] = ["a copy of the unit file overriding the one its package ships"]
    for path, content in sorted(dropins.items()):
        changes = schedule_changes(content)
        if changes and path.rsplit("/", 1)[-1] not in keep:
            result.remove[path] = changes
    if state in ("masked", "masked-runtime"):
        result.unmask = "--runtime" if state == "masked-runtime" else ""
    return result


def start_commands(timer: str, enabled: bool, active: bool, restart: bool) -> list[list[str]]:
    """What leaves ``timer`` enabled and running (restarted when ``restart``: its unit files changed)."""
    out = [] if enabled else [["systemctl", "enable", timer]]
    if restart:
        out.append(["systemctl", "restart", timer])
    elif not active:
        out.append(["systemctl", "start", timer])
    return out


def main() -> None:
    module = AnsibleModule(
        argument_spec={"timer": {"type": "str", "required": True},
                       "keep": {"type": "list", "elements": "str", "default": []},
                       "vendor": {"type": "bool", "default": False},
                       "start": {"type": "bool", "default": False},
                       "daemon_reload": {"type": "bool", "default": False},
                       "restart": {"type": "bool", "default": False}},
        supports_check_mode=True,
    )
    timer = module.params["timer"]
    if module.params["daemon_reload"] and not module.check_mode:
        rc, _out, err = module.run_command(["systemctl", "daemon-reload"])
        if rc != 0:
            module.fail_json(msg=f"systemctl daemon-reload failed: {err.strip()}")
    sh = module.get_bin_path("sh", required=True)
    rc, out, err = module.run_command([sh, "-c", survey_command(timer)])
    if rc != 0:
        module.fail_json(msg=f"cannot read the drop-ins of {timer}: {err.strip()}")
    state, dropins, copies = parse_survey(out)
    wanted = plan(timer, state, dropins, module.params["keep"], copies, module.params["vendor"])
    listed = sorted(dropins.items())
    diff = {"before": "".join(f"# {p}\n{c}" for p, c in listed) if wanted.changed else "",
            "after": "".join(f"# {p}\n{c}" for p, c in listed if p not in wanted.remove) if wanted.changed else "",
            "before_header": f"{timer} drop-ins", "after_header": f"{timer} drop-ins"}
    if not module.check_mode:
        for command in wanted.commands():
            rc, _out, err = module.run_command(command)
            if rc != 0:
                module.fail_json(msg=f"{shlex.join(command)} failed: {err.strip()}")
        if wanted.changed:
            # Named in every run's output, not only with --diff or -v: a removed file is news to its author.
            module.warn(wanted.reason(done=True))
    started: list[str] = []
    if module.params["start"]:
        # One module run instead of a systemd_service task after this one. A masked timer is unmasked
        # above; in check mode it (or a timer not installed yet) reads as neither enabled nor active.
        enabled = module.run_command(["systemctl", "is-enabled", "--quiet", timer])[0] == 0
        active = module.run_command(["systemctl", "is-active", "--quiet", timer])[0] == 0
        for command in start_commands(timer, enabled, active, module.params["restart"]):
            started.append(shlex.join(command))
            if not module.check_mode:
                rc, _out, err = module.run_command(command)
                if rc != 0:
                    module.fail_json(msg=f"{shlex.join(command)} failed: {err.strip()}")
    reason = wanted.reason(done=not module.check_mode)
    if started:
        reason += ("; ran " if not module.check_mode else "; would run ") + ", ".join(started)
    module.exit_json(changed=wanted.changed or bool(started), removed=list(wanted.remove),
                     unmasked=wanted.unmask is not None, started=started, reason=reason, diff=diff)


if __name__ == "__main__":
    main()
