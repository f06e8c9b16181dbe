"""The govbaseline_files module (plugins/modules/) and action (plugins/action/): many files in one module
run. Its bytes equal the template module's for every role's templates (test_templates.py); here:
what it decides, and a real run on this machine for check mode, idempotence, diff and handlers."""

from __future__ import annotations

import grp
import importlib.util
import json
import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from govbaseline.paths import ANSIBLE_CFG, MODULES_DIR

spec = importlib.util.spec_from_file_location("govbaseline_files_module", MODULES_DIR / "govbaseline_files.py")
assert spec and spec.loader
FILES = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = FILES  # its dataclasses look their module up there
spec.loader.exec_module(FILES)

USER, GROUP = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
UID, GID = os.getuid(), os.getgid()


def wanted(dest: Path, **kw) -> object:
    return FILES.Wanted(str(dest), uid=UID, gid=GID, **kw)


def test_an_equal_file_needs_nothing_and_each_difference_is_named(tmp_path):
    dest = tmp_path / "a.conf"
    dest.write_bytes(b"x\n")
    dest.chmod(0o644)
    same = wanted(dest, content=b"x\n", mode=0o644)
    assert FILES.differences(same, FILES.observe(str(dest), read=True)) == []
    other = wanted(dest, content=b"y\n", mode=0o600)
    assert FILES.differences(other, FILES.observe(str(dest), read=True)) == ["content", "mode 0644 -> 0600"]
    assert FILES.differences(wanted(tmp_path / "new", content=b""), FILES.observe(str(tmp_path / "new"), True)) == [
        "file missing"]
    assert FILES.differences(wanted(tmp_path, state="file", content=b""), FILES.observe(str(tmp_path), True)) == [
        "is a directory, not a file"]


def test_a_new_file_appears_whole_with_its_mode(tmp_path):
    dest = tmp_path / "secret"
    want = wanted(dest, content=b"s3cret\n", mode=0o600)
    FILES.apply(want, FILES.observe(str(dest), read=True))
    assert dest.read_bytes() == b"s3cret\n" and stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret"], "the temporary file is left behind"


def test_only_the_mode_is_corrected_when_the_content_is_equal(tmp_path):
    dest = tmp_path / "f"
    dest.write_bytes(b"x")
    dest.chmod(0o666)
    inode = dest.stat().st_ino
    FILES.apply(wanted(dest, content=b"x", mode=0o640), FILES.observe(str(dest), read=True))
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640 and dest.stat().st_ino == inode


def test_folders_with_special_bits_and_removals(tmp_path):
    folder = tmp_path / "a" / "b"
    FILES.apply(wanted(folder, state="directory", mode=0o2755), FILES.observe(str(folder), read=False))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o2755
    assert FILES.differences(wanted(folder, state="directory", mode=0o2755), FILES.observe(str(folder), False)) == []
    link = tmp_path / "link"
    link.symlink_to(folder)
    FILES.apply(wanted(link, state="absent"), FILES.observe(str(link), read=False))
    assert not link.exists() and folder.is_dir(), "a link is removed, not what it points to"


@pytest.mark.parametrize(("entry", "words"), [
    ({"dest": "relative", "state": "file", "content": "", "mode": "0644"}, "is not an absolute path"),
    ({"dest": "/x", "state": "file", "content": None, "mode": "0644"}, "state file needs content"),
    ({"dest": "/x", "state": "file", "content": "", "mode": None}, "give its mode as an octal string"),
    ({"dest": "/x", "state": "file", "content": "", "mode": "rw"}, "is not an octal string"),
    ({"dest": "/x", "state": "directory", "mode": "0755", "owner": "no-such-user-x", "group": "root"},
     "is not on the host"),
])
def test_bad_entries_are_refused_with_the_path_and_the_fix(entry, words):
    entry = {"owner": USER, "group": GROUP, **entry}
    with pytest.raises(ValueError, match=words):
        FILES.parse(entry)


