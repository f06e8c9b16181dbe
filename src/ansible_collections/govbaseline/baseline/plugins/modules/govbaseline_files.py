#!/usr/bin/python
# Copyright: govbaseline contributors
# Apache License 2.0
"""Ansible module: put several files, folders and removals in place in one module run."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: govbaseline_files
short_description: Write several files (content, owner, mode), create folders and remove paths at once
description:
  - One module run for what would be one C(ansible.builtin.template), C(copy) or C(file) run per
    path; on a converge that changes nothing, each of those costs a module start (about 0.2 s to
    0.45 s on a small host); this compares every path in one run.
  - A file is rewritten only when its content differs (compared on the host, byte for byte), and
    atomically (a temporary file in the same folder, with its owner and mode set before it is
    renamed over the old one, so no reader ever sees a half-written file or a secret with wide
    permissions). Owner and mode are corrected in place when only they differ.
  - Normally called through the action plugin of the same name (plugins/action), which renders
    C(template) entries and reads C(src) entries on the controller, as the template and copy modules do.
options:
  files:
    description: The paths, in order.
    type: list
    elements: dict
    required: true
    suboptions:
      dest:
        description: Absolute path on the host.
        type: path
        required: true
      state:
        description: C(file) writes O(files[].content); C(directory) creates the folder; C(absent) removes the path.
        type: str
        choices: [file, directory, absent]
        default: file
      content:
        description: The whole content of the file (state C(file)).
        type: str
      mode:
        description: Permissions as an octal string, e.g. C("0644") (states C(file) and C(directory)).
        type: str
      owner:
        description: Owning user.
        type: str
        default: root
      group:
        description: Owning group.
        type: str
        default: root
      validate:
        description:
          - Command that checks a new content before it replaces the file (state C(file)); C(%s) is
            the path of the new content, e.g. C(/usr/sbin/sshd -t -f %s). The file is left as it was
            when the command fails; nothing is checked when the content is unchanged.
        type: str
notes:
  - Supports check mode and diff mode; C(changed_files) names every path changed (or that would be).
  - The parent folder of a file must exist (as with the template module).
author: govbaseline contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: ALERT-01 | Install the alert command and its settings
  govbaseline.baseline.govbaseline_files:
    files:
      - {src: govbaseline-alert, dest: /usr/local/sbin/govbaseline-alert, mode: "0755"}
      - {template: config.json.j2, dest: /etc/govbaseline/alerts/config.json, mode: "0600"}
      - {dest: /etc/govbaseline/alerts/relay-ca.pem, state: absent}
"""

RETURN = r"""
changed_files:
  description: The paths written, created, corrected or removed (or that would be).
  type: list
  elements: str
  returned: always
"""

import grp
import os
import pwd
import shlex
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from ansible.module_utils.basic import AnsibleModule

# Larger files (or files that are not UTF-8 text) are compared and written, but not shown in a diff.
DIFF_LIMIT = 128 * 1024


@dataclass
class Wanted:
    dest: str
    state: str = "file"
    content: bytes = b""
    mode: int | None = None
    uid: int = 0
    gid: int = 0
    validate: str | None = None


@dataclass
class Found:
    kind: str  # "file", "directory", "absent" or "link or special file"
    content: bytes | None = None
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None


def observe(dest: str, read: bool) -> Found:
    """What is at ``dest`` now (the content only for a regular file, when ``read``)."""
    try:
        st = os.lstat(dest)
    except FileNotFoundError:
        return Found("absent")
    kind = "file" if stat.S_ISREG(st.st_mode) else "directory" if stat.S_ISDIR(st.st_mode) else "link or special file"
    content = None
    if kind == "file" and read:
        with open(dest, "rb") as handle:
            content = handle.read()
    return Found(kind, content, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)


def differences(want: Wanted, found: Found) -> list[str]:
    """What differs between the wanted and the found state of one path, in words (empty: nothing)."""
    if want.state == "absent":
        return [] if found.kind == "absent" else [f"{found.kind} present"]
    if found.kind == "absent":
        return [f"{want.state} missing"]
    if found.kind != want.state:
        return [f"is a {found.kind}, not a {want.state}"]
    words = []
    if want.state == "file" and found.content != want.content:
        words.append("content")
    if want.mode is not None and found.mode != want.mode:
        words.append(f"mode {found.mode:04o} -> {want.mode:04o}")
    if (found.uid, found.gid) != (want.uid, want.gid):
        words.append(f"owner {found.uid}:{found.gid} -> {want.uid}:{want.gid}")
    return words


def text_or_none(data: bytes | None) -> str | None:
    if data is None or len(data) > DIFF_LIMIT:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def diff_of(want: Wanted, found: Found, words: list[str]) -> dict[str, str]:
    """A diff for --diff: the content when it is text, else the differences in words."""
    before, after = text_or_none(found.content), text_or_none(want.content)
    new = found.kind == "absent"
    if want.state == "file" and ("content" in words or new) and after is not None and (before is not None or new):
        return {"before": before or "", "after": after, "before_header": want.dest, "after_header": want.dest}
    return {"before": f"{want.dest}: {found.kind}\n", "after": f"{want.dest}: {want.state} ({', '.join(words)})\n",
            "before_header": want.dest, "after_header": want.dest}


