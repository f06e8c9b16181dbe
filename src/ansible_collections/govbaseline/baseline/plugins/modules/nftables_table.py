#!/usr/bin/python
# Copyright: govbaseline contributors
# Apache License 2.0
"""Ansible module: load one nftables table atomically, with an automatic rollback."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nftables_table
short_description: Load one nftables table atomically, armed to roll back unless confirmed
description:
  - Validates a ruleset file with C(nft -c), installs it as O(dest) and loads it in one
    transaction. Only the named table is replaced, so tables owned by other tools are left alone.
  - Before loading, the table as it is now is saved and a systemd timer is armed that restores it
    (and the previous O(dest)) after O(rollback_timeout) seconds. Run the module again with
    O(state=confirmed) over a fresh connection to cancel the rollback; if the new ruleset cut the
    controller off, nothing can confirm it and the host heals itself.
  - The loaded table is recorded, so a table changed or flushed by hand is seen as drift and
    loaded again.
options:
  table:
    description: Family and name of the table the ruleset defines, e.g. C(inet govbaseline).
    type: str
    required: true
  content:
    description:
      - The whole ruleset file. It must start by deleting and recreating O(table) so loading is
        idempotent. Required when O(state=loaded).
    type: str
  dest:
    description: File the ruleset is installed as; C(nftables.service) loads it at boot.
    type: path
    default: /etc/nftables.conf
  state:
    description:
      - C(loaded) installs and loads O(content), arming the rollback when anything changes.
      - C(confirmed) cancels a pending rollback.
    type: str
    choices: [loaded, confirmed]
    default: loaded
  rollback_timeout:
    description: Seconds before an unconfirmed load is rolled back; C(0) loads without a rollback.
    type: int
    default: 60
notes:
  - Supports check mode and diff mode.
  - Needs systemd (C(systemd-run)) for the rollback timer.
author: govbaseline contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: FW-01 | Load the default-deny table, armed to roll back
  govbaseline.baseline.nftables_table:
    table: inet govbaseline
    content: "{{ lookup('ansible.builtin.template', 'nftables.conf.j2') }}"
    rollback_timeout: 60
  register: firewall_load

- name: FW-02 | Confirm from a fresh connection
  govbaseline.baseline.nftables_table:
    table: inet govbaseline
    state: confirmed
  when: firewall_load.changed
"""

RETURN = r"""
rollback_armed:
  description: Whether a rollback timer is now pending.
  type: bool
  returned: always
reason:
  description: Why the table was (or would be) loaded, or why nothing changed.
  type: str
  returned: always
"""

import hashlib
import os
import shlex
import tempfile

from ansible.module_utils.basic import AnsibleModule

STATE_DIR = "/var/lib/govbaseline/nftables"
# Not govbaseline-*: every govbaseline-*.service runs in SYS-10's sandbox (local sockets only, no
# capabilities it does not list), where nft could not load the old ruleset back.
ROLLBACK_UNIT = "nftables-govbaseline-rollback"
LANG_C = {"LANG": "C", "LC_ALL": "C"}


def slug(table):
    """File-name form of a table spec: ``inet govbaseline`` -> ``inet-govbaseline``."""
    return "-".join(table.split())


def recorded_path(table):
    return os.path.join(STATE_DIR, slug(table) + ".loaded")


def rollback_ruleset_path(table):
    return os.path.join(STATE_DIR, slug(table) + ".rollback")


def dest_backup_path(dest):
    return dest + ".govbaseline-rollback"


def listing_command(nft, table):
    """Stateless, terse listing: counters and dynamic set elements do not count as drift."""
    return [nft, "-s", "-t", "list", "table", *table.split()]


def rollback_ruleset(table, saved_listing):
    """A file that puts ``table`` back as it was (or removes it if it did not exist)."""
    head = "table %s\ndelete table %s\n" % (table, table)
    return head + (saved_listing or "")


def rollback_command(table, dest, timeout):
    """The systemd-run argv that restores the table and ``dest`` after ``timeout`` seconds."""
    backup = dest_backup_path(dest)
    script = "nft -f {rb} ; if [ -f {b} ]; then mv -f {b} {d}; fi".format(
        rb=shlex.quote(rollback_ruleset_path(table)), b=shlex.quote(backup), d=shlex.quote(dest))
    return ["systemd-run", "--quiet", "--collect", "--unit", ROLLBACK_UNIT,
            "--on-active", "%ds" % timeout, "--timer-property", "AccuracySec=1s",
            "/bin/sh", "-c", script]


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def decide(want, have_file, live, recorded):
    """Return the reason a load is needed, or None when the host already matches."""
    if have_file != want:
        return "the ruleset file differs from the wanted one"
    if live is None:
        return "the table is not loaded"
    if recorded is None or live != recorded:
        return "the loaded table drifted from the one last loaded"
    return None


