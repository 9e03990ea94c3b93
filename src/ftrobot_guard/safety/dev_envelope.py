"""A signed site copy of an operating envelope for development: the demo, tests and benchmarks.

A department adapts the committed envelope (``config/envelope/g1.yaml``) to its site and signs it
(``ftrobot envelope sign``). This does the same with a development department key generated at run
time: optionally opening the service hours around the clock (a demo or a CI run happens at any hour),
then signing for the given robots. Never use it for a robot in service.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.safety.envelope_signature import sign_envelope, signature_path_for, write_signature_file

ALWAYS_OPEN = '    - {days: [mon, tue, wed, thu, fri, sat, sun], open: "00:00", close: "24:00"}'
_WEEKLY = re.compile(r"(?m)^  weekly:\n((?:    - .*\n)+)")


def always_open(envelope_text: str) -> str:
    """The envelope with its weekly service hours replaced by every day, 00:00-24:00, and no closed dates."""
    replaced, count = _WEEKLY.subn(f"  weekly:\n{ALWAYS_OPEN}\n", envelope_text, count=1)
    if count != 1:
        raise ValueError("the envelope has no service_hours.weekly list to open")
    return re.sub(r"(?m)^  closed_dates: .*$", "  closed_dates: []", replaced, count=1)


def write_signed_envelope(
    path: Path,
    envelope_text: str,
    department_key: ed25519.Ed25519PrivateKey,
    robots: Sequence[str],
    valid_days: float = 30.0,
    open_all_hours: bool = True,
) -> Path:
    """Write the (adapted) envelope to ``path`` and its signature to ``<path>.sig``; returns ``path``."""
    text = always_open(envelope_text) if open_all_hours else envelope_text
    data = text.encode("utf-8")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    signature = sign_envelope(data, department_key, now - dt.timedelta(minutes=5),
                              now + dt.timedelta(days=valid_days), robots=robots)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    write_signature_file(signature_path_for(path), signature, overwrite=True)
    return path
