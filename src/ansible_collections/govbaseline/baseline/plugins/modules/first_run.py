#!/usr/bin/python
# Copyright: govbaseline contributors
# Apache License 2.0
"""Ansible module: start a scheduled job's first run in the background, once."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: first_run
short_description: Start the first run of a scheduled job in the background, once
description:
  - A job installed with its timer (a self-audit, a scan, a backup) would first run when the timer
    fires; verify then has nothing to read until that day. This starts C(<unit>.service) at once,
    without waiting for it (C(systemctl start --no-block)).
  - Nothing is started when O(marker), the file the job writes when it finishes, exists, or when
    the unit has started since boot (it may still be running, slowly, on a busy host). So a second
    converge while the first run is still going changes nothing, and a first run that failed is
    left to its timer and to verify, which report it.
author: govbaseline contributors (!UNKNOWN)
options:
  unit:
    description: The service, without C(.service).
    type: str
    required: true
  marker:
    description: File the job writes when a run finishes.
    type: path
    required: true
"""

EXAMPLES = r"""
- name: VULN-01 | Start the first self-audit in the background
  govbaseline.baseline.first_run:
    unit: govbaseline-lynis
    marker: /var/lib/govbaseline/vulnscan/last.json
"""

RETURN = r"""
reason:
  description: Why the run was or was not started.
  type: str
  returned: always
"""

import os

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec={"unit": {"type": "str", "required": True}, "marker": {"type": "path", "required": True}},
        supports_check_mode=True,
    )
    unit, marker = module.params["unit"] + ".service", module.params["marker"]
    if os.path.exists(marker):
        module.exit_json(changed=False, reason=f"{marker} exists: the job has run; its timer starts the next run")
    systemctl = module.get_bin_path("systemctl", required=True)
    rc, out, err = module.run_command([systemctl, "show", "-p", "InactiveExitTimestampMonotonic", "--value", unit])
    if rc != 0:
        module.fail_json(msg=f"systemctl show {unit} failed: {err.strip()}")
    if out.strip() not in ("", "0"):
        module.exit_json(changed=False, reason=f"{unit} has started since boot (it may still be running)")
    if module.check_mode:
        module.exit_json(changed=True, reason=f"would start the first run of {unit} in the background")
    rc, out, err = module.run_command([systemctl, "start", "--no-block", unit])
    if rc != 0:
        module.fail_json(msg=f"systemctl start --no-block {unit} failed: {err.strip()}")
    module.exit_json(changed=True, reason=f"started the first run of {unit} in the background")


if __name__ == "__main__":
    main()
