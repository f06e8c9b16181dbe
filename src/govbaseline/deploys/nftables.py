"""pyinfra facts and operations for one nftables table, twin of the Ansible module
``govbaseline.baseline.nftables_table``.

The state layout on the host (recorded listing, rollback files, rollback timer) and the rollback
command come from the Ansible module itself, imported here, so a host converged by one engine is
seen as converged by the other.
"""

from __future__ import annotations

import hashlib
import shlex
from io import StringIO
from typing import Any

from pyinfra.api.command import FileUploadCommand
from pyinfra.api.facts import FactBase
from pyinfra.api.operation import operation
from pyinfra.context import host

from ansible_collections.govbaseline.baseline.plugins.modules import nftables_table as NFT

ABSENT = "absent"


class NftablesTableState(FactBase[dict[str, str]]):
    """SHA-256 of the installed file, of the live table listing and of the recorded listing."""

    def command(self, table: str, dest: str) -> str:
        listing = shlex.join(NFT.listing_command("nft", table))
        recorded = shlex.quote(NFT.recorded_path(table))
        timer = shlex.quote(NFT.ROLLBACK_UNIT + ".timer")
        digest = "sha256sum | cut -c1-64"

        def file_digest(path: str) -> str:
            return f"$(sha256sum < {path} | cut -c1-64)"

        return (
            "export LANG=C LC_ALL=C; "
            f"if [ -f {shlex.quote(dest)} ]; then echo file={file_digest(shlex.quote(dest))}; "
            f"else echo file={ABSENT}; fi; "
            f"out=$({listing} 2>/dev/null) && echo live=$(printf '%s\\n' \"$out\" | {digest}) || echo live={ABSENT}; "
            f"if [ -f {recorded} ]; then echo recorded={file_digest(recorded)}; else echo recorded={ABSENT}; fi; "
            f"systemctl is-active --quiet {timer} && echo timer=active || echo timer=inactive"
        )

    def process(self, output: list[str]) -> dict[str, str]:
        return dict(line.split("=", 1) for line in output if "=" in line)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@operation()
def table(table: str, content: str, dest: str = "/etc/nftables.conf", rollback_timeout: int = 60) -> Any:
    """
    Load one nftables table atomically, armed to roll back unless confirmed.

    + table: family and name, e.g. ``inet govbaseline``
    + content: the whole ruleset file (it deletes and recreates ``table``)
    + dest: file the ruleset is installed as (loaded at boot by nftables.service)
    + rollback_timeout: seconds before an unconfirmed load is rolled back; 0 disables it

    **Example:**

    .. code:: python

        nftables.table(name="FW-01 | Load the default-deny table", table="inet govbaseline",
                       content=rendered, rollback_timeout=60)
    """
    state = host.get_fact(NftablesTableState, table=table, dest=dest)
    live = state.get("live", ABSENT)
    reason = NFT.decide(
        want=content,
        have_file=content if state.get("file") == _sha(content) else None,
        live=None if live == ABSENT else live,
        recorded=None if state.get("recorded", ABSENT) == ABSENT else state["recorded"],
    )
    if reason is None:
        host.noop(f"table {table} is loaded as wanted from {dest}")
        return
    candidate = f"{NFT.STATE_DIR}/candidate.nft"
    yield f"install -d -m 700 {shlex.quote(NFT.STATE_DIR)}"
    yield FileUploadCommand(StringIO(content), candidate)
    yield f"nft -c -f {shlex.quote(candidate)}"
    if rollback_timeout > 0:
        yield _arm_rollback(table, dest, rollback_timeout)
    q_dest, q_rec = shlex.quote(dest), shlex.quote(NFT.recorded_path(table))
    yield (f"install -m 600 {shlex.quote(candidate)} {q_dest} && rm -f {shlex.quote(candidate)} && "
           f"nft -f {q_dest} && {shlex.join(NFT.listing_command('nft', table))} > {q_rec} && chmod 600 {q_rec}")


def _arm_rollback(table: str, dest: str, timeout: int) -> str:
    timer = shlex.quote(NFT.ROLLBACK_UNIT + ".timer")
    service = shlex.quote(NFT.ROLLBACK_UNIT + ".service")
    rollback = shlex.quote(NFT.rollback_ruleset_path(table))
    backup = shlex.quote(NFT.dest_backup_path(dest))
    head = shlex.quote(NFT.rollback_ruleset(table, ""))
    save = (f"{{ printf '%s' {head}; nft -s list table {table} 2>/dev/null; }} > {rollback} && chmod 600 {rollback}; "
            f"if [ -f {shlex.quote(dest)} ]; then cp -p {shlex.quote(dest)} {backup}; else rm -f {backup}; fi")
    rearm = f"systemctl stop {timer}; systemctl reset-failed {service} 2>/dev/null; true"
    return (f"if systemctl is-active --quiet {timer}; then {rearm}; else {save}; fi && "
            f"{shlex.join(NFT.rollback_command(table, dest, timeout))}")


@operation()
def confirm(table: str, dest: str = "/etc/nftables.conf") -> Any:
    """
    Cancel a pending rollback; run it from a fresh connection so it proves SSH still answers.

    + table: the table that was loaded
    + dest: the ruleset file that was installed
    """
    state = host.get_fact(NftablesTableState, table=table, dest=dest)
    if state.get("timer") != "active":
        host.noop("no rollback is pending")
        return
    yield (f"systemctl stop {shlex.quote(NFT.ROLLBACK_UNIT + '.timer')} && "
           f"rm -f {shlex.quote(NFT.rollback_ruleset_path(table))} {shlex.quote(NFT.dest_backup_path(dest))}")
