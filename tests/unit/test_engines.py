"""Reading what an engine run changed from its own summary."""

from __future__ import annotations

from govbaseline.engines import EngineResult, changed_count


def test_changed_count_reads_a_pyinfra_dry_run():
    out = ("--> Proposed changes:\n"
           "    Operation                                  Change          Conditional Change   \n"
           "    Firewall | FW-01 | Install nftables        -               -                    \n"
           "    Alerts | ALERT-01 | Install the command     2 (web1, web2)  -                    \n"
           "    Audit | LOG-01 | Load the rules            1 (web1)        1 (web2)             \n"
           "\n--> Beginning operation run...\n")
    assert changed_count(EngineResult("pyinfra", 0, out)) == 3
