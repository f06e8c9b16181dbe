"""The batched fact command of deploys/factcache.py, run by a local shell: each fact's answer is
the one its own command gives alone, and a question the batch cannot answer is left to pyinfra."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from pyinfra.api.facts import FactBase
from pyinfra.connectors.util import CommandOutput, OutputLine
from pyinfra.facts.files import File, Sha1File
from pyinfra.facts.server import Command

from govbaseline.deploys.factcache import FactCache, fact_command


class NeedsMissingProgram(FactBase[str]):
    def requires_command(self) -> str:
        return "govbaseline-no-such-program"

    def command(self) -> str:
        return "echo never"


class LocalHost:
    """Runs commands with the local shell and splits output as pyinfra's connectors do."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def run_shell_command(self, command: Any, **_: Any) -> tuple[bool, CommandOutput]:
        text = command if isinstance(command, str) else command.get_raw_value()
        self.commands.append(text)
        done = subprocess.run(["sh", "-c", text], capture_output=True, text=True, check=False)
        lines = done.stdout.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return done.returncode == 0, CommandOutput([OutputLine("stdout", line) for line in lines])


def alone(host: LocalHost, fact: FactBase[Any], kwargs: dict[str, Any]) -> Any:
    ok, output = host.run_shell_command(fact_command(fact, kwargs))
    assert ok
    return fact.process(output.stdout_lines) if output.stdout_lines else fact.default()


def test_one_command_answers_each_fact_as_its_own_command_would(tmp_path: Path) -> None:
    present = tmp_path / "present.conf"
    present.write_text("a\nb\n")
    questions: list[tuple[str, FactBase[Any], dict[str, Any]]] = [
        ("file", File(), {"path": str(present)}),
        ("sha1", Sha1File(), {"path": str(present)}),
        ("absent", File(), {"path": str(tmp_path / "absent")}),
        ("no-final-newline", Command(), {"command": "printf 'x\\ny'"}),
        ("blank-lines", Command(), {"command": "printf 'x\\n\\ny\\n\\n'"}),
        ("failed", Command(), {"command": "echo partial; exit 3"}),
        ("missing-program", NeedsMissingProgram(), {}),
    ]
    host = LocalHost()
    cache = FactCache(host, tmp_path / "questions.json")  # type: ignore[arg-type]
    cache.ask_together(questions, {})
    assert len(host.commands) == 1 and cache.commands == 1
    for key, fact, kwargs in questions[:5]:
        answer = alone(LocalHost(), fact, kwargs)
        if key == "file":  # the batched sha1 read the file after its stat: the access time may differ
            answer["atime"] = cache.known[key]["atime"]
        assert cache.known[key] == answer, key
    assert cache.known["absent"] is None
    assert cache.known["no-final-newline"] == "x\ny"
    # Left to pyinfra, which reports the failure or the missing program as it always does.
    assert "failed" not in cache.known and "missing-program" not in cache.known


def test_a_fact_asked_through_the_cache_is_forgotten_after_a_change(tmp_path: Path) -> None:
    host = LocalHost()
    cache = FactCache(host, tmp_path / "questions.json")  # type: ignore[arg-type]
    cache.known["file"] = {"mode": 644}
    run = cache.forget_on_change(host.run_shell_command)
    cache.reading = True
    run("true")  # a fact's own command changes nothing
    assert "file" in cache.known
    cache.reading = False
    run("true")  # an operation's command may have changed the host
    assert cache.known == {}
