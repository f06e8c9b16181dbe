"""pyinfra operation that gives a timer back its declared schedule, twin of the Ansible module
``govbaseline.baseline.timer_schedule``.

The survey command, the decision (which drop-ins change the schedule, whether to unmask) and the
commands come from the Ansible module itself, imported here: both engines repair the same things.
"""

from __future__ import annotations

import shlex
from typing import Any

from pyinfra import logger
from pyinfra.api.operation import operation
from pyinfra.context import host
from pyinfra.facts.server import Command

from ansible_collections.govbaseline.baseline.plugins.modules import timer_schedule as TIMER


@operation()
def schedule(timer: str, keep: tuple[str, ...] = (), vendor: bool = False) -> Any:
    """
    Remove the drop-ins that change ``timer``'s schedule (except ``keep``) and unmask it; the
    operation names every file it removes. Enabling and starting the timer is left to
    ``systemd.service``, after this.

    + timer: the timer unit, e.g. ``apt-daily-upgrade.timer``
    + keep: file names of drop-ins govbaseline itself installs for this timer
    + vendor: the unit file comes from a package: a copy of it in /etc or /run is removed too

    **Example:**

    .. code:: python

        timers.schedule(name="PATCH-01 | Restore the schedule of apt-daily.timer", timer="apt-daily.timer")
    """
    state, dropins, copies = TIMER.parse_survey(host.get_fact(Command, TIMER.survey_command(timer)) or "")
    wanted = TIMER.plan(timer, state, dropins, list(keep), copies, vendor)
    if not wanted.changed:
        host.noop(wanted.reason(done=False))
        return
    logger.warning(f"{host.name}: {wanted.reason(done=False)}")
    for command in wanted.commands():
        yield shlex.join(command)
