#!/usr/bin/python
# Copyright: govbaseline contributors
# Apache License 2.0
"""Documentation of the action plugin govbaseline_validate, which runs on the controller only."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: govbaseline_validate
short_description: Refuse bad role variables and lockout-prone firewalls before any change
description:
  - Runs on the controller, as the action plugin of the same name; it hands the role's variables to
    C(govbaseline.validation), the rules the pyinfra engine applies too, and fails naming each bad
    variable and its fix. It changes nothing on the host.
  - Needs the Python package C(govbaseline) on the controller.
author: govbaseline contributors (!UNKNOWN)
options:
  role:
    description:
      - Role whose variables are checked (its meta/argument_specs.yml and rules), or C(baseline)
        for every role playbooks/site.yml applies to the host's groups at once (run first, so no
        role changes a host before a later role's variables are known to be good).
    type: str
    required: true
  controller_address:
    description: Address the controller's SSH session comes from, as the host sees it (firewall).
    type: str
  controller_port:
    description: Port of sshd the controller's SSH session reached (firewall; firewall_ssh_port must be it).
    type: str
  listening_tcp_ports:
    description: The host's listening TCP ports, separated by spaces (firewall; sshd must be on firewall_ssh_port).
    type: str
  connecting_user:
    description: Account the controller logs in as (access).
    type: str
  connecting_groups:
    description: That account's groups on the host (access).
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Baseline | Refuse bad values and lockouts of every role of the host's groups
  govbaseline.baseline.govbaseline_validate:
    role: baseline
    controller_address: "{{ baseline_connection.stdout_lines[0] }}"
"""

RETURN = r"""
problems:
  description: Each refused value, naming the variable and the fix.
  returned: failed
  type: list
  elements: str
ansible_facts:
  description:
    - The roles' variables as validated and converted, and what follows from them and the host
      (e.g. the IDS interface), which the roles then apply. Not shown, even with -v (secrets).
  returned: success
  type: dict
"""
