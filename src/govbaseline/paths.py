"""Where govbaseline's non-Python parts are found at run time: the one place that says it.

The roles, playbooks, modules and templates are the Ansible collection ``govbaseline.baseline``,
installed beside this package: ``src/ansible_collections/`` in a checkout (editable install), the
``ansible_collections/`` folder of site-packages from the wheel. Both engines read the same files,
and ansible-core finds the same collection there (it looks for ``ansible_collections`` on
``sys.path``; ``inventory.ansible_env`` puts this copy first). Nothing here assumes the source tree.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# The folder holding ``ansible_collections/`` (what Ansible's collections_path names).
COLLECTIONS_ROOT = PACKAGE_DIR.parent
COLLECTION_NAME = "govbaseline.baseline"
COLLECTION_DIR = COLLECTIONS_ROOT.joinpath("ansible_collections", *COLLECTION_NAME.split("."))
ROLES_DIR = COLLECTION_DIR / "roles"
PLAYBOOKS_DIR = COLLECTION_DIR / "playbooks"
MODULES_DIR = COLLECTION_DIR / "plugins" / "modules"
# Ansible's settings for the runs the CLI starts and for the checks (ssh's control_path); the
# repository's ansible.cfg is a link to it.
ANSIBLE_CFG = PACKAGE_DIR / "ansible.cfg"
CHECKS_DIR = PACKAGE_DIR / "checks"
CATALOGUE_FILE = PACKAGE_DIR / "catalogue.yml"
# What `govbaseline init` copies: a starting repository for an organisation (starter.py).
STARTER_DIR = PACKAGE_DIR / "starter"


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