class Nftables:
    def __init__(self, module):
        self.module = module
        self.nft = module.get_bin_path("nft", required=True)
        self.table = module.params["table"]
        self.dest = module.params["dest"]

    def run(self, argv, data=None):
        rc, out, err = self.module.run_command(argv, data=data, environ_update=LANG_C)
        return rc, out, err

    def live(self):
        rc, out, _err = self.run(listing_command(self.nft, self.table))
        return out if rc == 0 else None

    def timer_active(self):
        systemctl = self.module.get_bin_path("systemctl", required=True)
        rc = self.run([systemctl, "is-active", "--quiet", ROLLBACK_UNIT + ".timer"])[0]
        return rc == 0

    def validate(self, content):
        with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as handle:
            handle.write(content)
        try:
            rc, out, err = self.run([self.nft, "-c", "-f", handle.name])
        finally:
            os.unlink(handle.name)
        if rc != 0:
            self.module.fail_json(msg="nft rejected the ruleset: %s" % (err or out).strip())

    def arm_rollback(self, timeout):
        if not self.timer_active():
            # Save the table as it is now: this is what a failed change goes back to.
            rc, saved, _err = self.run([self.nft, "-s", "list", "table", *self.table.split()])
            self.write(rollback_ruleset_path(self.table), rollback_ruleset(self.table, saved if rc == 0 else ""))
            backup = dest_backup_path(self.dest)
            if os.path.exists(self.dest):
                self.write(backup, read(self.dest))
            elif os.path.exists(backup):
                os.unlink(backup)
        else:
            # An earlier load was never confirmed: keep its saved state, only re-arm the timer.
            self.cancel_rollback()
        rc, out, err = self.run(rollback_command(self.table, self.dest, timeout))
        if rc != 0:
            self.module.fail_json(msg="could not arm the rollback timer: %s" % (err or out).strip())

    def cancel_rollback(self):
        systemctl = self.module.get_bin_path("systemctl", required=True)
        self.run([systemctl, "stop", ROLLBACK_UNIT + ".timer"])
        self.run([systemctl, "reset-failed", ROLLBACK_UNIT + ".service"])

    def write(self, path, content, mode=0o600):
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o700)
        fd, tmp = tempfile.mkstemp(dir=directory)
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        os.chmod(tmp, mode)
        self.module.atomic_move(tmp, path)

    def load(self, content):
        self.write(self.dest, content, mode=0o600)
        rc, out, err = self.run([self.nft, "-f", self.dest])
        if rc != 0:
            self.module.fail_json(msg="loading %s failed: %s" % (self.dest, (err or out).strip()))
        self.write(recorded_path(self.table), self.live() or "")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            table=dict(type="str", required=True),
            content=dict(type="str"),
            dest=dict(type="path", default="/etc/nftables.conf"),
            state=dict(type="str", choices=["loaded", "confirmed"], default="loaded"),
            rollback_timeout=dict(type="int", default=60),
        ),
        required_if=[("state", "loaded", ("content",))],
        supports_check_mode=True,
    )
    nft = Nftables(module)
    params = module.params
    if len(nft.table.split()) != 2:
        module.fail_json(msg="table must be '<family> <name>', e.g. 'inet govbaseline', not %r" % nft.table)
    if params["rollback_timeout"] < 0:
        module.fail_json(msg="rollback_timeout must be 0 or more seconds, not %d" % params["rollback_timeout"])

    if params["state"] == "confirmed":
        pending = nft.timer_active()
        if pending and not module.check_mode:
            nft.cancel_rollback()
            for path in (rollback_ruleset_path(nft.table), dest_backup_path(nft.dest)):
                if os.path.exists(path):
                    os.unlink(path)
        module.exit_json(changed=pending, rollback_armed=False,
                         reason="rollback cancelled" if pending else "no rollback was pending")

    want = params["content"]
    have_file = read(nft.dest)
    reason = decide(want, have_file, nft.live(), read(recorded_path(nft.table)))
    diff = {"before": have_file or "", "after": want, "before_header": nft.dest, "after_header": nft.dest}
    if reason is None:
        module.exit_json(changed=False, rollback_armed=nft.timer_active(), reason="the table is loaded as wanted")
    nft.validate(want)
    if not module.check_mode:
        if params["rollback_timeout"] > 0:
            nft.arm_rollback(params["rollback_timeout"])
        nft.load(want)
    module.exit_json(changed=True, rollback_armed=params["rollback_timeout"] > 0 and not module.check_mode,
                     reason=reason, diff=diff)


if __name__ == "__main__":
    main()
