"""IDS-02's questions to fail2ban (govbaseline.checks.test_ids.ask_fail2ban), on what fail2ban-client's
interactive mode prints (taken from a lab host, fail2ban 1.1.0). The checks' end-to-end proof is
tests/lab/test_ids_e2e.py: each IDS-02 check fails on a host where its promise is broken."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from govbaseline.checks.test_ids import ask_fail2ban, running_jails

BANNER = ("Fail2Ban v1.1.0 reads log file that contains password failure report\n"
          "and bans the corresponding IP addresses using firewall rules.\n\n")


class Host:
    def __init__(self, stdout: str, stderr: str = "", rc: int = 0) -> None:
        self.result = SimpleNamespace(stdout=stdout, stderr=stderr, rc=rc)
        self.commands: list[str] = []

    def run(self, command: str):
        self.commands.append(command)
        return self.result


def test_each_question_gets_its_own_answer_from_one_client():
    host = Host(BANNER + "fail2ban> Status\n|- Number of jail:\t2\n`- Jail list:\tnginx-http-auth, sshd\n"
                "fail2ban> The jail sshd has the following actions:\nnftables, govbaseline-alert\n"
                "fail2ban> \nfail2ban> Sorry but the jail 'nosuch' does not exist\nfail2ban> ")
    answers = ask_fail2ban(host, "get sshd actions", "get sshd banip", "get nosuch banip")
    assert len(host.commands) == 1 and host.commands[0].endswith("| fail2ban-client -i")
    assert running_jails(answers["status"]) == ["nginx-http-auth", "sshd"]
    assert answers["get sshd actions"] == "The jail sshd has the following actions:\nnftables, govbaseline-alert"
    assert answers["get sshd banip"] == ""  # nobody banned
    assert answers["get nosuch banip"] == "Sorry but the jail 'nosuch' does not exist"


def test_a_server_that_does_not_answer_fails_the_check():
    # fail2ban stopped: the client prints only its prompts, exits 0 and logs the error on stderr.
    host = Host(BANNER + "fail2ban> fail2ban> fail2ban> ",
                "ERROR   Failed to access socket path: /var/run/fail2ban/fail2ban.sock. Is fail2ban running?")
    with pytest.raises(AssertionError, match=r"cannot reach the server: .*Failed to access socket"):
        ask_fail2ban(host, "get sshd ignoreip", "get sshd banip")


def test_an_answer_missing_fails_the_check():
    host = Host(BANNER + "fail2ban> Status\n|- Number of jail:\t1\n`- Jail list:\tsshd\n")
    with pytest.raises(AssertionError, match="cannot reach the server"):
        ask_fail2ban(host, "get sshd banip")
