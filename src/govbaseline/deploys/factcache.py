"""Read pyinfra facts once per host while the run has not changed it, many in one command.

pyinfra 3 caches no fact: every ``host.get_fact`` is a command on the host (about 45 ms each over
SSH here), and an operation reads its facts again when it runs after its ``will_change`` was asked.
A no-change re-converge of the whole baseline read about 530 facts, one command each.

Two things make that a handful of commands, without changing what any fact answers:

- A fact read before the run changed the host describes the host as it still is, so it is answered
  from memory. The first command an operation runs on the host (anything but a fact's own command:
  a shell command, an upload, a download) forgets every fact read so far: what follows reads the
  host again, exactly as without the cache. Each caller gets its own copy, so an operation that
  edits the fact it was given (pyinfra's package operations do) changes no other's.
- The questions a run asked a host (which fact, with which arguments; never an answer) are kept in
  the state folder. The next run asks all of them at the start in one batched command (a few when
  the list is long), each fact's own command and its own parsing, so the answers are the same as
  asked one by one. A question the host could not answer that way (a failed command, a missing
  program) is left out and asked on its own when an operation needs it, with pyinfra's usual errors.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import json
import secrets
from pathlib import Path
from typing import Any

from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS
from pyinfra.api.command import StringCommand
from pyinfra.api.facts import FactBase, ShortFactBase, _handle_fact_kwargs, get_fact
from pyinfra.api.host import Host
from pyinfra.api.state import BaseStateCallback, State

from govbaseline.paths import state_dir

# What pyinfra prints instead of a fact's output when its program is missing (pyinfra.api.facts).
MISSING_COMMAND_MARKER = "##PYINFRA_NOCMD##"
# Linux refuses a single argument (the command sshd hands to the shell) over 128 KiB.
BATCH_CHARS = 64_000


class FactCache:
    """The facts read from one host since the run last changed it, and the questions asked."""

    def __init__(self, host: Host, questions: Path) -> None:
        self.host = host
        self.questions = questions
        self.known: dict[str, Any] = {}
        self.asked: dict[str, dict[str, Any] | None] = {}
        self.reading = False
        self.commands = 0  # fact commands this run sent to the host (a batch counts once)
        self.hits = 0

    def normalise(self, cls: type[FactBase[Any]], args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """The cache key, the fact's own arguments and how its command runs (sudo, su, env, shell),
        merged from the current operation's arguments as pyinfra merges them for the fact."""
        fact_kwargs, global_kwargs = _handle_fact_kwargs(self.host.state, self.host, cls, list(args), kwargs)
        fact_kwargs.pop("self", None)  # getcallargs binds the fact instance too
        how = {k: global_kwargs[k] for k in CONNECTOR_ARGUMENT_KEYS if k in global_kwargs}
        key = repr((cls.__module__, cls.__qualname__, sorted((k, repr(v)) for k, v in fact_kwargs.items()),
                    sorted((k, repr(v)) for k, v in how.items())))
        return key, fact_kwargs, how

    def get_fact(self, cls: type[FactBase[Any]], *args: Any, **kwargs: Any) -> Any:
        if issubclass(cls, ShortFactBase):  # a view of another fact: read as pyinfra reads it, uncached
            return get_fact(self.host.state, self.host, cls, args=list(args), kwargs=kwargs)
        key, fact_kwargs, how = self.normalise(cls, args, kwargs)
        if key not in self.asked:
            self.asked[key] = question(cls, fact_kwargs, how, self.defaults())
        if key in self.known:
            self.hits += 1
            return copy.deepcopy(self.known[key])
        self.reading = True
        try:
            value = get_fact(self.host.state, self.host, cls, args=list(args), kwargs=kwargs)
        finally:
            self.reading = False
        self.commands += 1
        self.known[key] = value
        return copy.deepcopy(value)

    def defaults(self) -> dict[str, Any]:
        """How a fact's command runs outside any operation (the host's and the config's defaults)."""
        _, global_kwargs = _handle_fact_kwargs(self.host.state, self.host, FactBase, [], {})
        return {k: global_kwargs[k] for k in CONNECTOR_ARGUMENT_KEYS if k in global_kwargs}

    def forget_on_change(self, method: Any) -> Any:
        """``method`` (running a command, moving a file) forgetting the facts unless a fact runs it."""

        def call(*args: Any, **kwargs: Any) -> Any:
            if not self.reading:
                self.known.clear()
            return method(*args, **kwargs)

        return call

    def prefetch(self) -> None:
        """Ask, in as few commands as fit, the questions the last run asked this host."""
        try:
            saved = json.loads(self.questions.read_text())
        except (OSError, ValueError):
            return
        wanted: dict[str, tuple[FactBase[Any], dict[str, Any], dict[str, Any], int]] = {}
        for entry in saved if isinstance(saved, list) else []:
            try:
                module, name = entry["fact"].rsplit(".", 1)
                cls = getattr(importlib.import_module(module), name)
                key, fact_kwargs, how = self.normalise(cls, (), {**entry["kwargs"], **entry["how"]})
                length = len(str(fact_command(cls(), fact_kwargs)))
            except Exception:  # noqa: S112  (a question this version of a fact cannot ask is not asked ahead)
                continue
            wanted.setdefault(key, (cls(), fact_kwargs, how, length))
        groups: dict[str, list[tuple[str, FactBase[Any], dict[str, Any], int]]] = {}
        runs: dict[str, dict[str, Any]] = {}
        for key, (fact, fact_kwargs, how, length) in wanted.items():
            group = repr(sorted((k, repr(v)) for k, v in how.items()))
            groups.setdefault(group, []).append((key, fact, fact_kwargs, length))
            runs[group] = how
        for group, facts in groups.items():
            batch: list[tuple[str, FactBase[Any], dict[str, Any]]] = []
            size = 0
            for key, fact, fact_kwargs, length in facts:
                if batch and size + length > BATCH_CHARS:
                    self.ask_together(batch, runs[group])
                    batch, size = [], 0
                batch.append((key, fact, fact_kwargs))
                size += length + 200  # the markers around each command
            if batch:
                self.ask_together(batch, runs[group])

    def ask_together(self, batch: list[tuple[str, FactBase[Any], dict[str, Any]]], how: dict[str, Any]) -> None:
        """One command running each fact's command in turn, each output closed by a marker line
        with its exit status; then each fact's own ``process`` on its own lines."""
        mark = f"@@govbaseline-fact-{secrets.token_hex(8)}"
        bits: list[Any] = ['t=$(mktemp) || exit 1;']
        for number, (_, fact, fact_kwargs) in enumerate(batch):
            command = fact_command(fact, fact_kwargs)
            requires = fact_command(fact, fact_kwargs, "requires_command")
            if requires:
                command = StringCommand("if command -v", requires, ">/dev/null 2>&1; then (", command,
                                        f"); else echo '{MISSING_COMMAND_MARKER}'; fi")
            bits += ["(", command, ') </dev/null >"$t" 2>/dev/null; rc=$?; cat "$t";',
                     '[ -s "$t" ] && [ -n "$(tail -c1 "$t")" ] && echo;', f'echo "{mark} {number} $rc";']
        bits.append('rm -f "$t"')
        self.reading = True
        try:
            ok, output = self.host.run_shell_command(StringCommand(*bits), print_output=False, print_input=False,
                                                     **how)
        except Exception:  # each fact is then read on its own, where pyinfra reports the error
            return
        finally:
            self.reading = False
        self.commands += 1
        if not ok:
            return
        lines: list[str] = []
        for line in output.stdout_lines:
            if not line.startswith(mark + " "):
                lines.append(line)
                continue
            number, status = (int(word) for word in line.split()[1:3])
            key, fact, _ = batch[number]
            if status == 0 and lines != [MISSING_COMMAND_MARKER]:
                # Output its parser refuses is read again on its own, where pyinfra reports the error.
                with contextlib.suppress(Exception):
                    self.known[key] = fact.process(lines) if lines else fact.default()
            lines = []

    def save(self) -> None:
        """Keep this run's questions (not the answers) for the next run's prefetch."""
        entries = [entry for entry in self.asked.values() if entry is not None]
        self.questions.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Written aside and renamed: a run reading it meanwhile sees the old list or the new one.
        aside = self.questions.with_name(f".{self.questions.name}.{secrets.token_hex(4)}")
        aside.touch(mode=0o600)
        aside.write_text(json.dumps(entries, indent=0))
        aside.replace(self.questions)


