"""A thin wrapper around the podman command line with the lab's own configuration."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from govbaseline.paths import PACKAGE_DIR

CONTAINERS_CONF = PACKAGE_DIR / "lab" / "containers.conf"


class PodmanError(RuntimeError):
    """podman failed; the message carries its stderr."""


def podman(*args: str, check: bool = True, input_bytes: bytes | None = None,
           stdin: Any = None) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF))
    proc = subprocess.run(["podman", *args], env=env, capture_output=True, input=input_bytes,
                          stdin=stdin, check=False)
    if check and proc.returncode != 0:
        raise PodmanError(f"podman {' '.join(args[:3])} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc


def podman_json(*args: str) -> Any:
    out = podman(*args).stdout.decode()
    return json.loads(out) if out.strip() else []