def write_file(want: Wanted, found: Found, check: Callable[[str], None]) -> None:
    """Write the content atomically, or correct owner and mode in place when only they differ.
    ``check`` runs the validate command on the new content before it replaces the file."""
    if found.kind == "file" and found.content == want.content:
        os.chown(want.dest, want.uid, want.gid)
        if want.mode is not None:
            os.chmod(want.dest, want.mode)
        return
    if found.kind not in ("file", "absent"):
        raise OSError(f"{want.dest} is a {found.kind}; remove it first (state: absent)")
    # Not module.atomic_move: it gives a new file the umask's mode for a moment after the rename; here
    # the temporary file has its final owner and mode before it appears under its name.
    fd, tmp = tempfile.mkstemp(prefix=".govbaseline-", dir=os.path.dirname(want.dest) or "/")
    try:
        os.fchown(fd, want.uid, want.gid)
        os.fchmod(fd, want.mode if want.mode is not None else 0o644)
        view = memoryview(want.content)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        check(tmp)
        os.replace(tmp, want.dest)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        os.unlink(tmp)
        raise


def no_check(path: str) -> None:
    """Nothing to check before the rename (no validate command)."""


def apply(want: Wanted, found: Found, check: Callable[[str], None] = no_check) -> None:
    if want.state == "absent":
        if found.kind == "directory":
            shutil.rmtree(want.dest)
        else:
            os.unlink(want.dest)
    elif want.state == "directory":
        if found.kind == "absent":
            os.makedirs(want.dest, mode=want.mode if want.mode is not None else 0o755)
        elif found.kind != "directory":
            raise OSError(f"{want.dest} is a {found.kind}, not a directory; remove it first (state: absent)")
        os.chown(want.dest, want.uid, want.gid)
        if want.mode is not None:
            os.chmod(want.dest, want.mode)
    else:
        write_file(want, found, check)


def parse(entry: dict) -> Wanted:
    """The wanted state of one entry; raises ValueError naming the entry and the fix."""
    dest, state = entry["dest"], entry["state"]
    if not os.path.isabs(dest):
        raise ValueError(f"dest {dest!r} is not an absolute path")
    if state == "file" and entry.get("content") is None:
        raise ValueError(f"{dest}: state file needs content")
    if state != "absent" and not entry.get("mode"):
        raise ValueError(f"{dest}: give its mode as an octal string, e.g. mode: \"0644\"")
    mode = None
    if entry.get("mode"):
        try:
            mode = int(str(entry["mode"]), 8)
        except ValueError:
            raise ValueError(f"{dest}: mode {entry['mode']!r} is not an octal string such as \"0644\"") from None
    try:
        uid = pwd.getpwnam(entry["owner"]).pw_uid
        gid = grp.getgrnam(entry["group"]).gr_gid
    except KeyError:
        raise ValueError(f"{dest}: owner {entry['owner']!r} or group {entry['group']!r} is not on the host") from None
    content = (entry.get("content") or "").encode("utf-8")
    validate = entry.get("validate")
    if validate and "%s" not in validate:
        raise ValueError(f"{dest}: validate {validate!r} must name the new content as %s")
    return Wanted(dest, state, content, mode, uid, gid, validate or None)


def validate(module: AnsibleModule, want: Wanted, path: str) -> None:
    """Run the entry's validate command on the new content; fail (file untouched) when it refuses it."""
    if not want.validate:
        return
    command = want.validate.replace("%s", shlex.quote(path))
    rc, out, err = module.run_command(command, use_unsafe_shell=False, environ_update={"LANG": "C", "LC_ALL": "C"})
    if rc != 0:  # write_file removes the new content
        raise OSError(f"{command} refused the new content (rc={rc}): {(err or out).strip()}")


def main() -> None:
    module = AnsibleModule(
        argument_spec={"files": {"type": "list", "elements": "dict", "required": True, "options": {
            "dest": {"type": "path", "required": True},
            "state": {"type": "str", "choices": ["file", "directory", "absent"], "default": "file"},
            # Never in the host's journal (the module's invocation is logged there) nor in -vvv output:
            # a file may hold a secret (a webhook URL, a password). The action plugin restores the new
            # content in --diff, as the template module shows it.
            "content": {"type": "str", "no_log": True},
            "mode": {"type": "str"},
            "owner": {"type": "str", "default": "root"},
            "group": {"type": "str", "default": "root"},
            "validate": {"type": "str"},
        }}},
        supports_check_mode=True,
    )
    try:
        wanted = [parse(entry) for entry in module.params["files"]]
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    changed_files, diffs = [], []
    for want in wanted:
        found = observe(want.dest, read=want.state == "file")
        words = differences(want, found)
        if not words:
            continue
        changed_files.append(want.dest)
        if module._diff:
            diffs.append(diff_of(want, found, words))
        if not module.check_mode:
            try:
                apply(want, found, lambda path, want=want: validate(module, want, path))
            except OSError as exc:
                module.fail_json(msg=f"cannot put {want.dest} in place: {exc}", changed_files=changed_files)
    module.exit_json(changed=bool(changed_files), changed_files=changed_files, diff=diffs)


if __name__ == "__main__":
    main()
