"""One long-lived command session per host for the checks, over the host's own SSH connection.

testinfra's SSH backend starts a local shell and an ``ssh`` client for every command, and the host's
sshd opens a session for each: about 12-20 ms and two processes on the controller per command, and
a verify runs hundreds. Here the first command to a host starts one Python on it through the same
``ssh`` options (execnet's SSH gateway, from pytest-xdist's authors: it bootstraps the remote Python
and carries the messages), and every later command is a message to it that runs the command with the
account's login shell, as sshd would: about 1 ms of overhead.

The command line, the exit code and the output are unchanged (the checks' evidence records them as
before); only the transport differs. A host the session cannot serve (a password login, SSH options
with quoted values, no Python, a session that dies) gets testinfra's own per-command ``ssh``, so a
session can make a run faster but never change what a check sees.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

import execnet

# What a session that cannot start or has died raises: the host is then served by plain ssh.
SESSION_ERRORS = (OSError, EOFError, execnet.HostNotFound, execnet.RemoteError, execnet.DataFormatError,
                  execnet.TimeoutError)

# Runs on the host inside the execnet gateway: one command per message, (exit code, stdout, stderr)
# back. The login shell is what sshd runs a command with; stdin is closed as under testinfra's ssh.
REMOTE_LOOP = """
import os, pwd, subprocess
shell = pwd.getpwuid(os.getuid()).pw_shell or "/bin/sh"
while True:
    command = channel.receive()
    if command is None:
        break
    done = subprocess.run([shell, "-c", command], stdin=subprocess.DEVNULL, capture_output=True)
    channel.send((done.returncode, done.stdout, done.stderr))
"""


class Session:
    """Runs commands on one host through one remote Python. ``run(command)`` has the signature and
    result of testinfra's ``SshBackend.run_ssh`` (a fully quoted command string, already wrapped in
    sudo where the inventory asks for become) and falls back to it when the session is unusable."""

    def __init__(self, backend: Any, python: str) -> None:
        self.backend = backend
        self.fallback = backend.run_ssh
        self.python = python
        self.lock = threading.Lock()
        self.gateway: Any = None
        self.channel: Any = None
        self.broken = False

    def spec(self) -> str | None:
        """The execnet gateway spec with the options testinfra's ``ssh`` would use, or None where
        they cannot be passed through execnet's whitespace-split option string."""
        b = self.backend
        extra = b.ssh_extra_args or ""
        if b.host.password or any(q in extra for q in "'\"\\") or " " in self.python:
            return None
        words = extra.split()
        if b.ssh_config:
            words += ["-F", b.ssh_config]
        if b.host.user:
            words += ["-o", f"User={b.host.user}"]
        if b.host.port:
            words += ["-o", f"Port={b.host.port}"]
        if b.ssh_identity_file:
            words += ["-i", b.ssh_identity_file]
        if "connecttimeout" not in extra.lower():
            words += ["-o", f"ConnectTimeout={b.timeout}"]
        if b.controlpersist and "controlmaster" not in extra.lower():
            words += ["-o", "ControlMaster=auto", "-o", f"ControlPersist={b.controlpersist}s"]
            if b.controlpath and "controlpath" not in extra.lower():
                words += ["-o", f"ControlPath={b.controlpath}"]
        if any(" " in w for w in words):
            return None
        # PYTHONCOERCECLOCALE=0: in a C-locale session Python would otherwise export LC_CTYPE=C.UTF-8
        # to the commands it runs, which sshd would have run in C.
        return f"ssh={' '.join([*words, b.host.name])}//python=env PYTHONCOERCECLOCALE=0 {self.python}"

    def _open(self) -> bool:
        spec = self.spec()
        if spec is None:
            return False
        try:
            self.gateway = execnet.makegateway(spec)
            self.channel = self.gateway.remote_exec(REMOTE_LOOP)
        except SESSION_ERRORS:
            return False
        return True

    def run(self, command: str) -> Any:
        with self.lock:
            if not self.broken and self.channel is None and not self._open():
                self.broken = True
            if not self.broken:
                try:
                    self.channel.send(command)
                    rc, stdout, stderr = self.channel.receive()
                except SESSION_ERRORS:
                    self.broken = True
                    self.close()
                else:
                    result = self.backend.result(rc, self.backend.encode(command), stdout, stderr)
                    if rc == 255 or rc < 0:
                        # Through ssh these read as a failed connection (a signal too is 255), and
                        # testinfra raises: so does the session, so no check reads them as an answer.
                        raise RuntimeError(result)
                    return result
        return self.fallback(command)

    def close(self) -> None:
        # Closing a session that already died must not fail the run.
        with contextlib.suppress(*SESSION_ERRORS):
            if self.channel is not None and not self.channel.isclosed():
                self.channel.send(None)
            if self.gateway is not None:
                self.gateway.exit()
        self.gateway = self.channel = None


_sessions: dict[int, Session] = {}


def attach(runner: Any) -> None:
    """Serve every SSH host that testinfra's Ansible runner hands out through a session: its
    ``get_host`` (which builds and caches the SSH backend from the inventory) is wrapped so that the
    backend's ``run_ssh`` goes through the host's session. ``GOVBASELINE_SESSIONS=0`` turns it off."""
    if os.environ.get("GOVBASELINE_SESSIONS", "1") == "0":
        return
    from testinfra.backend.ssh import SshBackend

    original = runner.get_host

    def get_host(name: str, **kwargs: Any) -> Any:
        host = original(name, **kwargs)
        backend = getattr(host, "backend", None)
        if type(backend) is SshBackend and id(backend) not in _sessions:
            python = str(runner.inventory["_meta"]["hostvars"].get(name, {}).get("ansible_python_interpreter", ""))
            if not python.startswith("/"):  # "auto", a template: the host's python3 on PATH
                python = "python3"
            session = _sessions[id(backend)] = Session(backend, python)
            backend.run_ssh = session.run
        return host

    runner.get_host = get_host


def close_all() -> None:
    for session in _sessions.values():
        session.close()
    _sessions.clear()
