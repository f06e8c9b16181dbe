"""The EICAR anti-virus test file, and a ClamAV signature for it.

Every scanner detects the 68-byte EICAR string as a harmless test "virus". It is assembled here
from two halves so this source file itself is not flagged by a scanner on a developer's machine.
The signature lets a lab without internet (no official ClamAV databases) detect it too.
"""

from __future__ import annotations

import hashlib

EICAR = (rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$" + rb"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")
SIGNATURE_NAME = "Govbaseline.Test.EICAR"
# ClamAV's name for what the signature file below defines (.UNOFFICIAL: not from the official databases).
DETECTED_AS = f"{SIGNATURE_NAME}.UNOFFICIAL"
SIGNATURE_FILE = "govbaseline-test.hsb"


def hsb_signature() -> str:
    """A ClamAV SHA-256 hash signature (.hsb line: hash:size:name) of the EICAR file."""
    return f"{hashlib.sha256(EICAR).hexdigest()}:{len(EICAR)}:{SIGNATURE_NAME}\n"
