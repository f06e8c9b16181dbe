"""``govbaseline init DIR``: a starting repository for an organisation, copied from ``starter/``.

It holds an inventory whose group_vars name every required variable with a comment, vault file
skeletons (mode 0600, to be encrypted with ``ansible-vault encrypt``), an ``ansible.cfg``, the
collection's requirements file (ansible-galaxy, AWX / Automation Platform), a site playbook that
imports ``govbaseline.baseline.site`` and a README of next steps. Existing files are never
overwritten: the whole copy is refused before the first file is written.
"""

from __future__ import annotations

import os
from pathlib import Path

from govbaseline.paths import STARTER_DIR

SECRET_NAMES = ("vault.yml",)  # written mode 0600: they hold secrets until they are encrypted


def starter_files() -> list[Path]:
    """The starter repository's files, relative to its root, sorted."""
    return sorted(p.relative_to(STARTER_DIR) for p in STARTER_DIR.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)


def init(target: Path) -> list[Path]:
    """Write the starter repository into ``target`` (created if missing); return the files written.
    Raises FileExistsError naming every file that exists already (nothing is written then), and
    NotADirectoryError when ``target`` is a file."""
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target} is a file, not a folder: give a new or empty folder")
    files = starter_files()
    existing = [str(target / f) for f in files if (target / f).exists() or (target / f).is_symlink()]
    if existing:
        raise FileExistsError(f"init writes nothing over existing files, and these exist: {', '.join(existing)} "
                              "(choose a new folder, or move them away first)")
    written = []
    for relative in files:
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = 0o600 if relative.name in SECRET_NAMES else 0o644  # private before the first byte
        # O_EXCL and O_NOFOLLOW: a file or link that appeared since the check is not written through.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(descriptor, "wb") as out:
            out.write((STARTER_DIR / relative).read_bytes())
        os.chmod(path, mode)  # whatever the umask took away
        written.append(path)
    return written
