"""The command line as a careful tool (govbaseline.cli): paths from the working folder, unknown names
and empty selections refused before anything runs (exit 2, the message naming the option), help
without hidden commands and with the exit codes, a closed pipe ending quietly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from govbaseline import cli, engines

INVENTORY = """all:
  children:
    webservers:
      hosts:
        web1: {ansible_host: 192.0.2.10}
"""


@pytest.fixture
def team(tmp_path, monkeypatch):
    """A team's own folder, outside the checkout, with its inventory; the working folder."""
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "hosts.yml").write_text(INVENTORY)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_relative_inventory_is_the_working_folders(team, monkeypatch):
    seen = {}

    def fake_apply(inventory, **kwargs):
        seen["inventory"] = inventory
        return engines.EngineResult("ansible", 0, "")

    monkeypatch.setattr(engines, "apply", fake_apply)
    assert cli.main(["apply", "-i", "inventory/", "--check"]) == 0
    assert seen["inventory"] == team / "inventory"


def test_ansible_playbook_gets_an_absolute_inventory(team, monkeypatch):
    ran = {}
    monkeypatch.setattr(engines, "_run", lambda cmd, env, stream, lines=None: (ran.setdefault("cmd", cmd), (0, ""))[1])
    engines.run_ansible(Path("inventory"))
    assert ran["cmd"][ran["cmd"].index("-i") + 1] == str(team / "inventory")


@pytest.mark.parametrize("command", [["apply"], ["verify"], ["collect"]])
def test_an_inventory_that_does_not_exist_is_refused(team, capsys, command):
    assert cli.main([*command, "-i", "nowhere/hosts.yml"]) == 2
    err = capsys.readouterr().err
    assert f"inventory {team / 'nowhere/hosts.yml'} does not exist" in err


def test_an_inventory_without_matching_hosts_is_refused_before_ansible_runs(team, capsys, monkeypatch):
    monkeypatch.setattr(engines, "apply", lambda *a, **k: pytest.fail("the engine ran"))
    assert cli.main(["apply", "-i", "inventory", "--limit", "db*"]) == 2
    assert "has no hosts matching --limit db*" in capsys.readouterr().err


def test_an_unknown_tag_is_refused(team, capsys, monkeypatch):
    monkeypatch.setattr(engines, "apply", lambda *a, **k: pytest.fail("the engine ran"))
    assert cli.main(["apply", "-i", "inventory", "--tags", "fw-01,nope-99"]) == 2
    assert "unknown tag nope-99 in --tags" in capsys.readouterr().err


def test_tags_with_the_pyinfra_engine_are_refused_not_ignored(team, capsys, monkeypatch):
    # pyinfra runs whole deploys: --tags fw-01 would have applied the whole baseline.
    real_apply = engines.apply
    monkeypatch.setattr(engines, "apply", lambda *a, **k: pytest.fail("the engine ran"))
    assert cli.main(["apply", "-i", "inventory", "--engine", "pyinfra", "--tags", "fw-01"]) == 2
    assert "the pyinfra engine applies whole deploys" in capsys.readouterr().err
    with pytest.raises(ValueError, match="pyinfra engine applies whole deploys"):
        real_apply(team / "inventory", engine="pyinfra", tags="fw-01")


def test_artifact_dir_with_the_pyinfra_engine_is_refused(team, capsys, monkeypatch):
    monkeypatch.setattr(engines, "apply", lambda *a, **k: pytest.fail("the engine ran"))
    assert cli.main(["apply", "-i", "inventory", "--engine", "pyinfra", "--artifact-dir", "kept"]) == 2
    assert "--artifact-dir keeps Ansible's events" in capsys.readouterr().err
    assert not (team / "kept").exists()


def test_known_tags_are_the_controls_and_roles():
    tags = engines.known_tags()
    assert {"fw-01", "tls-05", "firewall", "backup_server", "always"} <= tags
    assert "nope-99" not in tags


def test_an_unknown_control_is_refused(team, capsys, monkeypatch):
    import govbaseline.verify

    monkeypatch.setattr(govbaseline.verify, "verify", lambda *a, **k: pytest.fail("verify ran"))
    assert cli.main(["verify", "-i", "inventory", "--control", "NOPE-99"]) == 2
    assert "unknown control NOPE-99 in --control" in capsys.readouterr().err


def test_help_lists_no_hidden_command_and_states_the_exit_codes():
    text = cli.build_parser().format_help()
    assert "SUPPRESS" not in text and "pull-result" not in text
    assert "exit codes:" in text and "141" in text


