"""Folders of the checkout the tests read (examples, the lab inventory, the policies, reports): the
tests run from a checkout; the product itself finds its files through govbaseline.paths."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLICIES_DIR = Path(os.environ.get("GOVBASELINE_POLICIES", ROOT.parent / "shared" / "policies"))
