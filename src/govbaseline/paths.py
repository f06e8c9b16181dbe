"""Where the project's non-Python parts live.

The roles, playbooks, modules and templates are read in place from the source tree, which is why
govbaseline is installed in editable mode (``pip install -e .``); both engines read the same files.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = Path(os.environ.get("GOVBASELINE_ROOT", PACKAGE_DIR.parent.parent)).resolve()
ROLES_DIR = PROJECT_ROOT / "roles"
PLAYBOOKS_DIR = PROJECT_ROOT / "playbooks"
LIBRARY_DIR = PROJECT_ROOT / "library"
ANSIBLE_CFG = PROJECT_ROOT / "ansible.cfg"
CHECKS_DIR = PACKAGE_DIR / "checks"
CATALOGUE_FILE = PACKAGE_DIR / "catalogue.yml"
POLICIES_DIR = Path(os.environ.get("GOVBASELINE_POLICIES", PROJECT_ROOT.parent / "shared" / "policies"))


def state_dir() -> Path:
    """Per-user state (lab hosts, keys, inventories); ``GOVBASELINE_STATE`` overrides it."""
    base = os.environ.get("GOVBASELINE_STATE") or os.path.join(
        os.environ.get("XDG_STATE_HOME", os.path.expanduser("~/.local/state")), "govbaseline"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Downloaded Debian packages and built images; ``GOVBASELINE_CACHE`` overrides it."""
    base = os.environ.get("GOVBASELINE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "govbaseline"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path
