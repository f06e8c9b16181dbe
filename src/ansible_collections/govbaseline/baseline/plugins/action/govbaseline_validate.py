# Copyright: govbaseline contributors
# Apache License 2.0
"""Action plugin: validate a role's variables on the controller, before the host changes.

It runs no module on the host; it hands the role's variables to ``govbaseline.validation``, the
code the pyinfra engine uses too, so both engines refuse the same values with the same words. It
reads what the roles derive from the host (routes, interfaces, systemd, apt's sources) with one
read-only command, ``govbaseline.hostfacts.OBSERVE``, and refuses a host a role cannot work on; and
it asks the host's systemd whether it accepts each calendar (``systemd-analyze calendar``,
read-only), since that is where the timers run.
"""

from __future__ import annotations

# Its documentation is the module of the same name (plugins/modules/govbaseline_validate.py).


from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("role", "controller_address", "controller_port", "listening_tcp_ports",
                             "connecting_user", "connecting_groups"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        try:
            from govbaseline import hostfacts, validation
        except ImportError as exc:
            raise AnsibleActionFail(
                "govbaseline_validate needs the govbaseline package on the controller "
                "(pip install govbaseline; the collection's requirements.txt): %s" % exc) from exc
        wanted = self._task.args["role"]
        # "baseline": every role the host's groups get from playbooks/site.yml (its own play's and
        # any other play's), so a host's values are judged as a whole before the first change.
        roles = validation.roles_for(task_vars.get("group_names", [])) if wanted == "baseline" else [wanted]
        context = {k: v for k, v in self._task.args.items() if k != "role"}
        # Variables that name an inventory host or group are judged against the inventory itself.
        context["inventory_groups"] = {g: list(hosts) for g, hosts in task_vars.get("groups", {}).items()}
        context["probe_host"] = self._templar.template(task_vars.get("govbaseline_probe_host") or "")
        facts = task_vars.get("ansible_facts", {})
        gathered = {}
        if "distribution" not in facts:
            # A playbook that gathered no facts: the platform check below and the roles' choices per
            # Debian release need them (the minimal subset, as playbooks/site.yml gathers); returned
            # with the result, so the role's later tasks have them too.
            setup = self._execute_module(module_name="ansible.builtin.setup", module_args={"gather_subset": ["min"]},
                                         task_vars=task_vars)
            if setup.get("failed"):
                result.update(failed=True, msg="reading the host's release (setup) failed: %s" % setup.get("msg"))
                return result
            gathered = setup.get("ansible_facts", {})
            facts = {name[len("ansible_"):] if name.startswith("ansible_") else name: value
                     for name, value in gathered.items()}
        values = {}
        for role in roles:
            # Role-internal variables (registered results, vars/ files) start with "__" and are skipped;
            # a variable belongs to the longest role name it starts with (backup_server_* is not backup's).
            # Overlaid on the role's defaults: a play that validates before its roles run (site.yml's
            # first play) has the inventory's values but not the roles' defaults.
            # Another role's variables this role reads (validation.READS) are the host's too, not that
            # role's defaults.
            reads = validation.READS.get(role, ())
            values[role] = validation.role_vars(role, {name: self._templar.template(task_vars[name])
                                                       for name in task_vars
                                                       if validation.role_of(name) == role or name in reads})
        platform = None
        if "distribution" in facts:
            platform = (facts["distribution"], str(facts.get("distribution_major_version")))
        try:
            converted = validation.validate_roles(values, context, platform)
        except validation.ValidationError as exc:
            result.update(failed=True, msg="; ".join(exc.problems), problems=exc.problems)
            return result
        # Calendars are judged where their timers run: the host's systemd (read-only command), never
        # skipped because the controller lacks systemd-analyze.
        problems = []
        for role, role_values in converted.items():
            for name, value in validation.calendars(role, role_values).items():
                ran = self._low_level_execute_command(validation.calendar_command(value))
                problem = validation.calendar_problem(name, value, ran.get("stdout", "") if ran.get("rc") == 0
                                                      else "refused " + (ran.get("stderr") or "").strip())
                if problem:
                    problems.append("%s: %s" % (role, problem))
        if problems:
            result.update(failed=True, msg="; ".join(problems), problems=problems)
            return result
        # The values as validated and type-converted (a quoted "443" becomes 443), and what follows
        # from them and the Debian version (e.g. the backup server's transport), become host facts,
        # which outrank the inventory's variables: the roles apply exactly what pyinfra applies and
        # what verify's checks judge (validation.applied_vars), never the inventory's raw strings.
        applied = {}
        for role, role_values in converted.items():
            applied.update(role_values)
            if platform is not None and role_values.get("%s_enabled" % role, True):
                applied.update(validation.derived(role, role_values, platform[1]))
        # What the roles derive from the host itself (the IDS interface from the default route of
        # either family): decided here, before the first change, or the host is refused.
        # As root where the play becomes root (auditctl answers root only), as pyinfra asks it with
        # the host's _sudo: both engines see the same host.
        seen = self._low_level_execute_command(hostfacts.OBSERVE, sudoable=True)
        if seen.get("rc") != 0:
            result.update(failed=True, msg="could not read the host's routes and interfaces (%s): %s"
                          % (hostfacts.OBSERVE, (seen.get("stderr") or seen.get("stdout") or "").strip()[-500:]))
            return result
        try:
            applied.update(hostfacts.decide(converted, hostfacts.parse(seen.get("stdout", ""))))
        except validation.ValidationError as exc:
            result.update(failed=True, msg="; ".join(exc.problems), problems=exc.problems)
            return result
        # The facts hold the roles' secrets too: the result is not shown, even with -v.
        result.update(changed=False, msg="%s: variables valid" % ", ".join(roles),
                      ansible_facts={**gathered, **applied}, _ansible_no_log=True)
        return result
