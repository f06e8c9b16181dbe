"""Reading what an engine run changed from its own summary."""

from __future__ import annotations

from govbaseline.engines import EngineResult, changed_count, read_events, run_ansible


def test_changed_count_reads_a_pyinfra_dry_run():
    out = ("--> Proposed changes:\n"
           "    Operation                                  Change          Conditional Change   \n"
           "    Firewall | FW-01 | Install nftables        -               -                    \n"
           "    Alerts | ALERT-01 | Install the command     2 (web1, web2)  -                    \n"
           "    Audit | LOG-01 | Load the rules            1 (web1)        1 (web2)             \n"
           "\n--> Beginning operation run...\n")
    assert changed_count(EngineResult("pyinfra", 0, out)) == 3


# Two hosts that are this machine, with the controller's own Python.
LOCAL = """\
all:
  vars: {ansible_connection: local, ansible_python_interpreter: "{{ ansible_playbook_python }}"}
  hosts: {alpha: {}, bravo: {}}
"""
PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: Changes something
      ansible.builtin.command: "true"
      changed_when: true
    - name: Changes nothing
      ansible.builtin.command: "true"
      changed_when: false
    - name: Skipped
      ansible.builtin.command: "true"
      when: false
    - name: Fails with a secret it must not show
      ansible.builtin.shell: "echo {{ secret }}; false"
      changed_when: false
      no_log: true
      ignore_errors: true
"""


def test_ansible_results_come_from_events_and_are_kept(tmp_path):
    """A real ansible-playbook run on this machine (connection local): the changed count, the tasks
    and their hosts come from the events callback; the artefacts keep them, private, without the secret."""
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(LOCAL)
    book = tmp_path / "play.yml"
    book.write_text(PLAYBOOK)
    kept = tmp_path / "artifacts"
    result = run_ansible(inventory, playbook=book, stream=False, extra_vars={"secret": "s3cr3t-value"},
                         artifact_dir=kept)
    assert result.ok, result.output[-2000:]
    assert changed_count(result) == 2  # one task, two hosts
    assert sorted(result.changed_tasks()) == ["alpha: - : Changes something", "bravo: - : Changes something"]
    tasks = {t["name"]: t for t in result.tasks()}
    assert list(tasks) == ["Changes something", "Changes nothing", "Skipped", "Fails with a secret it must not show"]
    assert tasks["Skipped"]["ran"] == 0 and tasks["Skipped"]["skipped"] == 2
    assert tasks["Changes nothing"]["ran"] == 2 and all(t["seconds"] >= 0 for t in tasks.values())
    failed = [e for e in result.events if e["event"] == "runner_on_failed"]
    assert len(failed) == 2 and all(e["ignore_errors"] for e in failed)
    assert (kept / "events.jsonl").stat().st_mode & 0o777 == 0o600 and kept.stat().st_mode & 0o777 == 0o700
    assert read_events(kept / "events.jsonl") == result.events
    assert "s3cr3t-value" not in (kept / "events.jsonl").read_text()
    assert "PLAY RECAP" in (kept / "stdout").read_text()
    # A second run appends: both runs' stats are there.
    again = run_ansible(inventory, playbook=book, stream=False, extra_vars={"secret": "x"}, artifact_dir=kept)
    assert [e["event"] for e in read_events(kept / "events.jsonl")].count("playbook_on_stats") == 2
    assert changed_count(again) == 2
    # Runs put together (apply runs Ansible once per set of waived controls): each run's tasks, in order.
    both = EngineResult("ansible", 0, "", result.events + again.events)
    assert [t["name"] for t in both.tasks()] == list(tasks) * 2 and changed_count(both) == 4
    # A later run cut off before its end: what all of them changed is not known.
    unfinished = [e for e in again.events if e["event"] != "playbook_on_stats"]
    cut = EngineResult("ansible", 130, "", result.events + unfinished)
    assert changed_count(cut) is None


def test_a_run_that_never_reaches_its_end_has_no_changed_count(tmp_path):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(LOCAL)
    book = tmp_path / "broken.yml"
    book.write_text("- hosts: all\n  tasks:\n    - name: Not a module\n      no.such.module: {}\n")
    result = run_ansible(inventory, playbook=book, stream=False)
    assert not result.ok and changed_count(result) is None and result.tasks() == []


REFUSED = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: Refuse a bad value before anything changes
      ansible.builtin.validate_argument_spec:
        argument_spec: {firewall_ssh_port: {type: int}}
        provided_arguments: {firewall_ssh_port: not-a-port}
    - name: Would change something
      ansible.builtin.command: "true"
"""
FAILED_AFTER_A_CHANGE = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: Changes something
      ansible.builtin.command: "true"
    - name: Fails
      ansible.builtin.command: "false"
"""


def test_the_exit_code_says_refused_only_for_the_checks_every_run_starts_with(tmp_path):
    """ansible-playbook exits 2 for any failed task: govbaseline's 2 means refused before any change
    (a variable check failed, nothing changed); a task that failed after a change, or a host that
    could not be reached, is a failed run (1)."""
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(LOCAL)
    runs = {}
    for name, text in {"refused": REFUSED, "failed": FAILED_AFTER_A_CHANGE}.items():
        (tmp_path / f"{name}.yml").write_text(text)
        runs[name] = run_ansible(inventory, playbook=tmp_path / f"{name}.yml", stream=False)
    assert runs["refused"].returncode == 2 and runs["refused"].refused and runs["refused"].exit_code == 2
    assert runs["failed"].returncode == 2 and not runs["failed"].refused and runs["failed"].exit_code == 1
    gone = tmp_path / "gone.yml"
    # SSH to a loopback port nothing listens on: refused at once, Ansible's "unreachable".
    gone.write_text("all:\n  hosts: {web9: {ansible_host: 127.0.0.1, ansible_port: 1, ansible_ssh_timeout: 2}}\n")
    unreachable = run_ansible(gone, playbook=tmp_path / "failed.yml", stream=False)
    assert unreachable.returncode == 4 and unreachable.exit_code == 1
    assert EngineResult("pyinfra", 2, "refused before any change: web1: bad value\n").exit_code == 2
    assert EngineResult("pyinfra", 1, "--> web1: operation failed\n").exit_code == 1
    assert EngineResult("ansible", 0, "").exit_code == 0