def run(tmp_path: Path, *args: str) -> dict:
    """The action and the module on this machine (local connection), as a role task: returns the task's result."""
    role = tmp_path / "roles" / "demo"
    (role / "templates").mkdir(parents=True, exist_ok=True)
    (role / "files").mkdir(exist_ok=True)
    template = "{{ ansible_managed | comment }}\n{% if on %}\nvalue={{ v }}\n{% endif %}\n"
    (role / "templates" / "a.conf.j2").write_text(template)
    (role / "files" / "cmd").write_text("#!/bin/sh\necho hi\n")
    (role / "tasks").mkdir(exist_ok=True)
    (role / "tasks" / "main.yml").write_text(yaml.safe_dump([
        {"name": "Install", "register": "out", "notify": "Say",
         "govbaseline.baseline.govbaseline_files": {"files": [
             {"dest": str(tmp_path / "etc"), "state": "directory", "mode": "0750", "owner": USER, "group": GROUP},
             {"template": "a.conf.j2", "dest": str(tmp_path / "etc" / "a.conf"), "mode": "0640", "owner": USER,
              "group": GROUP, "vars": {"v": "{{ value }}"}},
             {"src": "cmd", "dest": str(tmp_path / "etc" / "cmd"), "mode": "0755", "owner": USER, "group": GROUP},
             {"dest": str(tmp_path / "etc" / "old"), "state": "absent", "content": "ignored"}]}},
        {"name": "Keep", "check_mode": False,
         "ansible.builtin.copy": {"content": "{{ out | to_json }}", "dest": str(tmp_path / "result.json"),
                                  "mode": "0600"}}]))
    (role / "handlers").mkdir(exist_ok=True)
    (role / "handlers" / "main.yml").write_text(yaml.safe_dump([
        {"name": "Say", "ansible.builtin.copy": {"content": "fired", "dest": str(tmp_path / "handler"), "mode": "0600"},
         "check_mode": False}]))
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "vars": {"on": True},
                                         "roles": ["demo"]}]))
    (tmp_path / "handler").unlink(missing_ok=True)
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-c", "local", "-i", "localhost,",
            "-e", f"ansible_python_interpreter={sys.executable}", "-e", "value=42", *args, str(playbook)]
    env = dict(os.environ, ANSIBLE_CONFIG=str(ANSIBLE_CFG), ANSIBLE_ROLES_PATH=str(tmp_path / "roles"))
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, check=False, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    result = json.loads((tmp_path / "result.json").read_text())
    result["handler fired"] = (tmp_path / "handler").exists()
    result["stdout"] = proc.stdout
    return result


def test_a_run_writes_all_then_nothing_check_mode_writes_nothing(tmp_path):
    checked = run(tmp_path, "--check", "--diff")
    assert checked["changed"] and not (tmp_path / "etc").exists(), "check mode wrote"
    assert "+value=42" in checked["stdout"], "no diff of the template in check mode"
    first = run(tmp_path)
    assert first["changed"] and first["handler fired"]
    assert len(first["changed_files"]) == 3
    conf = tmp_path / "etc" / "a.conf"
    assert conf.read_text() == "#\n# Ansible managed\n#\nvalue=42\n", "trim_blocks or ansible_managed differ"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o640 and stat.S_IMODE((tmp_path / "etc").stat().st_mode) == 0o750
    again = run(tmp_path)
    assert not again["changed"] and not again["handler fired"] and again["changed_files"] == []
    (tmp_path / "etc" / "cmd").chmod(0o777)
    (tmp_path / "etc" / "old").write_text("stale")
    fixed = run(tmp_path)
    assert sorted(fixed["changed_files"]) == sorted([str(tmp_path / "etc" / "cmd"), str(tmp_path / "etc" / "old")])
    assert not (tmp_path / "etc" / "old").exists() and stat.S_IMODE((tmp_path / "etc" / "cmd").stat().st_mode) == 0o755


def test_a_refused_content_leaves_the_old_file_and_no_temporary_file(tmp_path):
    dest = tmp_path / "sshd.conf"
    dest.write_text("old\n")
    seen = []

    def refuse(path: str) -> None:
        seen.append(Path(path).read_text())
        raise OSError("sshd -t refused the new content")

    with pytest.raises(OSError, match="refused"):
        FILES.apply(wanted(dest, content=b"new\n", mode=0o600), FILES.observe(str(dest), read=True), refuse)
    assert seen == ["new\n"], "the check did not see the new content"
    assert dest.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["sshd.conf"]
    with pytest.raises(ValueError, match="must name the new content as %s"):
        FILES.parse({"dest": "/x", "state": "file", "content": "", "mode": "0644", "owner": USER, "group": GROUP,
                     "validate": "sshd -t"})


def test_file_contents_never_reach_the_hosts_journal_yet_diff_shows_them(tmp_path):
    """The module's invocation (arguments) is logged on the host: contents are no_log there, and the
    action plugin restores the new content in --diff from its own copy (as the template module shows)."""
    playbook = tmp_path / "p.yml"
    dest = tmp_path / "x.conf"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"govbaseline.baseline.govbaseline_files": {"files": [{"dest": str(dest), "content": "webhook=https://hooks.example/s3cret\n",
                                          "mode": "0600", "owner": USER, "group": GROUP}]}}]}]))
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-c", "local", "-i", "localhost,", "-vvv",
            "-e", f"ansible_python_interpreter={sys.executable}", "--check", "--diff", str(playbook)]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, check=False,
                          env=dict(os.environ, ANSIBLE_CONFIG=str(ANSIBLE_CFG)))
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "invocation:" in proc.stdout, proc.stdout[-2000:]
    invocation = proc.stdout.split("invocation:", 1)[1].split("\nTASK", 1)[0].split("\nPLAY", 1)[0]
    assert "content: VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in invocation and "s3cret" not in invocation, invocation
    assert "+webhook=https://hooks.example/s3cret" in proc.stdout, "the diff lost the new content"