def test_a_closed_pipe_ends_quietly():
    # `govbaseline controls | head -1` once head has gone: stdout is a pipe nobody reads any more.
    script = ("import os, sys\nr, w = os.pipe()\nos.close(r)\nos.dup2(w, 1)\n"
              "from govbaseline.cli import main\nsys.exit(main(['controls']))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stderr) == (141, "")


def test_the_shell_completes_commands_and_options(tmp_path):
    # What bash's completion hook does for `govbaseline ver<TAB>` and `govbaseline verify --vau<TAB>`.
    import os

    def complete(line: str) -> list[str]:
        out = tmp_path / "completions"
        env = {**os.environ, "_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
               "_ARGCOMPLETE_STDOUT_FILENAME": str(out), "_ARGCOMPLETE_IFS": "\n"}
        subprocess.run([sys.executable, "-c", "from govbaseline.cli import main; main()"], env=env, check=False,
                       capture_output=True)
        return [word.strip() for word in out.read_text().split("\n")]

    assert "verify" in complete("govbaseline ver")
    assert {"--vault-id", "--vault-password-file"} <= set(complete("govbaseline verify --vau"))


def test_the_command_line_runs_where_argcomplete_is_not_installed(team):
    # A host in pull mode runs `python3 -m govbaseline pull-result` with Debian's packages only.
    script = ("import sys\nsys.modules['argcomplete'] = None\nsys.argv = ['govbaseline', 'controls']\n"
              "from govbaseline.cli import main\nsys.exit(main())\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "FW-01" in done.stdout, done.stderr


def test_controls_are_read_as_the_checks_read_them(team, monkeypatch):
    import govbaseline.verify

    seen = {}

    def fake_verify(inventory, **kwargs):
        seen["controls"] = kwargs["controls"]
        raise RuntimeError("stop here")

    monkeypatch.setattr(govbaseline.verify, "verify", fake_verify)
    assert cli.main(["verify", "-i", "inventory", "--control", "fw-01,FW-02", "--control", "tls-01"]) == 1
    assert seen["controls"] == ["FW-01", "FW-02", "TLS-01"]


def test_an_empty_entry_in_tags_is_ignored(team, monkeypatch):
    monkeypatch.setattr(engines, "apply", lambda *a, **k: engines.EngineResult("ansible", 0, ""))
    assert cli.main(["apply", "-i", "inventory", "--tags", "fw-01,"]) == 0


def test_an_unknown_role_is_refused(team, capsys, monkeypatch):
    import govbaseline.verify

    monkeypatch.setattr(govbaseline.verify, "verify", lambda *a, **k: pytest.fail("verify ran"))
    assert cli.main(["verify", "-i", "inventory", "--role", "tls", "--role", "nope"]) == 2
    assert "unknown role nope (roles: access, alerts," in capsys.readouterr().err


def test_an_unknown_engine_is_refused_by_the_parser(team, capsys, monkeypatch):
    monkeypatch.setattr(engines, "apply", lambda *a, **k: pytest.fail("the engine ran"))
    with pytest.raises(SystemExit) as ended:
        cli.main(["apply", "-i", "inventory", "--engine", "chef"])
    assert ended.value.code == 2
    assert "argument --engine: invalid choice: 'chef'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["verify", "collect"])
@pytest.mark.parametrize(("inventory", "limit", "said"), [
    ("empty.yml", None, "empty.yml has no hosts"),
    ("inventory", "db*", "inventory has no hosts matching db*"),
])
def test_a_run_without_hosts_is_refused(team, capsys, command, inventory, limit, said):
    """verify and collect, as apply: an empty inventory or a --limit that matches nothing is exit 2
    naming it, not an empty report that could be read as a pass."""
    (team / "empty.yml").write_text("all: {}\n")
    assert cli.main([command, "-i", inventory, *(["--limit", limit] if limit else [])]) == 2
    assert said in capsys.readouterr().err
    assert not (team / "reports").exists()


def test_restore_from_a_host_the_inventory_lacks_is_refused_before_ansible_runs(team, capsys, monkeypatch):
    monkeypatch.setattr(engines, "run_ansible", lambda *a, **k: pytest.fail("Ansible ran"))
    assert cli.main(["restore", "-i", "inventory", "--host", "web9", "--path", "/var/www", "--in-place"]) == 2
    assert "has no host web9 (--host)" in capsys.readouterr().err


def test_report_folder_and_waivers_are_read_from_the_working_folder(team, monkeypatch):
    import govbaseline.verify

    (team / "waivers.yml").write_text("[]\n")
    seen = {}

    def fake_verify(inventory, **kwargs):
        seen.update(kwargs, inventory=inventory)
        raise RuntimeError("stopped here")

    monkeypatch.setattr(govbaseline.verify, "verify", fake_verify)
    assert cli.main(["verify", "-i", "inventory", "--report-dir", "out/today", "--waivers", "waivers.yml"]) == 1
    assert seen["inventory"] == team / "inventory" and seen["report_dir"] == team / "out" / "today"
    assert seen["waivers"] == []


def test_an_error_after_the_run_started_is_a_failure_not_a_refusal(team, monkeypatch, capsys):
    """Exit 2 says nothing ran; an error once the checks started (here: they could not run) is exit 1."""
    import govbaseline.verify

    def checks_did_not_run(inventory, **kwargs):
        raise RuntimeError("the checks did not run: pytest ended with exit 4")

    monkeypatch.setattr(govbaseline.verify, "verify", checks_did_not_run)
    assert cli.main(["verify", "-i", "inventory"]) == 1
    assert "govbaseline: failed: the checks did not run" in capsys.readouterr().err


def test_an_inventory_ansible_cannot_parse_is_refused(team, capsys):
    """ansible-inventory only warns about a file it cannot parse and finds no hosts in it: exit 2, naming it."""
    (team / "broken.yml").write_text("all: [not, a, mapping\n")
    assert cli.main(["verify", "-i", "broken.yml"]) == 2
    assert f"inventory {team / 'broken.yml'} has no hosts" in capsys.readouterr().err


def test_a_rollout_with_no_host_selected_is_refused(team, capsys):
    """A canary rollout of nothing would report every batch done (exit 0) having applied nothing."""
    assert cli.main(["apply", "-i", "inventory", "--canary", "1", "--limit", "db*"]) == 2
    assert "has no hosts matching db*" in capsys.readouterr().err


def test_a_lab_name_it_cannot_have_is_refused(capsys):
    assert cli.main(["lab", "status", "--name", "bad_name"]) == 2
    assert "lab name 'bad_name' must be letters, digits and dashes" in capsys.readouterr().err
