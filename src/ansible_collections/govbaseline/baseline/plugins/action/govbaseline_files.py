# Copyright: govbaseline contributors
# Apache License 2.0
"""Action plugin: render a role's templates and read its files on the controller, then put them all
in place with one run of the module of the same name (plugins/modules/govbaseline_files.py).

A converge that changes nothing pays a module start per template or copy item (a stat, then a file
run: about 0.45 s each on a small host); this pays one per task, whatever the number of files.
Templates are rendered by Ansible's own template lookup (the role's templates/ folder, the same
variables, ``ansible_managed``, trim_blocks), so the bytes are those ``ansible.builtin.template``
writes, and the pyinfra deploys keep rendering the same template files.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: govbaseline_files
short_description: Several templates, files, folders and removals of a role in one module run
options:
  files:
    description:
      - The paths, in order. Each entry has C(dest) and one of C(template) (a file in the role's
        templates/ folder), C(src) (a file in its files/ folder), C(content), or C(state) C(directory)
        or C(absent); C(mode) (octal string) unless absent; C(owner) and C(group) (default C(root));
        C(validate), a command that checks new content (C(%s)) before it replaces the file;
        C(vars), variables for that template only (e.g. C(item), as a loop would have set it).
    type: list
    elements: dict
    required: true
"""

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

SOURCES = ("template", "src", "content")
# What Ansible puts in a module's result in place of a no_log value (the whole value; part of a text).
MASKED = ("VALUE_SPECIFIED_IN_NO_LOG_PARAMETER", "********")
KEYS = frozenset((*SOURCES, "dest", "state", "mode", "owner", "group", "validate", "vars"))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("files",))

    def _content(self, entry: dict, task_vars: dict) -> str | None:
        """The file's content, from whichever source the entry names (None for folders and removals)."""
        given = [key for key in SOURCES if key in entry]
        state = entry.get("state", "file")
        if state != "file":
            # A source beside another state is what lets one entry say "this file when configured,
            # else absent" (state: "{{ 'file' if ... else 'absent' }}"): it is not rendered, not sent.
            return None
        if len(given) != 1:
            raise AnsibleActionFail(f"govbaseline_files: {entry.get('dest')}: give exactly one of {', '.join(SOURCES)}")
        if "content" in entry:
            return to_text(entry["content"])
        if "src" in entry:
            path = self._find_needle("files", entry["src"])
            with open(path, "rb") as handle:
                return to_text(handle.read(), errors="surrogate_or_strict")
        lookup = self._shared_loader_obj.lookup_loader.get(
            "ansible.builtin.template", loader=self._loader, templar=self._templar)
        # The template module's defaults (trim_blocks on, lstrip_blocks off, "\n") are the lookup's too;
        # an entry's vars are what a loop's item or a task's vars were to the template module.
        variables = {**task_vars, **entry.get("vars", {})}
        rendered = lookup.run([entry["template"]], variables=variables)[0]
        return "" if rendered is None else to_text(rendered)  # an empty template renders to None, written as ""

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        files = self._task.args.get("files")
        if not isinstance(files, list) or not files:
            raise AnsibleActionFail("govbaseline_files: files must be a list of entries with dest")
        entries = []
        for entry in files:
            if not isinstance(entry, dict) or "dest" not in entry:
                raise AnsibleActionFail(f"govbaseline_files: every entry needs dest, got {entry!r}")
            unknown = sorted(set(entry) - KEYS)
            if unknown:
                raise AnsibleActionFail(f"govbaseline_files: {entry['dest']}: unknown keys {', '.join(unknown)}")
            module_entry = {key: entry[key] for key in ("dest", "state", "mode", "owner", "group", "validate")
                            if key in entry}
            content = self._content(entry, task_vars)
            if content is not None:
                module_entry["content"] = content
            entries.append(module_entry)
        # A module logs its arguments in the host's journal ("Invoked with ..."), and the masking of
        # a no_log value inside a list does not reach that line: these arguments are whole files,
        # some of them secret, so this module's runs are not logged on the host at all.
        # The module of the same name, in this collection (the task's action as Ansible resolved it).
        module = self._task.resolved_action or "govbaseline.baseline.govbaseline_files"
        result.update(self._execute_module(module_name=module, module_args={"files": entries},
                                           task_vars={**task_vars, "ansible_no_target_syslog": True}))
        # The module masks the contents it was given (no_log: they would reach the host's journal);
        # a --diff shows the new content as ansible.builtin.template does, from the controller's copy.
        contents = {e["dest"]: e["content"] for e in entries if "content" in e}
        for diff in result.get("diff") or []:
            if diff.get("after") in MASKED and diff.get("after_header") in contents:
                diff["after"] = contents[diff["after_header"]]
        return result
