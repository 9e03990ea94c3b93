"""A signed site copy of an operating envelope for development: the demo, tests and benchmarks.

A department adapts the committed envelope (``config/envelope/g1.yaml``) to its site and signs it
(``ftrobot envelope sign``). This does the same with a development department key generated at run
time: optionally opening the service hours around the clock (a demo or a CI run happens at any hour)
and changing input ages (a simulated robot sharing two cores with its whole stack stalls longer than a
real one), then signing for the given robots. Never use it for a robot in service.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
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


def with_input_ages(envelope_text: str, ages: Mapping[str, float]) -> str:
    """The envelope with ``inputs.<name>`` set to ``ages[name]`` seconds (each must already be listed)."""
    for name, age in ages.items():
        envelope_text, count = re.subn(rf"(?m)^  {re.escape(name)}: [0-9.]+$", f"  {name}: {float(age)!r}",
                                       envelope_text, count=1)
        if count != 1:
            raise ValueError(f"the envelope lists no input {name!r}")
    return envelope_text


def write_signed_envelope(
    path: Path,
    envelope_text: str,
    department_key: ed25519.Ed25519PrivateKey,
    robots: Sequence[str],
    valid_days: float = 30.0,
    open_all_hours: bool = True,
    input_ages: Mapping[str, float] | None = None,
) -> Path:
    """Write the (adapted) envelope to ``path`` and its signature to ``<path>.sig``; returns ``path``."""
    text = always_open(envelope_text) if open_all_hours else envelope_text
    if input_ages:
        text = with_input_ages(text, input_ages)
    data = text.encode("utf-8")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    signature = sign_envelope(data, department_key, now - dt.timedelta(minutes=5),
                              now + dt.timedelta(days=valid_days), robots=robots)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    write_signature_file(signature_path_for(path), signature, overwrite=True)
    return path
