"""The lab: disposable Debian hosts as systemd-booted podman containers.

image recipe -> cached image -> hosts on a private network -> inventory file. The CLI's ``lab``
commands, the molecule scenarios, the tests and ``bench/`` all make hosts through this package.
"""

from govbaseline.lab.hosts import Lab, LabError, LabHost

__all__ = ["Lab", "LabError", "LabHost"]