def fact_command(fact: FactBase[Any], fact_kwargs: dict[str, Any], attribute: str = "command") -> Any:
    """The fact's command (or the program it requires) for these arguments, as pyinfra makes it."""
    made = getattr(fact, attribute)
    return made(**fact_kwargs) if callable(made) else made


def question(cls: type[FactBase[Any]], fact_kwargs: dict[str, Any], how: dict[str, Any],
             defaults: dict[str, Any]) -> dict[str, Any] | None:
    """A question as saved: the fact, its arguments, and how it ran where that differs from the
    host's default; None (not saved) for one that would not survive JSON or involves a password."""
    changed = {k: v for k, v in how.items() if defaults.get(k) != v}
    entry = {"fact": f"{cls.__module__}.{cls.__qualname__}", "kwargs": fact_kwargs, "how": changed}
    if any("password" in k for k in changed):
        return None
    try:
        return entry if json.loads(json.dumps(entry)) == entry else None
    except (TypeError, ValueError):
        return None


class SaveQuestions(BaseStateCallback):
    """Saves each host's questions when pyinfra disconnects from it, at the end of the run."""

    @staticmethod
    def host_disconnect(state: State, host: Host) -> None:
        cache = host.__dict__.get("govbaseline_fact_cache")
        if isinstance(cache, FactCache):
            cache.save()


def install(host: Host) -> FactCache:
    """Answer ``host.get_fact`` from a ``FactCache`` for the rest of the run, first asking what the
    last run asked (once per host)."""
    cache = host.__dict__.get("govbaseline_fact_cache")
    if isinstance(cache, FactCache):
        return cache
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in host.name)
    cache = FactCache(host, state_dir() / "pyinfra-facts" / f"{name}.json")
    host.__dict__["govbaseline_fact_cache"] = cache
    # Instance attributes: they shadow the class's methods for this host only.
    host.__dict__["get_fact"] = cache.get_fact
    # Every way pyinfra reaches the host (a FunctionCommand that changes the host without one of
    # these is not seen: the deploys use none).
    for method in ("run_shell_command", "put_file", "get_file", "rsync"):
        host.__dict__[method] = cache.forget_on_change(getattr(host, method))
    if not any(isinstance(handler, SaveQuestions) for handler in host.state.callback_handlers):
        host.state.callback_handlers.append(SaveQuestions())
    if not host.connected:
        host.connect(raise_exceptions=True)
    cache.prefetch()
    return cache
